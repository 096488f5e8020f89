"""Double-double products that stay exact inside compiled XLA code.

`mmljax.solvers._extended` supplies the double-double arithmetic (additions, sums, splitting).
Its `two_prod` computes `p = fl(a·b)` and then `a_h b_h − p`; inside `jax.jit` XLA's CPU backend
(LLVM) may recompute `p` inside the consuming fusion and contract `a_h b_h − a·b` into one fused
multiply-add, which subtracts the *unrounded* product and loses the error term (measured: 5e-17
relative error in `jit(ext.mul)`, 1e-15 in `jit(ext.matmul)`, versus 1e-31 in numpy). A product
that is exact is immune to contraction, so the product here never uses the inexact `a·b`: it
sums the four exact half-width partial products with error-free additions.
"""

from __future__ import annotations

from ..solvers import _extended as ext
from ..solvers._extended import DD


def two_prod(a, b):
    """`p + e == a·b` to within `2^-104` relative, from exact partial products only (contraction-proof)."""
    ah, al = ext.split(a)
    bh, bl = ext.split(b)
    s, t = ext.two_sum(ah * bl, al * bh)
    p, u = ext.two_sum(ah * bh, s)
    return p, u + (t + al * bl)


def mul(x: DD, y: DD) -> DD:
    """`x · y` in double-double (as `ext.mul`, with the contraction-proof `two_prod`)."""
    p, e = two_prod(x.hi, y.hi)
    return DD(*ext.fast_two_sum(p, e + (x.hi * y.lo + x.lo * y.hi)))


def square_sum(x: DD, axis: int = 0) -> DD:
    """`Σ x²` along `axis`, pairwise double-double sums."""
    return ext.sum_(mul(x, x), axis=axis)

