"""Column-major `vec`, its inverse, and the flattening of parameter pytrees.

mmljax states one layout everywhere: `vec(X)` stacks the columns of `X` (Fortran order), so
that the classical identity `vec(A X B) = (Bᵀ ⊗ A) vec(X)` holds exactly. Pytrees of
parameters are flattened leaf by leaf in `jax.tree_util` order (the order
`jax.flatten_util.ravel_pytree` uses), each leaf in `vec` order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Shaped

from ._validate import check_int

__all__ = ["vec", "unvec", "commutation_matrix", "ravel_vec"]


def _as_array(a: Any, where: str, what: str) -> Array:
    if isinstance(a, (str, bytes)):
        raise TypeError(f"{where}: {what} must be a numeric array; got {a!r}")
    try:
        return jnp.asarray(a)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{where}: {what} must be a numeric array; got {type(a).__name__} ({e})") from None


def vec(X: ArrayLike) -> Shaped[Array, " n"]:
    """Column-major vectorisation.

    **Arguments:** `X` of any shape (a scalar gives a length-1 vector).

    **Returns:** a 1-D array of length `X.size`; for 2-D `X` this is `X.T.ravel()`
    (the columns of `X` stacked), for N-D `X` it is `ravel(X, order="F")`.
    """
    return jnp.ravel(_as_array(X, "vec", "X"), order="F")


def unvec(v: ArrayLike, shape: int | Sequence[int]) -> Array:
    """Inverse of `vec`: reshape a vector of length `prod(shape)` column-major into `shape`."""
    v = jnp.asarray(v)
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    shape = tuple(check_int(s, "unvec", "shape", minimum=0) for s in shape)
    if v.ndim != 1 or v.size != math.prod(shape):
        raise ValueError(
            f"unvec: v must be 1-D with {math.prod(shape)} elements to fill shape {shape}; got shape {tuple(v.shape)}"
        )
    return jnp.reshape(v, shape, order="F")


def commutation_matrix(m: int, n: int, dtype=None) -> Shaped[Array, "mn mn"]:
    """The commutation matrix `K` with `K vec(X) = vec(Xᵀ)` for `X` of shape `(m, n)`.

    **Returns:** an `(m·n, m·n)` permutation matrix.
    """
    m = check_int(m, "commutation_matrix", "m", minimum=1)
    n = check_int(n, "commutation_matrix", "n", minimum=1)
    idx = np.arange(m * n).reshape((m, n), order="F")  # idx[i, j] = position of X[i, j] in vec(X)
    perm = idx.ravel(order="C")  # = vec(idx.T): position in vec(X) of each entry of vec(Xᵀ)
    dtype = dtype or jnp.result_type(float)
    return jnp.asarray(np.eye(m * n)[perm], dtype=dtype)


def ravel_vec(tree: Any) -> tuple[Shaped[Array, " P"], Callable[[ArrayLike], Any]]:
    """Flatten a pytree of arrays to one vector: leaves in tree order, each in `vec` order.

    For a single array this is `vec`; for a dict/list/tuple of arrays the leaves are taken in
    `jax.tree_util.tree_flatten` order (the order of `ravel_pytree`), each column-major.

    **Returns:** `(flat, unravel)` with `flat` of shape `(P,)` (the leaves' promoted dtype) and
    `unravel(flat)` the inverse, giving each leaf back its own dtype.
    """
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    leaves = [_as_array(leaf, "ravel_vec", "a leaf of the tree") for leaf in leaves]
    shapes = [leaf.shape for leaf in leaves]
    dtypes = [leaf.dtype for leaf in leaves]
    sizes = [leaf.size for leaf in leaves]
    dtype = jnp.result_type(*leaves) if leaves else jnp.result_type(float)
    flat = jnp.concatenate([vec(leaf).astype(dtype) for leaf in leaves]) if leaves else jnp.zeros((0,), dtype)

    def unravel(v: ArrayLike) -> Any:
        v = jnp.asarray(v)
        if v.shape != (sum(sizes),):
            raise ValueError(f"unravel: expected a vector of shape ({sum(sizes)},); got {tuple(v.shape)}")
        parts, start = [], 0
        for shape, size, dt in zip(shapes, sizes, dtypes):
            part = jnp.reshape(v[start : start + size], shape, order="F")
            parts.append(part.astype(dt) if part.dtype != dt else part)
            start += size
        return jax.tree_util.tree_unflatten(treedef, parts)

    return flat, unravel
