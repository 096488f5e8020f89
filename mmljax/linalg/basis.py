"""Well-conditioned bases for least-squares designs, and the exact map back to the natural one (JAX).

A `Design` is the matrix `b` that is factorised (in double-double) together with the matrix `u`
that maps its solution to the natural coefficients, `beta = u @ z` (so `Phi = b @ u⁻¹`):

- polynomials: `t = (x - c) / s` with `c` the midpoint of the data and `s` a power of two at
  least the half-range, so `t` lies in [-1, 1] and is computed exactly as a double-double; the
  columns are `t^j`; `u[j, k] = C(k, j) (-c)^(k-j) / s^k` is evaluated in double-double (the
  powers of `c` carry a relative error of about `k·2⁻¹⁰⁴`, the division by `s^k` is exact), so
  mapping the coefficients back loses nothing a float64 answer could show;
- several predictors with an intercept: each column centred and scaled the same way (exact);
- every design: columns equilibrated by exact powers of two (`column_scales`, no rounding).

Every function is a traceable JAX function (`jax.jit`, `jax.vmap`); numpy inputs are accepted.
Static facts (degree, intercept, which coefficients ridge penalises, names) are Python values.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from . import doubledouble as ext
from .doubledouble import DD

Array = Any

__all__ = ["Design", "general", "polynomial", "affine", "column_scales", "equilibrate", "pow2_at_least"]


class Design(NamedTuple):
    """A design in its well-conditioned basis.

    - `b`: `DD (n, p)`, the matrix that is factorised; `b.lo is None` when it is exact in working precision.
    - `u`: `DD (p, p)`: natural coefficients `= u @ z` for the solution `z` of `b z ≈ y`.
    - `intercept`: whether the design has a constant column (R² is then centred); a Python bool,
      or a traced bool array for a general design (a constant nonzero column is detected from the data).
    - `penalised`: `(p,)` tuple of bools, the natural coefficients ridge penalises (static).
    - `names`: coefficient labels.
    """

    b: DD
    u: DD
    intercept: Any
    penalised: tuple[bool, ...]
    names: tuple[str, ...]


def pow2_at_least(v: Array) -> Array:
    """Elementwise, the smallest power of two `>= v` (1 where `v <= 0` or `v` is not finite)."""
    v = jnp.asarray(v)
    m, e = jnp.frexp(v)  # v = m 2^e, m in [0.5, 1)
    one = jnp.ones_like(v)
    p = jnp.where(m == 0.5, jnp.ldexp(one, e - 1), jnp.ldexp(one, e))
    return jnp.where((v > 0) & jnp.isfinite(v), p, one)


def _float_array(a: Array) -> Array:
    a = jnp.asarray(a)
    return a if jnp.issubdtype(a.dtype, jnp.floating) else a.astype(jnp.result_type(float))


def general(phi: Array) -> Design:
    """The design as given (`u = I`); intercept if some column is constant and nonzero."""
    phi = _float_array(phi)
    n, p = phi.shape
    if n:
        intercept = jnp.any((jnp.min(phi, axis=0) == jnp.max(phi, axis=0)) & (phi[0] != 0))
    else:
        intercept = jnp.asarray(False)
    return Design(
        DD(phi, None),
        ext.from_float(jnp.eye(p, dtype=phi.dtype)),
        intercept,
        (True,) * p,
        tuple(f"B{j}" for j in range(p)),
    )


def polynomial(x: Array, degree: int, intercept: bool) -> Design:
    """Columns `x^j` (`j = 0..degree`, or `1..degree` without intercept) in the scaled basis.

    **Arguments:** `x (n,)`; `degree >= 0` (`>= 1` without intercept), static.
    """
    x = _float_array(x)
    lo_x, hi_x = jnp.min(x), jnp.max(x)
    if intercept:
        c = 0.5 * lo_x + 0.5 * hi_x
        s = pow2_at_least(jnp.maximum(hi_x - c, c - lo_x))
    else:  # no constant column: a shift would need one, so scale only
        c = jnp.zeros_like(lo_x)
        s = pow2_at_least(jnp.maximum(jnp.abs(lo_x), jnp.abs(hi_x)))
    hi, lo = ext.two_sum(x, -c)
    t = DD(hi / s, lo / s)
    powers = [ext.from_float(jnp.ones_like(x))]
    for _ in range(degree):
        powers.append(ext.mul(powers[-1], t))
    first = 0 if intercept else 1
    cols = powers[first:]
    b = DD(jnp.stack([q.hi for q in cols], axis=1), jnp.stack([q.lo for q in cols], axis=1))
    # u[j, k] = C(k, j) (-c)^(k-j) / s^k, as whole (p, p) arrays (a program whose size does not grow with p²)
    _, es = jnp.frexp(s)  # s = 2^(es - 1)
    neg_c = ext.from_float(-c)
    pc = [ext.from_float(jnp.ones_like(c))]
    for _ in range(degree):
        pc.append(ext.mul(pc[-1], neg_c))
    pc = DD(jnp.stack([q.hi for q in pc]), jnp.stack([q.lo for q in pc]))  # (-c)^i, i = 0..degree
    p = degree + 1 - first
    ks = np.arange(first, degree + 1)
    upper = ks[:, None] <= ks[None, :]  # j <= k
    gap = np.where(upper, ks[None, :] - ks[:, None], 0)
    binom = np.array([[math.comb(k, j) if j <= k else 0 for k in ks] for j in ks], dtype=np.float64)
    v = ext.mul_float(DD(pc.hi[gap], pc.lo[gap]), jnp.asarray(binom, c.dtype))
    inv_sk = jnp.ldexp(jnp.ones_like(c), -jnp.asarray(ks) * (es - 1))[None, :]  # exact powers of two
    u = DD(jnp.where(upper, v.hi * inv_sk, 0), jnp.where(upper, v.lo * inv_sk, 0))
    penalised = (not intercept,) + (True,) * (p - 1)
    return Design(b, u, bool(intercept), penalised, tuple(f"B{j}" for j in range(first, degree + 1)))


def affine(X: Array, intercept: bool) -> Design:
    """Columns `[1, X]` (or `X`) with each predictor centred and scaled by a power of two.

    **Arguments:** `X (n, d)`; `intercept` (static).
    """
    X = _float_array(X)
    n, d = X.shape
    if not intercept:
        return Design(
            DD(X, None),
            ext.from_float(jnp.eye(d, dtype=X.dtype)),
            False,
            (True,) * d,
            tuple(f"B{j}" for j in range(1, d + 1)),
        )
    lo_x, hi_x = jnp.min(X, axis=0), jnp.max(X, axis=0)
    c = 0.5 * lo_x + 0.5 * hi_x
    s = pow2_at_least(jnp.maximum(hi_x - c, c - lo_x))
    t, e = ext.two_sum(X, -c)
    ones = jnp.ones((n, 1), X.dtype)
    b = DD(jnp.concatenate([ones, t / s], axis=1), jnp.concatenate([ones * 0, e / s], axis=1))
    top = jnp.concatenate([jnp.ones((1,), X.dtype), -c / s])[None]  # exact: s is a power of two
    rest = jnp.concatenate([jnp.zeros((d, 1), X.dtype), jnp.diag(1.0 / s)], axis=1)
    u = jnp.concatenate([top, rest])
    return Design(b, ext.from_float(u), True, (False,) + (True,) * d, tuple(f"B{j}" for j in range(d + 1)))


def column_scales(b: Array) -> Array:
    """For each column, the power of two that brings its largest magnitude into [0.5, 1) (1 for a zero column)."""
    b = jnp.asarray(b)
    norms = jnp.max(jnp.abs(b), axis=0, initial=0.0)
    _, e = jnp.frexp(norms)
    ok = (norms > 0) & jnp.isfinite(norms)
    return jnp.where(ok, jnp.ldexp(jnp.ones_like(norms), -e), jnp.ones_like(norms))


def equilibrate(design: Design) -> Design:
    """Scale each column of `b` (and of `u`) by `column_scales` (exact: powers of two)."""
    scale = column_scales(design.b.hi)
    lo = None if design.b.lo is None else design.b.lo * scale
    return design._replace(b=DD(design.b.hi * scale, lo), u=DD(design.u.hi * scale, design.u.lo * scale))
