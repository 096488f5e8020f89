"""One LAPACK call at a time: a data dependency that orders otherwise independent factorisations.

XLA:CPU runs the operations of a program that do not depend on each other concurrently, on its
intra-op thread pool. jaxlib's batched LAPACK kernels (QR, SVD, triangular solves, ... under
`jax.vmap`) split a large batch over that same pool and block until the pieces are done. When every
thread of the pool is such a blocked kernel, the pieces never run and the program never finishes:
on a two-core machine, two batched factorisations that happen to start together are enough (a
`jax.jit(jax.vmap(linear_regression))` of a few hundred bootstrap fits hung this way, at no CPU).

`after(x, *deps)` returns `x` unchanged, bit for bit (subnormals aside), but as the result of an operation that reads
`deps`, so XLA cannot start what consumes it before `deps` exist. Threading the factorisations of a
program through it makes them run one after another (`optimization_barrier` does not do this: XLA:CPU
schedules by buffers, and the barrier's outputs alias its inputs).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["after"]


def _first(leaf) -> Any:
    return lax.stop_gradient(jnp.ravel(jnp.asarray(leaf))[0])


def after(x: Any, *deps: Any) -> Any:
    """`x` (a pytree of floating-point arrays) computed only once every array in `deps` is.

    `x − |0·d|`, with `d` the finite part of the first element of each array of `deps`: the
    subtraction of `+0` leaves every value of `x` as it was (`−0` stays `−0`, NaN stays NaN; subnormal
    numbers flush to zero on XLA:CPU, as in any of its arithmetic), and XLA does not simplify a
    floating-point product with zero away (it is NaN for an infinite `d`, hence the finite part).
    Empty arrays in `deps` add no dependency.
    """
    leaves = [leaf for leaf in jax.tree_util.tree_leaves(deps) if jnp.size(leaf) > 0]
    if not leaves:
        return x
    d = sum(jnp.abs(_first(leaf).astype(jnp.float32)) for leaf in leaves)
    zero = jnp.abs(0.0 * jnp.where(jnp.isfinite(d), d, 0.0))

    def tie(a):
        a = jnp.asarray(a)
        if not jnp.issubdtype(a.dtype, jnp.floating):
            raise TypeError(f"after: x must hold floating-point arrays, got {a.dtype}")
        return a - zero.astype(a.dtype)

    return jax.tree_util.tree_map(tie, x)
