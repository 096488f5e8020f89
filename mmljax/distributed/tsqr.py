"""Tall-skinny QR and the normal equations of a row-sharded matrix.

**TSQR.** Each device factors its own block of rows, `A_i = Q_i R_i` (Householder, LAPACK/cuSOLVER
through `jnp.linalg.qr`). The `p × p` factors are then combined in a reduction tree: at level `l`
device `i` swaps its current `R` with device `i XOR 2^l` (`lax.ppermute`, `p²` numbers each way)
and both factor the same stacked `2p × p` matrix `[R_low; R_high]`, so both hold the same new `R`
and each keeps its half of the small `Q`. After `log2 D` levels every device holds the final `R`
(replicated) and its block of the thin `Q = blockdiag(Q_i) · (product of the small Q halves)`,
still sharded by rows, with `A = Q R` and orthonormal columns. When `D` is not a power of two the
tree has a single level: the `D` factors are all-gathered (`D p²` numbers) and every device factors
the `Dp × p` stack. Nothing of size `n` ever leaves its device.

**Normal equations.** `AᵀA = Σ_i A_iᵀ A_i` and `Aᵀy = Σ_i A_iᵀ y_i` with one `psum` of `p² + pk`
numbers: the fast path, which squares the condition number (see GUIDE §5).

Both are traced inside `shard_map` bodies by the sharded least-squares solver; the public wrappers
here take whole arrays.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import Mesh, PartitionSpec
from jaxtyping import Array, ArrayLike, Float

from ..linalg.qr import QRFactor
from ._compat import shard_map
from .mesh import data_axis, data_devices, shard_rows

__all__ = ["tsqr", "normal_equations", "tsqr_levels"]


def tsqr_levels(n_devices: int) -> int:
    """Levels of the TSQR reduction tree: `log2 D` for a power of two, else 1 (all-gather), 0 for one device."""
    if n_devices <= 1:
        return 0
    return n_devices.bit_length() - 1 if n_devices & (n_devices - 1) == 0 else 1


def tsqr_local(a: Array, axis: str, n_devices: int) -> tuple[Array, Array]:
    """Inside `shard_map`: this device's rows `a (n_i, p)`, `n_i >= p` → (its rows of `Q`, the replicated `R`)."""
    q, r = jnp.linalg.qr(a)
    p = r.shape[0]
    if n_devices == 1:
        return q, r
    me = lax.axis_index(axis)
    if n_devices & (n_devices - 1) == 0:
        acc = jnp.eye(p, dtype=a.dtype)
        for level in range(n_devices.bit_length() - 1):
            bit = 1 << level
            other = lax.ppermute(r, axis, perm=[(j, j ^ bit) for j in range(n_devices)])
            low = (me & bit) == 0
            # Both partners stack in the same order, so both compute bit-identical factors.
            q2, r = jnp.linalg.qr(jnp.concatenate([jnp.where(low, r, other), jnp.where(low, other, r)]))
            acc = acc @ jnp.where(low, q2[:p], q2[p:])
    else:
        stack = lax.all_gather(r, axis).reshape(n_devices * p, p)
        q2, r = jnp.linalg.qr(stack)
        acc = lax.dynamic_slice_in_dim(q2, me * p, p, axis=0)
    return q @ acc, r


@functools.lru_cache(maxsize=16)
def _tsqr_fn(mesh: Mesh):
    ax = data_axis(mesh)
    D = data_devices(mesh)
    body = functools.partial(tsqr_local, axis=ax, n_devices=D)
    return jax.jit(shard_map(body, mesh, (PartitionSpec(ax),), (PartitionSpec(ax), PartitionSpec()), check=False))


@functools.lru_cache(maxsize=16)
def _normal_fn(mesh: Mesh):
    ax = data_axis(mesh)

    def body(a, y):
        rhs = y @ a if y.ndim == 1 else (y.T @ a).T  # row-times-matrix: no materialised transpose
        return lax.psum(jnp.einsum("na,nb->ab", a, a), ax), lax.psum(rhs, ax)

    spec = PartitionSpec(ax)
    return jax.jit(shard_map(body, mesh, (spec, spec), (PartitionSpec(), PartitionSpec()), check=False))


def _matrix(A: ArrayLike, where: str) -> tuple[int, int]:
    if jnp.ndim(A) != 2:
        raise ValueError(f"{where}: A must have shape (n, p); got {jnp.shape(A)}")
    n, p = (int(s) for s in jnp.shape(A))
    if n < p or p == 0:
        raise ValueError(f"{where}: A must be tall, n >= p >= 1 (one row per observation); got shape {(n, p)}")
    if not jnp.issubdtype(jnp.result_type(A), jnp.floating):
        raise TypeError(f"{where}: A must be a floating array; got dtype {jnp.result_type(A)}")
    return n, p


def tsqr(A: Float[ArrayLike, "n p"], mesh: Mesh) -> QRFactor:
    """Thin QR of `A` with its rows split over the mesh's first axis.

    **Arguments:** `A (n, p)`, `n >= p` (host array or a row-sharded `jax.Array`); `mesh`.

    **Returns:** `QRFactor(q, r)`: `q (N, p)` row-sharded (`N >= n`; rows `n:` belong to zero
    padding rows), orthonormal columns; `r (p, p)` upper triangular, replicated; `A = q[:n] @ r`.
    The signs of `r`'s rows may differ from a single-device QR.
    """
    where = "tsqr"
    data_axis(mesh, where)
    _, p = _matrix(A, where)
    a = shard_rows(A, mesh, min_rows_per_device=p)
    return QRFactor(*_tsqr_fn(mesh)(a))


def normal_equations(A: Float[ArrayLike, "n p"], y: Float[ArrayLike, "n ..."], mesh: Mesh) -> tuple[Array, Array]:
    """`(AᵀA, Aᵀy)` from per-device partial sums combined with one `psum` (`p² + pk` numbers).

    **Arguments:** `A (n, p)`, `y (n,)` or `(n, k)`, host arrays or row-sharded; `mesh`.

    **Returns:** `AᵀA (p, p)` and `Aᵀy (p,)`/`(p, k)`, replicated on every device.
    """
    where = "normal_equations"
    data_axis(mesh, where)
    if jnp.ndim(A) != 2:
        raise ValueError(f"{where}: A must have shape (n, p); got {jnp.shape(A)}")
    if jnp.ndim(y) not in (1, 2) or jnp.shape(y)[0] != jnp.shape(A)[0]:
        raise ValueError(
            f"{where}: y must have shape (n,) or (n, k) with n = {jnp.shape(A)[0]} rows like A; got {jnp.shape(y)}"
        )
    a = shard_rows(A, mesh)
    yy = shard_rows(y, mesh, dtype=a.dtype)
    return _normal_fn(mesh)(a, yy)
