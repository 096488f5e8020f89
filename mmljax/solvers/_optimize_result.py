"""The result of an iterative minimiser and the text of a divergence error."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import numpy as np

from ..status import Status, status_of


class OptimizeResult(eqx.Module):
    """Result of an iterative minimiser (`gradient_descent`, `newton`, `minimize`): an `equinox.Module`,
    so it can be returned from `jax.jit` and batched by `jax.vmap` (one entry per start or dataset).

    **Fields:**

    - `params`: final parameters, same pytree structure as `params0`.
    - `loss`: loss at `params` (for `minimize` with mini-batches: on all of `args`).
    - `grad_norm`: 2-norm of the gradient at `params`, all leaves together.
    - `steps`: accepted iterations (an `int` from an eager call, an integer array inside transformations).
    - `status`: why it stopped, a `mmljax.Status` (an integer array inside transformations);
      `converged` is `status == Status.CONVERGED`.
    - `history`: the loss at steps `0, 1, ..., min(steps, history_size)` for `gradient_descent`/`newton`
      (entry 0 is the start), the loss of each update `(min(steps, history_size),)` for `minimize`
      (mini-batch losses with `batch_size`). Bounded by the solver's `history_size`, so a huge
      `max_steps` allocates nothing in advance; inside `jax.jit`/`vmap` it has the static length
      `min(max_steps, history_size) + 1`, NaN past the last step.
    - `trajectory`: parameters at the iterates recorded in `history` (leading axis as `history`), when
      asked for; else None.
    - `method`: which variant ran (static); `step_size`: the (first) step size used, where one applies.
    """

    params: Any
    loss: Any
    grad_norm: Any
    steps: Any
    status: Any
    history: Any
    trajectory: Any = None
    step_size: Any = None
    method: str = eqx.field(static=True, default="")

    @property
    def converged(self) -> Any:
        """`status == Status.CONVERGED` (a `bool` eagerly, a boolean array inside transformations)."""
        c = self.status == Status.CONVERGED
        return (
            bool(c)
            if isinstance(c, (bool, np.bool_)) or (not isinstance(c, jax.core.Tracer) and np.ndim(c) == 0)
            else c
        )

    @property
    def message(self) -> str:
        s = status_of(self.status)
        return s.message if isinstance(s, Status) else "; ".join(sorted({v.message for v in np.ravel(s)}))

    def summary(self) -> str:
        s = status_of(self.status)
        name = s.name if isinstance(s, Status) else "batch"
        step = "" if self.step_size is None else f", step size {_fmt(self.step_size)}"
        return (
            f"{self.method or 'optimiser'}: {name} after {_fmt(self.steps)} steps — loss {_fmt(self.loss)}, "
            f"|grad| {_fmt(self.grad_norm)}{step} ({self.message})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: numbers, lists and strings (NaN/Inf as None); the parameters as nested lists."""

        def plain(x):
            if x is None:
                return None
            a = np.asarray(x)
            if a.dtype.kind == "f":
                a = np.where(np.isfinite(a), a, np.nan)
                return [None if v != v else v for v in a.ravel().tolist()] if a.ndim else (None if a != a else float(a))
            return a.tolist()

        s = status_of(self.status)
        return {
            "method": self.method,
            "status": s.name if isinstance(s, Status) else [v.name for v in np.ravel(s)],
            "converged": np.asarray(self.status == Status.CONVERGED).tolist(),
            "steps": np.asarray(self.steps).tolist(),
            "loss": plain(self.loss),
            "grad_norm": plain(self.grad_norm),
            "step_size": plain(self.step_size),
            "history": plain(self.history),
            "params": jax.tree_util.tree_map(plain, eqx.filter(self.params, eqx.is_array)),
            "message": self.message,
        }


def _fmt(x: Any) -> str:
    a = np.asarray(x)
    if a.ndim:
        return f"[{a.min():.6g} … {a.max():.6g}]" if a.size else "[]"
    return f"{a.item():.6g}" if a.dtype.kind == "f" else str(a.item())


def divergence_message(where: str, step: int, bad: float, last: float, last_step: int, what: str, hint: str) -> str:
    """The error text for a non-finite or runaway loss/gradient at `step`, naming the last finite loss."""
    tail = f"last finite loss {last:.6g} at step {last_step}" if last_step >= 0 else "no finite loss before it"
    return f"{where}: diverged at step {step}: the {what} became {bad} ({tail}); {hint}"


__all__ = ["OptimizeResult", "divergence_message"]
