"""Double-double ("dd") arithmetic: a value is an unevaluated sum `hi + lo` with |lo| <= ulp(hi)/2.

Portable: built only from IEEE additions and multiplications of the working dtype (float64 gives
about 106 significant bits, float32 about 48), never from a platform `long double`. The splitting
in `two_prod` masks mantissa bits instead of Dekker's `(2^27 + 1) * a` trick, so a compiler that
contracts `a * b + c` into a fused multiply-add (XLA on GPU does) cannot break it.

Every function works on numpy arrays and on jax arrays (also under `jax.jit`): the array module
is taken from the inputs. The least-squares solver runs them with numpy on the host; a sharded
variant can run the same kernels with `jax.numpy`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Array = Any


class DD(NamedTuple):
    """An extended-precision array `hi + lo` (both of the same shape and floating dtype)."""

    hi: Array
    lo: Array

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.hi.shape)

    def value(self) -> Array:
        """Rounded to the working precision (`hi`, since the pair is normalised)."""
        return self.hi


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
    # (add half of the dropped part, then clear it); `lo = a - hi` is exact and needs at most as
    # many bits, so every partial product in `two_prod` is exact.
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
        bits = jax.lax.bitcast_convert_type(a, uint)
        hi = jax.lax.bitcast_convert_type((bits + jnp.asarray(half, uint)) & jnp.asarray(mask, uint), dtype)
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


def two_prod(a: Array, b: Array) -> tuple[Array, Array]:
    """`p + e == a * b` exactly, with `p = fl(a * b)` (barring underflow and overflow)."""
    p = a * b
    ah, al = split(a)
    bh, bl = split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


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
    """Sum along `axis` by pairwise extended-precision additions (error ~ log2(n) * 2^-104 relative)."""
    xp = xp_of(x)
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
    """`a @ x` for `a (n, p)` and `x (p, k)`, accumulated over `p` in extended precision."""
    n, p = a.shape
    xp = xp_of(a, x)
    acc = DD(xp.zeros((n, x.shape[1]), a.hi.dtype), xp.zeros((n, x.shape[1]), a.hi.dtype))
    for j in range(p):
        acc = add(acc, mul(DD(a.hi[:, j : j + 1], a.lo[:, j : j + 1]), DD(x.hi[j : j + 1], x.lo[j : j + 1])))
    return acc


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
        ah, al = a.hi[start:start + rows], a.lo[start:start + rows]
        rh, rl = r.hi[start:start + rows], r.lo[start:start + rows]
        # products (rows, p, k) summed over the rows
        part = sum_(mul(DD(ah[:, :, None], al[:, :, None]), DD(rh[:, None, :], rl[:, None, :])), axis=0)
        total = part if total is None else add(total, part)
    return total
