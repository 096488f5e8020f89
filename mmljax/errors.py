"""The exceptions and warnings mmljax raises, in one place (every layer may use them)."""

from __future__ import annotations

from typing import Any


class RankDeficiencyWarning(UserWarning):
    """The design is numerically rank deficient: some coefficients are not identifiable."""


class PrecisionWarning(UserWarning):
    """The answer cannot be as accurate as the solver's float64 guarantee (float32 input, no convergence)."""


class DivergenceError(RuntimeError):
    """An iterative solver met a non-finite loss or gradient.

    Attributes: `step` (the step at which it happened), `last_finite_loss` and `last_finite_step`
    (the last good iterate; NaN/-1 if even the start was bad), `params` (the last finite parameters).
    """

    def __init__(self, message: str, *, step: int, last_finite_loss: float, last_finite_step: int, params: Any = None):
        super().__init__(message)
        self.step = step
        self.last_finite_loss = last_finite_loss
        self.last_finite_step = last_finite_step
        self.params = params
