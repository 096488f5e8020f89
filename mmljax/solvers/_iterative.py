"""Shared plumbing of the iterative solvers: a loss on one flat vector, validation, divergence."""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .._validate import require_callable, require_float_tree
from ..errors import DivergenceError
from ._optimize_result import divergence_message


def flat_problem(loss: Callable, params0: Any, where: str) -> tuple[jax.Array, Callable, Callable]:
    """`(x0, f, unravel)`: the parameters as one vector (`ravel_pytree` order) and `f(x) = loss(unravel(x))`."""
    require_callable(loss, where, "loss")
    require_float_tree(params0, where, "params0")
    x0, unravel = ravel_pytree(params0)

    def f(x):
        return loss(unravel(x))

    out = jax.eval_shape(f, x0)
    if not hasattr(out, "shape") or out.shape != ():
        shape = getattr(out, "shape", type(out).__name__)
        raise ValueError(f"{where}: loss must return a scalar; got shape {shape} — reduce it with jnp.sum or jnp.mean")
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise TypeError(f"{where}: loss must return a floating scalar; got dtype {out.dtype}")
    return x0, f, unravel


def positive_int(value: Any, where: str, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{where}: {name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def nonneg_float(value: Any, where: str, name: str, *, positive: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{where}: {name} must be a number; got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise ValueError(f"{where}: {name} must be a finite number {'>' if positive else '>='} 0; got {value!r}")
    return v


def raise_divergence(where: str, step: int, history: np.ndarray, bad: float, hint: str, params: Any = None,
                     what: str = "loss or gradient") -> None:
    msg, last, last_step = divergence_message(where, step, bad, history, what, hint)
    raise DivergenceError(msg, step=step, last_finite_loss=last, last_finite_step=last_step, params=params)


def initial_state(value_and_grad: Callable, x0: jax.Array, max_steps: int, tol: float, trajectory: bool) -> tuple:
    """The loop state `(k, x, f, g, history, trajectory, status, bad)` at step 0 of a descent loop.

    `status`: 0 running, 1 converged (`||g|| <= tol`), 2 diverged (non-finite f or g); `bad` holds
    the first non-finite value (or the gradient norm) for the divergence message.
    """
    f0, g0 = value_and_grad(x0)
    history = jnp.full((max_steps + 1,), jnp.nan, f0.dtype).at[0].set(f0)
    traj = jnp.zeros((max_steps + 1 if trajectory else 0,) + x0.shape, x0.dtype)
    traj = traj.at[0].set(x0) if trajectory else traj
    ok0 = jnp.isfinite(f0) & jnp.all(jnp.isfinite(g0))
    status0 = jnp.where(ok0, jnp.where(jnp.linalg.norm(g0) <= tol, 1, 0), 2)
    bad0 = jnp.where(jnp.isfinite(f0), jnp.linalg.norm(g0), f0)
    return 0, x0, f0, g0, history, traj, status0, bad0


def running(max_steps: int) -> Callable:
    """`while_loop` condition over `initial_state`'s layout: steps left and status still 0."""
    return lambda s: (s[0] < max_steps) & (s[6] == 0)
