"""Factorising and multiplying a tall design inside a JAX program, on one device or with its rows split.

The least-squares driver never touches the rows of the design itself: it calls the functions of a
`LinearOps`, so the same traced program runs with the rows on one device (`SINGLE`, here) or split
over the devices of a mesh (`mmljax.distributed.sharded_ops(mesh)`: tall-skinny QR and kernels in
`shard_map`). Quantities indexed by rows (right-hand sides, residuals) are `(m, k)` arrays where the
backend keeps them; everything of size `p` (solutions, `R`, Gram matrices) is replicated.

A `LinearOps` is hashable (a tuple of module-level or cached functions), so it is a static argument
of the compiled programs that use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from . import doubledouble as ext
from .doubledouble import DD

Array = Any

__all__ = ["QRFactor", "LinearOps", "SINGLE", "solve_augmented", "gram_factor", "solve_triangular"]


class QRFactor(NamedTuple):
    """Thin QR factors of an `(m, p)` design, `m >= p`: `q (m, p)` orthonormal columns (rows where the
    backend keeps them), `r (p, p)` upper triangular. `q = None`: `Q = B R⁻¹` is implicit (`r` from
    the Cholesky factor of the Gram matrix, see `gram_factor`)."""

    q: Array | None
    r: Array


class LinearOps(NamedTuple):
    """The operations on a tall design `B (m, p)` that the least-squares driver is written in.

    - `qr(b)`: `(q, r)` thin Householder QR (`q` row-split like `b`, `r (p, p)` replicated).
    - `rmatmul(b, f)`: `Bᵀ f` in working precision, `(p, k)`.
    - `residual(bh, bl, f, r, z)`: in double-double, `(f − r − B z, Bᵀ r)` for `B = bh + bl`
      (`bl` None: exact), `DD` rows `f`, `r (m, k)` and `DD` `z (p, k)`; returns `(DD (m, k), DD (p, k))`.
    - `colmax(a)`: `max |a|` over the rows, `(k,)`.
    - `gram(b)`: `BᵀB` in working precision.
    - `square_sum(x)`: `Σ_rows x²` of a `DD (m, k)` in double-double, `DD (k,)`.
    - `sum_dd(x)`: `Σ_rows x` of a `DD (m, k)` in double-double, `DD (k,)`.
    - `sum_rows(a)`: `Σ_rows a` in working precision.
    - `devices`: how many devices share the rows; a design handed to these functions has a multiple of
      `devices` rows, at least `p` per device (the driver pads with zero rows, which change nothing).
    - `replicate(a)`: `a` replicated on every device (results leave the program whole, also when
      several processes share the mesh); None: nothing to do.
    """

    qr: Callable
    rmatmul: Callable
    residual: Callable
    colmax: Callable
    gram: Callable
    square_sum: Callable
    sum_dd: Callable
    sum_rows: Callable
    devices: int = 1
    replicate: Callable | None = None


def solve_triangular(r: Array, rhs: Array, *, trans: bool = False) -> Array:
    """`R⁻¹ rhs` (or `R⁻ᵀ rhs`) for an upper-triangular `r`."""
    return jax.scipy.linalg.solve_triangular(r, rhs, trans="T" if trans else "N", lower=False)


def _qr(b):
    return jnp.linalg.qr(b, mode="reduced")


def _rmatmul(b, f):
    return (f.T @ b).T  # a row-times-matrix product: no transposed copy of b


def _residual(bh, bl, f: DD, r: DD, z: DD):
    return ext.tall_residual(bh, bl, z, ext.sub(f, r)), ext.tall_rmatmul(bh, bl, r)


def _colmax(a):
    return jnp.max(jnp.abs(a), axis=0, initial=0.0)


def _gram(b):
    return lax.dot_general(b, b, (((0,), (0,)), ((), ())))


def _square_sum(x: DD) -> DD:
    return ext.square_sum(x, axis=0)


def _sum_dd(x: DD) -> DD:
    return ext.sum_(x, axis=0)


def _sum_rows(a):
    return jnp.sum(a, axis=0)


SINGLE = LinearOps(
    qr=_qr,
    rmatmul=_rmatmul,
    residual=_residual,
    colmax=_colmax,
    gram=_gram,
    square_sum=_square_sum,
    sum_dd=_sum_dd,
    sum_rows=_sum_rows,
)


def gram_factor(ops: LinearOps, b: Array) -> QRFactor:
    """`R` from the Cholesky factor of `BᵀB = RᵀR`, with `Q = B R⁻¹` left implicit (`q = None`).

    Forming `BᵀB` is BLAS-3 work, several times faster than Householder QR on a tall matrix. Its
    `R` carries `cond(B)² eps` relative error, so refinement built on it contracts by about that
    much per step. NaN where the Cholesky factorisation breaks down.
    """
    return QRFactor(None, jnp.linalg.cholesky(ops.gram(b)).T)


def solve_augmented(ops: LinearOps, b: Array, factor: QRFactor, f: Array, g: Array) -> tuple[Array, Array]:
    """Solve `[[I, B], [Bᵀ, 0]] [r; z] = [f; g]` with `B = Q R`, in working precision.

    **Arguments:** `b (m, p)` the design (used only when `Q` is implicit); `f (m, k)`; `g (p, k)`.

    **Returns:** `(r, z)` of shapes `(m, k)` and `(p, k)`: `z = R⁻¹(Qᵀf − R⁻ᵀg)` and
    `r = Q R⁻ᵀ g + (I − QQᵀ) f`. With `g = 0` this is the least-squares solution of `B z ≈ f`
    and its residual.
    """
    q, r = factor
    if q is None:  # z = (RᵀR)⁻¹(Bᵀf − g), r = f − B z
        z = solve_triangular(r, solve_triangular(r, ops.rmatmul(b, f) - g, trans=True))
        return f - b @ z, z
    h = solve_triangular(r, g, trans=True)
    qf = ops.rmatmul(q, f)
    z = solve_triangular(r, qf - h)
    return q @ h + (f - q @ qf), z
