"""Solvers: closed-form least squares (accurate to 12+ digits on NIST StRD) and iterative minimisers.

- `least_squares(Phi, y)`, `linear_regression(X, y)`, `polyfit(x, y, degree)`: host-side, float64,
  Householder QR + Björck refinement in double-double; a `LeastSquaresResult` with statistics.
"""

from ._result import LeastSquaresResult as LeastSquaresResult
from ._result import PrecisionWarning as PrecisionWarning
from ._result import RankDeficiencyWarning as RankDeficiencyWarning
from .least_squares import METHODS as METHODS
from .least_squares import least_squares as least_squares
from .least_squares import linear_regression as linear_regression
from .least_squares import polyfit as polyfit
