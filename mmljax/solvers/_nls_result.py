"""The result of a nonlinear least-squares fit (an equinox Module: a pytree, returnable from jit, batched by vmap)."""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax
import numpy as np

from ..status import Status, status_of


class NonlinearLeastSquaresResult(eqx.Module):
    """A fit of `residuals(params[, args]) ≈ 0` in the least-squares sense, with its statistics.

    For `m` residuals and `n` parameters (flattened by `mmljax.ravel_vec`; under `jax.vmap` every
    array field gains the leading batch axis):

    - `params`: the solution, same pytree structure as `params0`.
    - `residuals (m,)`: `residuals(params)`; `rss`: their sum of squares.
    - `dof`: `m - n` (a Python int); `residual_sd`: `sqrt(rss / dof)` (NaN when `dof == 0`).
    - `standard_errors`: same structure as `params`, `residual_sd * sqrt(diag((JᵀJ)⁻¹))`.
    - `covariance (n, n)`: `residual_sd² (JᵀJ)⁻¹` in `ravel_vec` order, from the SVD of the
      triangular factor of `J` (columns equilibrated); never from `JᵀJ` itself.
    - `jacobian (m, n)`: `d residuals / d params` at the solution, columns in `ravel_vec` order.
    - `rank`: numerical rank of `J`; `condition_number`: of `J` with equilibrated columns.
    - `grad_norm`: `‖Jᵀr‖₂` at the solution.
    - `steps`: iterations (damped trial steps plus Gauss–Newton polishing steps);
      `polish_steps`: the Gauss–Newton steps among them.
    - `status`: a `mmljax.Status` as an integer array (`Status(int(result.status))`), `converged`:
      `status == Status.CONVERGED`; `message` gives the stop reason in words.

    In the matrix-free mode `covariance`, `standard_errors` and `jacobian` are None (they would need
    the dense Jacobian).
    """

    params: Any
    residuals: Any
    rss: Any
    residual_sd: Any
    standard_errors: Any
    covariance: Any
    jacobian: Any
    rank: Any
    condition_number: Any
    grad_norm: Any
    steps: Any
    polish_steps: Any
    status: Any
    converged: Any
    dof: int = eqx.field(static=True)
    method: str = eqx.field(static=True, default="levenberg-marquardt")

    @property
    def message(self) -> str | list:
        """The stop reason in words (a list under a batch)."""
        s = status_of(self.status)
        if isinstance(s, list):
            return [x.message for x in np.ravel(np.asarray(s, dtype=object))]
        return s.message

    def to_dict(self) -> dict:
        """A JSON-ready dict: arrays as nested lists, the status by name."""

        def plain(x):
            if x is None:
                return None
            a = np.asarray(x)
            return a.tolist()

        s = status_of(self.status)
        return {
            "params": jax.tree_util.tree_map(plain, self.params),
            "standard_errors": None
            if self.standard_errors is None
            else jax.tree_util.tree_map(plain, self.standard_errors),
            "residuals": plain(self.residuals),
            "rss": plain(self.rss),
            "residual_sd": plain(self.residual_sd),
            "dof": self.dof,
            "covariance": plain(self.covariance),
            "rank": plain(self.rank),
            "condition_number": plain(self.condition_number),
            "grad_norm": plain(self.grad_norm),
            "steps": plain(self.steps),
            "polish_steps": plain(self.polish_steps),
            "converged": plain(self.converged),
            "status": s.name if isinstance(s, Status) else [x.name for x in np.ravel(np.asarray(s, dtype=object))],
            "message": self.message,
            "method": self.method,
        }

    def summary(self) -> str:
        """A plain-text table: parameters with standard errors, then the fit statistics and the stop reason."""
        from ..layout import ravel_vec

        if np.ndim(self.status) != 0:
            return f"NonlinearLeastSquaresResult: a batch of {np.size(self.status)} fits; index one to summarise it"
        est = np.asarray(ravel_vec(self.params)[0])
        se = (
            np.full_like(est, np.nan)
            if self.standard_errors is None
            else np.asarray(ravel_vec(self.standard_errors)[0])
        )
        lines = [f"{'':>8} {'estimate':>24} {'std. error':>24}"]
        for j, (e, s) in enumerate(zip(est, se)):
            lines.append(f"{'b' + str(j + 1):>8} {e:>24.15e} {s:>24.15e}")
        lines.append(f"rss {_fmt(self.rss)}   residual SD {_fmt(self.residual_sd)}   dof {self.dof}")
        lines.append(
            f"m = {np.size(self.residuals)}, n = {est.size}, rank {int(self.rank)}, "
            f"condition number {float(self.condition_number):.3g}, grad norm {float(self.grad_norm):.3g}"
        )
        lines.append(
            f"steps {int(self.steps)} (Gauss–Newton polishing {int(self.polish_steps)}), "
            f"{self.method}, dtype {est.dtype.name}: {self.message}"
        )
        return "\n".join(lines)


def _fmt(v: Any) -> str:
    a = np.ravel(np.asarray(v, dtype=float))
    return ", ".join("nan" if not math.isfinite(x) else f"{x:.15g}" for x in a)
