"""The result of a closed-form least-squares fit: an `equinox.Module` (a pytree)."""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import numpy as np

from ..status import Status, status_of


class LeastSquaresResult(eqx.Module):
    """A least-squares fit `y ≈ Phi @ coefficients` (+ ridge), with its statistics.

    A pytree: returned from `jax.jit`, batched by `jax.vmap` (every array field gains the batch
    axes in front). Called eagerly the solvers return numpy arrays in the dtype of the inputs;
    inside a transformation, jax arrays. For `y (n,)`: `coefficients (p,)`, `residuals (n,)`,
    scalar `rss`, `residual_sd`, `r_squared`, `standard_errors (p,)`. For `y (n, k)` every output
    gains a trailing `k` axis (`coefficients (p, k)`, `rss (k,)`, ...).

    - `residuals = y - Phi @ coefficients`; `rss` their sum of squares; `fitted = y - residuals`.
    - `residual_sd = sqrt(rss / dof)` with `dof = n - rank` (with ridge: `n - trace(hat matrix)`);
      NaN when `dof <= 0`.
    - `r_squared`: centred, `1 - rss / sum((y - mean y)^2)`, when the design has an intercept (a
      constant column); uncentred, `1 - rss / sum(y^2)`, otherwise (as NIST reports for NoInt1/2).
      NaN when undefined (constant `y` with an intercept, `y = 0` without).
    - `standard_errors`: `residual_sd * sqrt(diag((PhiᵀPhi)⁻¹))` (with ridge, of the ridge estimator);
      `inf` for a coefficient the data do not determine (rank-deficient design).
    - `rank`, `condition_number`: of the design that was factorised (columns equilibrated; for
      `polyfit`/`linear_regression` in the centred, scaled basis), 2-norm.
    - `method`: the method that produced the answer ("qr", "svd", "cholesky", "normal"). Eagerly
      "auto" resolves to "qr", or to "svd" for a rank-deficient design; inside a transformation it
      stays "auto" (full `rank`: the refined QR answer, else the minimum-norm SVD one).
    - `refinement_steps`, `refinement_converged`: iterative-refinement corrections applied (0 for
      methods without refinement) and whether the last one reached working precision.
    - `status`: a `mmljax.Status` as an integer array (`CONVERGED`, `RANK_DEFICIENT`, `NOT_REFINED`,
      `NONFINITE_INPUT`, `ILL_CONDITIONED`); `converged` is `status == CONVERGED`.
    - `expected_digits`: for "normal"/"cholesky", about how many significant digits the answer
      can have, `-log10(cond² eps)`; for the other methods `-log10(eps)` of the working precision.
    - `names`: coefficient labels (`B0`, `B1`, ...); `dtype`: of the outputs.
    """

    coefficients: Any
    residuals: Any
    rss: Any
    residual_sd: Any
    r_squared: Any
    standard_errors: Any
    rank: Any
    condition_number: Any
    method: str = eqx.field(static=True)
    dtype: Any = eqx.field(static=True)
    refinement_steps: Any = 0
    n_observations: int = eqx.field(static=True, default=0)
    dof: Any = 0.0
    intercept: Any = False
    ridge: Any = 0.0
    refinement_converged: Any = False
    names: tuple = eqx.field(static=True, default=())
    fitted: Any = None
    status: Any = 0
    expected_digits: Any = 0.0

    @property
    def converged(self) -> Any:
        """`status == Status.CONVERGED` (an array inside transformations)."""
        return self.status == int(Status.CONVERGED)

    @property
    def message(self) -> str:
        """The status in words (concrete, unbatched results only)."""
        s = status_of(self.status)
        return s.message if isinstance(s, Status) else "; ".join(str(x) for x in s)

    def summary(self) -> str:
        """A plain-text table: coefficients with standard errors, then the fit statistics."""
        coef = np.atleast_1d(np.asarray(self.coefficients))
        se = np.atleast_1d(np.asarray(self.standard_errors))
        names = self.names or tuple(f"B{j}" for j in range(coef.shape[0]))
        lines = [f"{'':>8} {'estimate':>24} {'std. error':>24}"]
        for j, name in enumerate(names):
            est = np.ravel(coef[j])
            err = np.ravel(se[j])
            for c, (e, s) in enumerate(zip(est, err)):
                label = name if est.size == 1 else f"{name}[{c}]"
                lines.append(f"{label:>8} {e:>24.15e} {s:>24.15e}")
        lines.append(
            f"residual SD {_fmt(self.residual_sd)}   R² {_fmt(self.r_squared)}   "
            f"({'centred' if bool(np.all(self.intercept)) else 'uncentred'})"
        )
        lines.append(
            f"n = {self.n_observations}, rank {_fmt(self.rank)} of {coef.shape[0]}, "
            f"condition number {float(np.max(self.condition_number)):.3g}, method {self.method}, "
            f"refinement steps {_fmt(self.refinement_steps)}, dtype {np.dtype(self.dtype).name}, "
            f"status {self.message}"
        )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-ready: arrays as nested lists (non-finite numbers as None), the status by name."""
        out: dict = {}
        for name in (
            "coefficients",
            "standard_errors",
            "residuals",
            "fitted",
            "rss",
            "residual_sd",
            "r_squared",
            "rank",
            "condition_number",
            "refinement_steps",
            "dof",
            "ridge",
            "expected_digits",
        ):
            out[name] = _jsonable(getattr(self, name))
        out["intercept"] = _jsonable(self.intercept)
        out["refinement_converged"] = _jsonable(self.refinement_converged)
        s = status_of(self.status)
        out["status"] = s.name if isinstance(s, Status) else _jsonable(self.status)
        out["converged"] = _jsonable(self.converged)
        out.update(
            method=self.method,
            dtype=np.dtype(self.dtype).name,
            n_observations=self.n_observations,
            names=list(self.names),
        )
        return out


def _jsonable(v: Any) -> Any:
    if v is None:
        return None
    a = np.asarray(v)
    if a.dtype == bool:
        return a.tolist()
    if np.issubdtype(a.dtype, np.integer):
        return a.tolist()
    a = a.astype(np.float64)
    if a.ndim == 0:
        x = float(a)
        return x if math.isfinite(x) else None
    return [_jsonable(x) for x in a]


def _fmt(v: Any) -> str:
    a = np.ravel(np.asarray(v, dtype=float))
    return ", ".join("nan" if not math.isfinite(x) else f"{x:.15g}" for x in a)
