"""The result of an iterative minimiser and the text of a divergence error."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np


class OptimizeResult(NamedTuple):
    """Result of an iterative minimiser.

    - `params`: final parameters (same pytree structure as `params0`).
    - `loss`: loss at `params` (for `minimize` with data: on the full data set).
    - `grad_norm`: 2-norm of the gradient at `params` (all leaves together).
    - `steps`: iterations taken; `converged`: `grad_norm <= tol` was reached.
    - `history`: loss per step, shape `(steps + 1,)` for gradient descent/Newton (entry 0 is the start),
      `(steps,)` mini-batch losses for `minimize`.
    - `trajectory`: parameters at every iterate (leading axis `steps + 1`) when asked for, else None.
    - `method`: which variant ran; `step_size`: the (first) step size used, where one applies.
    """

    params: Any
    loss: Any
    grad_norm: Any
    steps: int
    converged: bool
    history: Any
    trajectory: Any = None
    method: str = ""
    step_size: float | None = None


def divergence_message(where: str, step: int, bad_loss: float, history: np.ndarray, what: str, hint: str) -> tuple[str, float, int]:
    """The error text for a non-finite loss/gradient at `step`, naming the last finite loss."""
    finite = np.flatnonzero(np.isfinite(np.asarray(history[:step], dtype=float)))
    if finite.size:
        last_step = int(finite[-1])
        last = float(history[last_step])
        tail = f"last finite loss {last:.6g} at step {last_step}"
    else:
        last_step, last = -1, float("nan")
        tail = "no finite loss before it"
    return (f"{where}: diverged at step {step}: the {what} became {bad_loss} ({tail}); {hint}", last, last_step)
