"""mmljax: differentiable modelling in JAX with derivatives you can trust.

Models are pure functions `(params, inputs) -> outputs`; every derivative is available by
automatic differentiation (numerator layout, column-major `vec`) and by hand-derived formula,
and `check_derivative` cross-checks the two against finite differences.

Importing mmljax never changes `jax_enable_x64`; the checks and the CLI enable float64 explicitly.
"""

from . import analysis as analysis
from . import catalogue as catalogue
from . import data as data
from . import distributed as distributed
from . import errors as errors
from . import finite_diff as finite_diff
from . import io as io
from . import linalg as linalg
from . import losses as losses
from . import models as models
from . import solvers as solvers
from .chain import chain as chain
from .checking import CheckFailed as CheckFailed
from .checking import CheckResult as CheckResult
from .checking import MinimiserResult as MinimiserResult
from .checking import check_derivative as check_derivative
from .checking import check_minimiser as check_minimiser
from .derivatives import derivative as derivative
from .derivatives import directional_derivative as directional_derivative
from .derivatives import gradient as gradient
from .derivatives import hessian as hessian
from .derivatives import hessian_matrix as hessian_matrix
from .derivatives import hvp as hvp
from .derivatives import jacobian as jacobian
from .derivatives import jacobian_matrix as jacobian_matrix
from .derivatives import jacobian_mode as jacobian_mode
from .derivatives import second_directional_derivative as second_directional_derivative
from .finite_diff import taylor_test as taylor_test
from .kernels import gauss_newton_matrix as gauss_newton_matrix
from .kernels import gram as gram
from .kernels import least_squares_gradient as least_squares_gradient
from .kernels import least_squares_hvp as least_squares_hvp
from .kernels import per_example_jacobian as per_example_jacobian
from .layout import commutation_matrix as commutation_matrix
from .layout import ravel_vec as ravel_vec
from .layout import unvec as unvec
from .layout import vec as vec
from .status import Status as Status

__version__ = "0.1.0"
