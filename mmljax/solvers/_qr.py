"""Householder QR of a design and the solve of the augmented least-squares system with it.

Kept apart from the refinement loop (`_refine.py`) so that another factorisation (for example a
tall-skinny QR over several devices) can be dropped in: it only has to return a `QRFactor` whose
`q` has orthonormal columns and whose `r` is upper triangular with `b == q @ r`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ._extended import xp_of

Array = Any


class QRFactor(NamedTuple):
    """Thin QR factors of an `(n, p)` design: `q (n, p)` orthonormal columns, `r (p, p)` upper triangular."""

    q: Array
    r: Array


def qr_factor(b: Array) -> QRFactor:
    """Householder QR (LAPACK `geqrf` through numpy/jax) of an `(n, p)` matrix with `n >= p`."""
    xp = xp_of(b)
    q, r = xp.linalg.qr(b, mode="reduced")
    return QRFactor(q, r)


def _solve_triangular(r: Array, rhs: Array, *, trans: bool) -> Array:
    if xp_of(r, rhs) is np:
        import scipy.linalg

        return scipy.linalg.solve_triangular(r, rhs, trans="T" if trans else "N", lower=False,
                                             check_finite=False)
    import jax.scipy.linalg

    return jax.scipy.linalg.solve_triangular(r, rhs, trans="T" if trans else "N", lower=False)


def solve_augmented(factor: QRFactor, f: Array, g: Array) -> tuple[Array, Array]:
    """Solve `[[I, B], [Bᵀ, 0]] [r; z] = [f; g]` with `B = q r`, in working precision.

    **Arguments:** `f (n, k)` and `g (p, k)`.

    **Returns:** `(r, z)` of shapes `(n, k)` and `(p, k)`: `z = R⁻¹(Qᵀf − R⁻ᵀg)` and
    `r = Q R⁻ᵀ g + (I − QQᵀ) f`. With `g = 0` this is the least-squares solution of `B z ≈ f`
    and its residual.
    """
    q, r = factor
    h = _solve_triangular(r, g, trans=True)
    qf = (f.T @ q).T  # written as a row-times-matrix product: faster than q.T @ f on XLA CPU
    z = _solve_triangular(r, qf - h, trans=False)
    return q @ h + (f - q @ qf), z
