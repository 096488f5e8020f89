"""Why a solver stopped: one `Status` enum shared by every result type.

Inside `jax.jit`/`jax.vmap` a result holds its status as an integer array (`result.status`, one
entry per batch element under `vmap`); `Status(int(result.status))` turns a concrete one back into
the enum and `Status.message` says in words what happened. Results also carry `converged`.
"""

from __future__ import annotations

import enum
from typing import Any

import numpy as np

__all__ = ["Status", "status_of"]


class Status(enum.IntEnum):
    """The stop reasons of mmljax's solvers (values are stable: they are stored in results).

    - `CONVERGED`: the stopping test was met (gradient, step or refinement at working precision).
    - `MAX_STEPS`: `max_steps` iterations ran without meeting it.
    - `DIVERGED`: the loss or parameters became non-finite, or the loss ran to -inf.
    - `STALLED`: no further progress was possible (step rejected at the smallest trust region, a
      line search found no decrease) before the stopping test was met.
    - `SADDLE`: a stationary point that is not a minimum (negative curvature direction found).
    - `RANK_DEFICIENT`: a linear system was numerically singular; a minimum-norm answer was returned.
    - `NOT_REFINED`: iterative refinement stopped before working precision (fewer correct digits).
    - `NONFINITE_INPUT`: NaN or Inf in the data or at the starting point.
    - `ILL_CONDITIONED`: the method chosen cannot give a meaningful answer at this condition number.
    """

    CONVERGED = 0
    MAX_STEPS = 1
    DIVERGED = 2
    STALLED = 3
    SADDLE = 4
    RANK_DEFICIENT = 5
    NOT_REFINED = 6
    NONFINITE_INPUT = 7
    ILL_CONDITIONED = 8

    @property
    def message(self) -> str:
        return _MESSAGES[self]

    @property
    def ok(self) -> bool:
        """True when the answer can be used as is (`CONVERGED`)."""
        return self is Status.CONVERGED


_MESSAGES = {
    Status.CONVERGED: "converged: the stopping test was met",
    Status.MAX_STEPS: "stopped after max_steps iterations without meeting the stopping test",
    Status.DIVERGED: "diverged: the loss or the parameters became non-finite (or the loss ran to -inf)",
    Status.STALLED: "stalled: no step could reduce the loss further before the stopping test was met",
    Status.SADDLE: "stopped at a stationary point that is not a minimum (negative curvature)",
    Status.RANK_DEFICIENT: "the system is numerically rank deficient: a minimum-norm answer was returned",
    Status.NOT_REFINED: "iterative refinement stopped before working precision: fewer correct digits",
    Status.NONFINITE_INPUT: "NaN or Inf in the data or at the starting point",
    Status.ILL_CONDITIONED: "the chosen method cannot give a meaningful answer at this condition number",
}


def status_of(value: Any) -> Status | list:
    """`Status` of a concrete status array: one enum for a scalar, nested lists for a batch."""
    a = np.asarray(value)
    if a.ndim == 0:
        return Status(int(a))
    return [status_of(v) for v in a]
