"""Factorising and multiplying a tall design: what the least-squares driver needs, and its host version.

The driver (`least_squares._fit`) never touches the rows of the design itself: it calls the
functions of a `LinearOps`, so the same code runs with the rows in host memory (`HOST`, here) or
split over devices (`mmljax.distributed.least_squares`, tall-skinny QR and kernels in
`shard_map`). Quantities indexed by rows (right-hand sides, residuals) stay where the backend keeps
them, as numpy or jax arrays that `mmljax.solvers._extended` computes with either way; everything of
size `p` (solutions, `R`, Gram matrices) is a host numpy array.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np
import scipy.linalg

from . import _extended as ext
from ._extended import DD

Array = Any


class QRFactor(NamedTuple):
    """Thin QR factors of an `(m, p)` design: `q (m, p)` orthonormal columns (kept where the rows
    live), `r (p, p)` upper triangular on the host; for `m < p`, `q (m, m)` and `r (m, p)`."""

    q: Array
    r: np.ndarray


class LinearOps(NamedTuple):
    """The operations on a tall design `B (m, p)` that the least-squares driver is written in.

    - `place(b, f)`: the host design `b` (a `DD` whose `lo` may be None: exact in float64) and
      right-hand sides `f (m, k)` moved to where the backend computes; returns `(b, f)` there.
    - `factorise(b)`: a `QRFactor` of `b.hi`.
    - `solve(b, factor, f, g)`: `[[I, B], [Bᵀ, 0]] [r; z] = [f; g]` in working precision, for
      `f (m, k)` rows and a host `g (p, k)`; returns `(r, z)`.
    - `residual(b, f, g, r, z)`: the residuals of that system in double-double, `(f − r − B z,
      g − Bᵀ r)`, for double-double `f`, `r` (rows) and `g`, `z` (host); `r = None` means zero
      and skips `Bᵀ r` (returns None for it).
    - `qt(b, factor, f)`: `Qᵀ f` on the host, `(p, k)`.
    - `gram(b, f, n_obs)`: `(BᵀB, B_obsᵀB_obs, Bᵀf)` in working precision, `B_obs` the first
      `n_obs` rows (the observations, without ridge penalty rows).
    - `gram_dd(b)`: `BᵀB` in double-double, on the host.
    - `to_host(rows)`: a numpy copy of a row-indexed array.
    """

    place: Callable[[DD, np.ndarray], tuple[Any, Array]]
    factorise: Callable[[Any], QRFactor]
    solve: Callable[[Any, QRFactor, Array, np.ndarray], tuple[Array, np.ndarray]]
    residual: Callable[[Any, DD, DD, DD | None, DD], tuple[DD, DD | None]]
    qt: Callable[[Any, QRFactor, Array], np.ndarray]
    gram: Callable[[Any, Array, int], tuple[np.ndarray, np.ndarray, np.ndarray]]
    gram_dd: Callable[[Any], DD]
    to_host: Callable[[Array], np.ndarray]


def solve_triangular(r: np.ndarray, rhs: np.ndarray, *, trans: bool = False) -> np.ndarray:
    """`R⁻¹ rhs` (or `R⁻ᵀ rhs`) for an upper-triangular host `r`."""
    return scipy.linalg.solve_triangular(r, rhs, trans="T" if trans else "N", lower=False, check_finite=False)


def qr_factor(b: np.ndarray) -> QRFactor:
    """Householder QR (LAPACK `geqrf`/`orgqr` through numpy) of an `(m, p)` matrix."""
    q, r = np.linalg.qr(b, mode="reduced")
    return QRFactor(q, r)


def solve_augmented(factor: QRFactor, f: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve `[[I, B], [Bᵀ, 0]] [r; z] = [f; g]` with `B = q r`, in working precision.

    **Arguments:** `f (m, k)` and `g (p, k)`.

    **Returns:** `(r, z)` of shapes `(m, k)` and `(p, k)`: `z = R⁻¹(Qᵀf − R⁻ᵀg)` and
    `r = Q R⁻ᵀ g + (I − QQᵀ) f`. With `g = 0` this is the least-squares solution of `B z ≈ f`
    and its residual.
    """
    q, r = factor
    h = solve_triangular(r, g, trans=True)
    qf = (f.T @ q).T  # a row-times-matrix product: no transposed copy of q
    z = solve_triangular(r, qf - h)
    return q @ h + (f - q @ qf), z


def _with_lo(b: DD) -> DD:
    return b if b.lo is not None else DD(b.hi, np.zeros_like(b.hi))


def _residual(b: DD, f: DD, g: DD, r: DD | None, z: DD) -> tuple[DD, DD | None]:
    bb = _with_lo(b)
    res_f = ext.sub(f if r is None else ext.sub(f, r), ext.matmul(bb, z))
    return res_f, None if r is None else ext.sub(g, ext.rmatmul(bb, r))


def _gram(b: DD, f: np.ndarray, n_obs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    obs = b.hi[:n_obs]
    return b.hi.T @ b.hi, obs.T @ obs, (f.T @ b.hi).T


HOST = LinearOps(
    place=lambda b, f: (b, f),
    factorise=lambda b: qr_factor(b.hi),
    solve=lambda b, factor, f, g: solve_augmented(factor, f, g),
    residual=_residual,
    qt=lambda b, factor, f: (f.T @ factor.q).T,
    gram=_gram,
    gram_dd=lambda b: ext.rmatmul(_with_lo(b), _with_lo(b)),
    to_host=np.asarray,
)
