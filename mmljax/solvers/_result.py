"""The result of a closed-form least-squares fit."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class LeastSquaresResult:
    """A least-squares fit `y ≈ Phi @ coefficients` (+ ridge), with its statistics.

    Arrays are numpy arrays (the closed-form solver runs on the host in extended precision) in the
    dtype of the inputs. For `y (n,)`: `coefficients (p,)`, `residuals (n,)`, scalar `rss`,
    `residual_sd`, `r_squared`, `standard_errors (p,)`. For `y (n, k)` every output gains a trailing
    `k` axis (`coefficients (p, k)`, `rss (k,)`, ...).

    - `residuals = y - Phi @ coefficients`; `rss` their sum of squares.
    - `residual_sd = sqrt(rss / dof)` with `dof = n - rank` (with ridge: `n - trace(hat matrix)`).
    - `r_squared`: centred, `1 - rss / sum((y - mean y)^2)`, when the design has an intercept (a
      constant column); uncentred, `1 - rss / sum(y^2)`, otherwise (as NIST reports for NoInt1/2).
    - `standard_errors`: `residual_sd * sqrt(diag((PhiᵀPhi)⁻¹))` (with ridge, of the ridge estimator).
    - `rank`, `condition_number`: of the design that was factorised (columns equilibrated; for
      `polyfit`/`linear_regression` in the centred, scaled basis), 2-norm.
    - `method`: the method that produced the answer ("qr", "svd", "cholesky", "normal"; "auto"
      resolves to "qr", or to "svd" when the design is rank deficient).
    - `refinement_steps`: iterative-refinement corrections applied (0 for methods without it).
    - `fitted`: `y - residuals`; `names`: coefficient labels (`B0`, `B1`, ...).
    """

    coefficients: np.ndarray
    residuals: np.ndarray
    rss: Any
    residual_sd: Any
    r_squared: Any
    standard_errors: np.ndarray
    rank: int
    condition_number: float
    method: str
    dtype: np.dtype
    refinement_steps: int
    n_observations: int = 0
    dof: float = 0.0
    intercept: bool = False
    ridge: float = 0.0
    refinement_converged: bool = False
    names: tuple[str, ...] = ()
    fitted: np.ndarray | None = None

    def summary(self) -> str:
        """A plain-text table: coefficients with standard errors, then the fit statistics."""
        coef = np.atleast_1d(self.coefficients)
        se = np.atleast_1d(self.standard_errors)
        names = self.names or tuple(f"B{j}" for j in range(coef.shape[0]))
        lines = [f"{'':>8} {'estimate':>24} {'std. error':>24}"]
        for j, name in enumerate(names):
            est = np.ravel(coef[j])
            err = np.ravel(se[j])
            for c, (e, s) in enumerate(zip(est, err)):
                label = name if est.size == 1 else f"{name}[{c}]"
                lines.append(f"{label:>8} {e:>24.15e} {s:>24.15e}")
        lines.append(f"residual SD {_fmt(self.residual_sd)}   R² {_fmt(self.r_squared)}   "
                     f"({'centred' if self.intercept else 'uncentred'})")
        lines.append(f"n = {self.n_observations}, rank {self.rank} of {coef.shape[0]}, "
                     f"condition number {self.condition_number:.3g}, method {self.method}, "
                     f"refinement steps {self.refinement_steps}, dtype {np.dtype(self.dtype).name}")
        return "\n".join(lines)


def _fmt(v: Any) -> str:
    a = np.ravel(np.asarray(v, dtype=float))
    return ", ".join("nan" if not math.isfinite(x) else f"{x:.15g}" for x in a)
