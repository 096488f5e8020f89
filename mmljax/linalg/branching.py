"""A branch that `jax.vmap` does not turn into "compute both sides".

`lax.cond` with a batched predicate becomes a `select`: every batch element pays for both
branches. `cond_where(pred, fn, other, *operands)` is `fn(*operands)` where `pred` holds and
`other(*operands)` elsewhere, element by element, but batched it runs `fn` only when some element
of the batch needs it (one `lax.cond` on "any"), so work that a rare case needs (the minimum-norm
solution of a rank-deficient design, say) costs nothing in a batch where it does not occur.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_batching import custom_vmap

__all__ = ["cond_where"]


def _select(pred, a: Any, b: Any) -> Any:
    """`a` where the batched `pred (B,)` holds, else `b`, for pytrees of `(B, ...)` arrays."""
    return jax.tree_util.tree_map(
        lambda u, v: jnp.where(jnp.reshape(pred, pred.shape + (1,) * (u.ndim - 1)), u, v), a, b
    )


def cond_where(pred: Any, fn: Callable, other: Callable, *operands: Any) -> Any:
    """`fn(*operands)` if `pred` else `other(*operands)`; both must return the same structure, shapes and dtypes.

    **Arguments:** `pred` a boolean scalar (per batch element under `jax.vmap`); `fn`, `other` functions of
    `operands` (arrays or pytrees of them). Unbatched this is `lax.cond`. Under `jax.vmap` with a batched
    `pred`, `other` runs for the whole batch and `fn` too only when `pred` holds for some element; the results
    are then selected element by element. It is not meant to be differentiated (the solvers differentiate around it).
    """

    @custom_vmap
    def branch(p, *ops):
        return lax.cond(p, fn, other, *ops)

    @branch.def_vmap
    def _batched(axis_size: int, in_batched: list, p, *ops):
        p_batched, ops_batched = in_batched[0], in_batched[1:]
        axes = tuple(jax.tree_util.tree_map(lambda b: 0 if b else None, b) for b in ops_batched)  # per leaf

        def run(g):
            return jax.vmap(g, in_axes=axes, axis_size=axis_size)(*ops)

        if not p_batched:
            out = lax.cond(p, lambda: run(fn), lambda: run(other))
        else:
            out = lax.cond(jnp.any(p), lambda: _select(p, run(fn), run(other)), lambda: run(other))
        return out, jax.tree_util.tree_map(lambda _: True, out)

    return branch(jnp.asarray(pred, bool), *operands)
