"""Solvers: closed-form least squares (accurate to 12+ digits on NIST StRD) and iterative minimisers.

- `least_squares(Phi, y)`, `linear_regression(X, y)`, `polyfit(x, y, degree)`: one JAX program each
  (jit, vmap, grad; float64 eagerly), Householder QR + Björck refinement in double-double; a
  `LeastSquaresResult` (an equinox Module) with statistics and a status.
- `gradient_descent`, `newton`, `minimize` (optax): compiled loops on parameter pytrees, data as
  `args=` (one program per loss function and shapes), usable inside `jax.jit`/`jax.vmap`; an
  `OptimizeResult` with a `status`; called eagerly, divergence raises `DivergenceError`.
- `nonlinear_least_squares(residuals, params0, args)`: Levenberg–Marquardt polished by refined
  Gauss–Newton steps; a `NonlinearLeastSquaresResult`.
"""

from ..errors import DivergenceError as DivergenceError
from ..errors import PrecisionWarning as PrecisionWarning
from ..errors import RankDeficiencyWarning as RankDeficiencyWarning
from ._optimize_result import OptimizeResult as OptimizeResult
from ._result import LeastSquaresResult as LeastSquaresResult
from .gradient_descent import gradient_descent as gradient_descent
from .least_squares import METHODS as METHODS
from .least_squares import least_squares as least_squares
from .least_squares import linear_regression as linear_regression
from .least_squares import polyfit as polyfit
from .newton import newton as newton
from .nonlinear import NonlinearLeastSquaresResult as NonlinearLeastSquaresResult
from .nonlinear import nonlinear_least_squares as nonlinear_least_squares
from .optax_loop import minimize as minimize
