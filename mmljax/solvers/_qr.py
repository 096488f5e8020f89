"""Factorising and multiplying a tall design: what the least-squares driver needs, and its host version.

The driver (`least_squares._fit`) never touches the rows of the design itself: it calls the
functions of a `LinearOps`, so the same code runs with the rows in host memory (`HOST`, here) or
split over devices (`mmljax.distributed.least_squares`, tall-skinny QR and kernels in
`shard_map`). Quantities indexed by rows (right-hand sides, residuals) stay where the backend keeps
them, as numpy or jax arrays that `mmljax.linalg.doubledouble` computes with either way; everything of
size `p` (solutions, `R`, Gram matrices) is a host numpy array.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
from jax import lax

from ..linalg import doubledouble as ext
from ..linalg.doubledouble import DD

Array = Any


class QRFactor(NamedTuple):
    """Thin QR factors of an `(m, p)` design: `q (m, p)` orthonormal columns (kept where the rows
    live), `r (p, p)` upper triangular on the host; for `m < p`, `q (m, m)` and `r (m, p)`.
    `q = None`: `Q = B R⁻¹` is implicit (`r` from the Gram matrix; see `cholesky_factor`)."""

    q: Array
    r: np.ndarray


class LinearOps(NamedTuple):
    """The operations on a tall design `B (m, p)` that the least-squares driver is written in.

    - `place(b, scale, f)`: the host design `b` (a `DD` whose `lo` may be None: exact in float64),
      to be used as `b · diag(scale)` (powers of two: exact), and right-hand sides `f (m, k)`
      moved to where the backend computes; returns `(B, f)` there.
    - `factorise(b, stable=False)`: a `QRFactor` of the placed `B`; `stable=True` asks for an explicit
      orthonormal `Q` (a backend may otherwise return the faster, implicit Gram-matrix factor).
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

    place: Callable[[DD, np.ndarray, np.ndarray], tuple[Any, Array]]
    factorise: Callable[..., QRFactor]
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


def cholesky_factor(gram: np.ndarray, cond_limit: float) -> QRFactor | None:
    """`R` from the Cholesky factor of the Gram matrix `BᵀB = RᵀR`, `Q = B R⁻¹` left implicit (`q = None`).

    Forming `BᵀB` is BLAS-3 work, several times faster than Householder QR on a tall matrix. Its
    `R` carries `cond(B)² eps` relative error, so the refinement built on it contracts by about
    that much per step; None when the Cholesky fails or `cond(B)` exceeds `cond_limit`.
    """
    try:
        r = scipy.linalg.cholesky(gram, lower=False, check_finite=False)
    except np.linalg.LinAlgError:
        return None
    sv = np.linalg.svd(r, compute_uv=False)
    if not np.all(np.isfinite(sv)) or sv[-1] <= 0 or sv[0] > cond_limit * sv[-1]:
        return None
    return QRFactor(None, r)


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


# ------------------------------------------------------------------------------ the host backend
# Small designs: numpy throughout (Householder QR with an explicit Q, double-double products in
# numpy; nothing to compile). Large ones (m·p·max(p, k) products from LARGE_PRODUCTS on) are moved
# once into XLA as equal blocks of rows, scaled on the way, and every pass over them runs there: the
# Gram matrix gives the factor when the design is well conditioned (the refinement makes up for its
# cond² eps), Householder QR otherwise; double-double products use `mmljax.linalg.doubledouble`'s kernels. One
# compiled program per block shape, so per column count, not per row count. (This also keeps the
# passes off OpenBLAS's threads, which slow down tenfold or more on a busy machine.)

LARGE_PRODUCTS = 1 << 22    # m·p·max(p, k) from which a design is "large"
BLOCK_PRODUCTS = 1 << 19    # about this many products (rows × p × k) per block of rows
GRAM_COND_LIMIT = 1e5       # the Gram-matrix factor is used up to this condition number (cond² eps <= 2e-6)


class Blocks(NamedTuple):
    """A large design `B = b · diag(scale)` as XLA arrays of `rows` rows each (the last zero-padded)."""

    hi: list[Any]
    lo: list[Any] | None
    rows: int
    m: int
    p: int
    host: DD               # the unscaled host design, for a Householder fallback
    scale: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.m, self.p


def _x64():
    from ..distributed._compat import float64_scope  # the kernels compute in float64 whatever jax_enable_x64 says

    return float64_scope()


def _pad(a: np.ndarray | None, rows: int) -> np.ndarray | None:
    if a is None or a.shape[0] == rows:
        return a
    return np.concatenate([a, np.zeros((rows - a.shape[0],) + a.shape[1:], a.dtype)])


def _block_rows(m: int, width: int) -> int:
    rows = max(ext.LANES, BLOCK_PRODUCTS // max(width, 1) // ext.LANES * ext.LANES)
    return min(rows, -(-m // ext.LANES) * ext.LANES)


def _slices(b: Blocks):
    return [slice(start, min(start + b.rows, b.m)) for start in range(0, b.m, b.rows)]


_scale_block = jax.jit(lambda a, scale: a * scale)
_gram_block = jax.jit(lambda bh: lax.dot_general(bh, bh, (((0,), (0,)), ((), ()))))
_rmatvec_block = jax.jit(lambda bh, f: (f.T @ bh).T)
_matvec_block = jax.jit(lambda bh, f, z: f - bh @ z)


@functools.partial(jax.jit, static_argnames="with_r")
def _residual_block(bh, bl, f: DD, r: DD | None, z: DD, with_r: bool):
    res = ext.tall_residual(bh, bl, z, ext.sub(f, r) if with_r else f)
    return res, ext.tall_rmatmul(bh, bl, r) if with_r else None


_gram_dd_block = jax.jit(lambda bh, bl: ext.tall_rmatmul(bh, bl, DD(bh, jnp.zeros_like(bh) if bl is None else bl)))


def _rows_of(b: Blocks, a: np.ndarray, sl: slice) -> np.ndarray:
    return _pad(a[sl], b.rows)


def _collect(b: Blocks, outs: list) -> np.ndarray:
    """Row blocks from the kernels back into one host array of `m` rows."""
    return np.concatenate([np.asarray(o)[: sl.stop - sl.start] for o, sl in zip(outs, _slices(b))])


def _place(b: DD, scale: np.ndarray, f: np.ndarray):
    m, p = b.hi.shape
    k = f.shape[1]
    if m * p * max(p, k) < LARGE_PRODUCTS:
        return DD(b.hi * scale, None if b.lo is None else b.lo * scale), f
    rows = _block_rows(m, p * k)
    with _x64():
        blocks = [slice(start, min(start + rows, m)) for start in range(0, m, rows)]
        hi = [_scale_block(_pad(b.hi[sl], rows), scale) for sl in blocks]
        lo = None if b.lo is None else [_scale_block(_pad(b.lo[sl], rows), scale) for sl in blocks]
    return Blocks(hi, lo, rows, m, p, b, scale), f


def _host_dd(b) -> DD:
    """The scaled design as a host double-double (`lo` materialised), for the numpy paths."""
    if isinstance(b, Blocks):
        b = DD(b.host.hi * b.scale, None if b.host.lo is None else b.host.lo * b.scale)
    return b if b.lo is not None else DD(b.hi, np.zeros_like(b.hi))


def _gram_of_blocks(b: Blocks) -> np.ndarray:
    with _x64():
        return sum(np.asarray(g) for g in [_gram_block(h) for h in b.hi])


def _factorise(b, stable: bool = False) -> QRFactor:
    if isinstance(b, Blocks) and not stable and b.m >= b.p:
        factor = cholesky_factor(_gram_of_blocks(b), GRAM_COND_LIMIT)
        if factor is not None:
            return factor
    return qr_factor(_host_dd(b).hi if isinstance(b, Blocks) else b.hi)


def _rmatvec(b, f: np.ndarray) -> np.ndarray:
    """`Bᵀ f` in working precision."""
    if not isinstance(b, Blocks):
        return (f.T @ b.hi).T
    with _x64():
        return sum(np.asarray(x) for x in [_rmatvec_block(h, _rows_of(b, f, sl)) for h, sl in zip(b.hi, _slices(b))])


def _solve(b, factor: QRFactor, f: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if factor.q is not None:
        return solve_augmented(factor, f, g)
    # Q = B R⁻¹ implicit: z = (RᵀR)⁻¹(Bᵀf − g), r = f − B z
    z = solve_triangular(factor.r, solve_triangular(factor.r, _rmatvec(b, f) - g, trans=True))
    if not isinstance(b, Blocks):
        return f - b.hi @ z, z
    with _x64():
        return _collect(b, [_matvec_block(h, _rows_of(b, f, sl), z) for h, sl in zip(b.hi, _slices(b))]), z


def _qt(b, factor: QRFactor, f: np.ndarray) -> np.ndarray:
    if factor.q is None:  # Qᵀf = R⁻ᵀ Bᵀf
        return solve_triangular(factor.r, _rmatvec(b, f), trans=True)
    return (f.T @ factor.q).T


def _residual(b, f: DD, g: DD, r: DD | None, z: DD) -> tuple[DD, DD | None]:
    if not isinstance(b, Blocks):
        bb = _host_dd(b)
        res_f = ext.sub(f if r is None else ext.sub(f, r), ext.matmul(bb, z))
        return res_f, None if r is None else ext.sub(g, ext.rmatmul(bb, r))
    with _x64():
        outs = []
        for i, sl in enumerate(_slices(b)):  # dispatched asynchronously, collected below
            ff = DD(_rows_of(b, f.hi, sl), _rows_of(b, f.lo, sl))
            rr = None if r is None else DD(_rows_of(b, r.hi, sl), _rows_of(b, r.lo, sl))
            outs.append(_residual_block(b.hi[i], None if b.lo is None else b.lo[i], ff, rr, z, with_r=r is not None))
        res = DD(_collect(b, [o[0].hi for o in outs]), _collect(b, [o[0].lo for o in outs]))
        if r is None:
            return res, None
        parts = DD(np.stack([np.asarray(o[1].hi) for o in outs]), np.stack([np.asarray(o[1].lo) for o in outs]))
    return res, ext.sub(g, ext.sum_(parts, axis=0))


def _gram_dd(b) -> DD:
    if not isinstance(b, Blocks):
        bb = _host_dd(b)
        return ext.rmatmul(bb, bb)
    with _x64():
        parts = [_gram_dd_block(h, None if b.lo is None else b.lo[i]) for i, h in enumerate(b.hi)]
        return ext.sum_(DD(np.stack([np.asarray(x.hi) for x in parts]), np.stack([np.asarray(x.lo) for x in parts])),
                        axis=0)


def _gram(b, f: np.ndarray, n_obs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not isinstance(b, Blocks):
        obs = b.hi[:n_obs]
        return b.hi.T @ b.hi, obs.T @ obs, _rmatvec(b, f)
    gram = _gram_of_blocks(b)
    extra = b.host.hi[n_obs:] * b.scale  # rows after the observations: ridge penalty rows (few)
    return gram, gram - extra.T @ extra, _rmatvec(b, f)


HOST = LinearOps(
    place=_place,
    factorise=_factorise,
    solve=_solve,
    residual=_residual,
    qt=_qt,
    gram=_gram,
    gram_dd=_gram_dd,
    to_host=np.asarray,
)
