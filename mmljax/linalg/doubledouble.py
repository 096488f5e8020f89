"""Double-double ("dd") arithmetic: a value is an unevaluated sum `hi + lo` with |lo| <= ulp(hi)/2.

Portable: built only from IEEE additions and multiplications of the working dtype (float64 gives
about 106 significant bits, float32 about 48), never from a platform `long double`.

Exact under any compiler. `two_prod` never uses the rounded product `fl(a·b)`: it splits both
factors into halves by masking mantissa bits and adds the four partial products, each of which is
exact, with error-free additions. A compiler may contract `x·y + z` into a fused multiply-add (XLA
does on CPU and GPU, and may recompute a product inside every fusion that consumes it); for an
exact product that changes nothing, so the same inputs give the same bits in numpy and under
`jax.jit`. (Dekker's `(a_h b_h − fl(a·b)) + ...` is exact in numpy but not under XLA, which turns
`a_h b_h − a·b` into `fma(−a, b, a_h b_h)`: 1e-15 relative error in a jitted dot product.)

Every function works on numpy arrays and on jax arrays (also under `jax.jit`): the array module
is taken from the inputs. `tall_residual` and `tall_rmatmul` are the jax-only kernels for tall
matrices (loops in XLA, compensated accumulation); the least-squares solvers run them on blocks of
rows on the host and on each device's rows of a sharded design.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Array = Any


class DD(NamedTuple):
    """An extended-precision array `hi + lo` (both of the same shape and floating dtype)."""

    hi: Array
    lo: Array

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.hi.shape)


def xp_of(*arrays: Any):
    """`jax.numpy` if any argument is a jax array (or tracer), else `numpy`."""
    for a in arrays:
        if isinstance(a, DD):
            a = a.hi
        if isinstance(a, jax.Array):
            return jnp
    return np


_MASKS = {
    # Round the significand to its top 26 (float64) / 12 (float32) bits in the integer domain
    # (add half of the dropped part, then clear it). `hi` is then a multiple of 2^27 (2^12) units
    # in the last place of `a`, and `lo = a - hi` is exact with |lo| <= 2^26 (2^11) units.
    np.dtype(np.float64): (np.uint64, 0xFFFFFFFFF8000000, 1 << 26),
    np.dtype(np.float32): (np.uint32, 0xFFFFF000, 1 << 11),
}


def split(a: Array) -> tuple[Array, Array]:
    """`a == hi + lo` exactly, each of `hi` and `lo` fitting in half of the significand bits."""
    xp = xp_of(a)
    if xp is np:
        a = np.asarray(a)
    dtype = np.dtype(a.dtype)
    if dtype not in _MASKS:
        raise TypeError(f"extended arithmetic needs float32 or float64 arrays; got {dtype}")
    uint, mask, half = _MASKS[dtype]
    if xp is np:
        hi = ((a.view(uint) + uint(half)) & uint(mask)).view(dtype)
    else:
        bits = lax.bitcast_convert_type(a, uint)
        hi = lax.bitcast_convert_type((bits + jnp.asarray(half, uint)) & jnp.asarray(mask, uint), dtype)
    return hi, a - hi


def two_sum(a: Array, b: Array) -> tuple[Array, Array]:
    """`s + e == a + b` exactly with `s = fl(a + b)` (Knuth; no ordering assumption)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def fast_two_sum(a: Array, b: Array) -> tuple[Array, Array]:
    """`s + e == a + b` exactly, assuming |a| >= |b| (or a == 0)."""
    s = a + b
    return s, b - (s - a)


def _product_pair(ah: Array, al: Array, bh: Array, bl: Array) -> tuple[Array, Array]:
    """`(ah + al)(bh + bl) == top + rest` exactly (unnormalised), from the split halves.

    In units `g` = ulp(a)·ulp(b) (float64): `ah·bh` is a multiple of 2^54 g; `ah·bl + al·bh` is a
    sum of multiples of 2^27 g of size <= 2^80 g, so it is exact; `top = fl(ah·bh + mid)` is below
    2^106 g, so its rounding error is <= 2^52 g; adding `al·bl` (<= 2^52 g) gives <= 2^53 g: exact.
    """
    mid = ah * bl + al * bh
    full = ah * bh
    top = full + mid
    return top, (mid - (top - full)) + al * bl


def two_prod(a: Array, b: Array) -> tuple[Array, Array]:
    """`p + e == a * b` exactly, with `p = fl(a * b)` (barring underflow and overflow)."""
    top, rest = _product_pair(*split(a), *split(b))
    return fast_two_sum(top, rest)


def from_float(a: Array) -> DD:
    """A working-precision array as an extended one (`lo = 0`)."""
    return DD(a, a * 0)


def add(x: DD, y: DD) -> DD:
    """`x + y` in extended precision (the accurate, two-`two_sum` variant)."""
    s, e = two_sum(x.hi, y.hi)
    t, f = two_sum(x.lo, y.lo)
    s, e = fast_two_sum(s, e + t)
    return DD(*fast_two_sum(s, e + f))


def add_float(x: DD, b: Array) -> DD:
    """`x + b` for a working-precision `b`."""
    s, e = two_sum(x.hi, b)
    return DD(*fast_two_sum(s, e + x.lo))


def neg(x: DD) -> DD:
    return DD(-x.hi, -x.lo)


def sub(x: DD, y: DD) -> DD:
    return add(x, neg(y))


def mul(x: DD, y: DD) -> DD:
    """`x * y` in extended precision."""
    p, e = two_prod(x.hi, y.hi)
    return DD(*fast_two_sum(p, e + (x.hi * y.lo + x.lo * y.hi)))


def mul_float(x: DD, b: Array) -> DD:
    """`x * b` for a working-precision `b`."""
    p, e = two_prod(x.hi, b)
    return DD(*fast_two_sum(p, e + x.lo * b))


def div(x: DD, y: DD) -> DD:
    """`x / y` in extended precision (three quotient digits, long-division style)."""
    q1 = x.hi / y.hi
    r = sub(x, mul_float(y, q1))
    q2 = r.hi / y.hi
    r = sub(r, mul_float(y, q2))
    q3 = r.hi / y.hi
    return add_float(DD(*fast_two_sum(q1, q2)), q3)


def square_sum(x: DD, axis: int = 0) -> DD:
    """`sum(x**2)` along `axis` in extended precision."""
    return sum_(mul(x, x), axis=axis)


def sum_(x: DD, axis: int = 0) -> DD:
    """Sum along `axis` in extended precision: error about `n * 2^-104 * Σ|x|` for `n` terms.

    jax arrays: one `lax.reduce` whose combining step is the extended `add`, so XLA runs it as one pass
    over the data in whatever order it likes (the bound holds for every order). numpy arrays: pairwise.
    """
    xp = xp_of(x)
    if xp is not np:
        zero = jnp.zeros((), x.hi.dtype)
        return DD(*lax.reduce((x.hi, x.lo), (zero, zero), lambda a, b: tuple(add(DD(*a), DD(*b))), (axis,)))
    hi = xp.moveaxis(x.hi, axis, 0)
    lo = xp.moveaxis(x.lo, axis, 0)
    n = hi.shape[0]
    if n == 0:
        return DD(xp.zeros(hi.shape[1:], hi.dtype), xp.zeros(hi.shape[1:], hi.dtype))
    size = 1 << (n - 1).bit_length()
    if size != n:  # pad once with zeros to a power of two
        pad = xp.zeros((size - n,) + tuple(hi.shape[1:]), hi.dtype)
        hi, lo = xp.concatenate([hi, pad]), xp.concatenate([lo, pad])
    while size > 1:
        size //= 2
        hi, lo = add(DD(hi[:size], lo[:size]), DD(hi[size:], lo[size:]))
    return DD(hi[0], lo[0])


def matmul(a: DD, x: DD) -> DD:
    """`a @ x` for `a (n, p)` and `x (p, k)`: exact products summed pairwise over `p` in extended precision.

    Vectorised (one product array `(n, p, k)`, `log2 p` levels of additions), so it traces to a
    program whose size does not grow with `p`.
    """
    n, p = a.shape
    xp = xp_of(a, x)
    if p == 0:
        z = xp.zeros((n, x.shape[1]), a.hi.dtype)
        return DD(z, z)
    prod = mul(DD(a.hi[:, :, None], a.lo[:, :, None]), DD(x.hi[None], x.lo[None]))
    return sum_(prod, axis=1)


def rmatmul(a: DD, r: DD, block_elements: int = 1 << 21) -> DD:
    """`a.T @ r` for `a (n, p)` and `r (n, k)`: pairwise extended sums over the `n` rows.

    Works on blocks of rows (about `block_elements` products at a time), so memory stays bounded
    for tall matrices; the block sums are added in extended precision too.
    """
    xp = xp_of(a, r)
    n, p = a.shape
    k = r.shape[1]
    if p == 0 or k == 0:
        z = xp.zeros((p, k), r.hi.dtype)
        return DD(z, z)
    rows = max(1, block_elements // max(p * k, 1))
    total = None
    for start in range(0, max(n, 1), rows):
        ah, al = a.hi[start : start + rows], a.lo[start : start + rows]
        rh, rl = r.hi[start : start + rows], r.lo[start : start + rows]
        # products (rows, p, k) summed over the rows
        part = sum_(mul(DD(ah[:, :, None], al[:, :, None]), DD(rh[:, None, :], rl[:, None, :])), axis=0)
        total = part if total is None else add(total, part)
    return total


# ------------------------------------------------------------------ kernels for tall matrices (jax)
# Compensated dot products (Ogita, Rump & Oishi's Dot2): each exact product's leading part is
# added with `two_sum`, everything smaller is summed in plain arithmetic. The result is as
# accurate as if computed in twice the working precision and then rounded (error about
# eps·|result| + (m eps)²·sum|products| for m terms), at a third of the cost of normalising
# every partial sum. `b_lo` may be None for a design that is exact in working precision.

LANES = 16  # rows accumulated side by side in `tall_rmatmul` (one vector register row each)
SMALL = 1 << 16  # up to this many products (n·p·k) the kernels are one vectorised expression, no loop


def _compensated_sum(top: Array, small: Array, axis: int) -> tuple[Array, Array]:
    """`Σ (top + small)` along `axis` as `(s, c)`: the `top` terms added by `two_sum`, their rounding
    errors and the `small` terms in plain arithmetic (Dot2). One reduction: XLA may add the terms in
    any order, and the error bound holds for every order."""

    def combine(a, b):
        s, t = two_sum(a[0], b[0])
        return s, (a[1] + b[1]) + t

    zero = jnp.zeros((), top.dtype)
    return lax.reduce((top, small), (zero, zero), combine, (axis,))


def tall_residual(b_hi: Array, b_lo: Array | None, z: DD, f: DD) -> DD:
    """`f - b @ z` row by row in extended precision, for `b (n, p)`, `z (p, k)`, `f (n, k)` (jax).

    A loop over the `p` columns, each step vectorised over the rows: every row sees its products
    in the order `j = 0..p-1`.
    """
    zh, zl = split(z.hi)
    if b_hi.size * z.hi.shape[1] <= SMALL:  # every product at once, summed pairwise: no loop to run
        col = b_hi[:, :, None]
        top, rest = _product_pair(*split(col), zh[None], zl[None])
        small = rest + col * z.lo[None]
        if b_lo is not None:
            small = small + b_lo[:, :, None] * z.hi[None]
        total, low = _compensated_sum(top, small, axis=1)
        s, t = two_sum(f.hi, -total)
        return DD(*two_sum(s, f.lo + (t - low)))
    cols_hi = b_hi.T  # (p, n): one contiguous row per column
    cols_lo = None if b_lo is None else b_lo.T

    def step(j, acc):
        s, c = acc
        col = cols_hi[j][:, None]
        top, rest = _product_pair(*split(col), zh[j][None], zl[j][None])
        small = rest + col * z.lo[j][None]
        if cols_lo is not None:
            small = small + cols_lo[j][:, None] * z.hi[j][None]
        s, t = two_sum(s, -top)
        return s, c + (t - small)

    s, c = lax.fori_loop(0, b_hi.shape[1], step, (f.hi, f.lo))
    return DD(*two_sum(s, c))


def tall_rmatmul(b_hi: Array, b_lo: Array | None, r: DD) -> DD:
    """`bᵀ @ r` in extended precision for `b (n, p)` and `r (n, k)` (jax): `(p, k)`.

    `LANES` rows at a time (n is padded with zero rows to a multiple of it), each lane a
    compensated sum over its rows; the lanes' sums are then added the same way.
    """
    n, p = b_hi.shape
    k = r.hi.shape[1]
    if n * p * k <= SMALL:  # every product at once, summed pairwise: no loop to run
        col, rows = b_hi[:, :, None], r.hi[:, None, :]
        top, rest = _product_pair(*split(col), *split(rows))
        small = rest + col * r.lo[:, None, :]
        if b_lo is not None:
            small = small + b_lo[:, :, None] * rows
        return DD(*two_sum(*_compensated_sum(top, small, axis=0)))
    pad = (-n) % LANES
    if pad:

        def grow(a):
            return None if a is None else jnp.concatenate([a, jnp.zeros((pad,) + a.shape[1:], a.dtype)])

        b_hi, b_lo, r = grow(b_hi), grow(b_lo), DD(grow(r.hi), grow(r.lo))
    blocks = (n + pad) // LANES

    def lanes(a):
        return None if a is None else a.reshape(blocks, LANES, a.shape[1])

    bh, bl, rh, rl = lanes(b_hi), lanes(b_lo), lanes(r.hi), lanes(r.lo)

    def step(i, acc):
        s, c = acc
        col = bh[i][:, :, None]
        rows = rh[i][:, None, :]
        top, rest = _product_pair(*split(col), *split(rows))
        small = rest + col * rl[i][:, None, :]
        if bl is not None:
            small = small + bl[i][:, :, None] * rows
        s, t = two_sum(s, top)
        return s, c + (t + small)

    zero = jnp.zeros((LANES, p, k), b_hi.dtype)
    s, c = lax.fori_loop(0, blocks, step, (zero, zero))

    def lane(i, acc):  # the lanes' sums, added the same compensated way (a small loop compiles fast)
        total, low = acc
        total, t = two_sum(total, s[i])
        return total, low + (t + c[i])

    total, low = lax.fori_loop(0, LANES, lane, (zero[0], zero[0]))
    return DD(*two_sum(total, low))
