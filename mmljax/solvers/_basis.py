"""Well-conditioned bases for least-squares designs, and the exact map back to the natural one.

A `Design` is the matrix `b` that is factorised (in double-double) together with the matrix `u`
that maps its solution to the natural coefficients, `beta = u @ z` (so `Phi = b @ u⁻¹`):

- polynomials: `t = (x - c) / s` with `c` the midpoint of the data and `s` a power of two at
  least the half-range, so `t` lies in [-1, 1] and is computed exactly as a double-double; the
  columns are `t^j`; `u[j, k] = C(k, j) (-c)^(k-j) / s^k` is evaluated in exact rational
  arithmetic and rounded once to double-double, so mapping the coefficients back loses nothing;
- several predictors with an intercept: each column centred and scaled the same way;
- every design: columns equilibrated by exact powers of two (no rounding).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from ..linalg import doubledouble as ext
from ..linalg.doubledouble import DD


class Design(NamedTuple):
    b: DD                      # (n, p) the matrix that is factorised; b.lo None: exact in float64
    u: DD                      # (p, p) natural coefficients = u @ z
    intercept: bool            # has a constant column: R² is centred
    penalised: np.ndarray      # (p,) bool: which natural coefficients ridge penalises
    names: tuple[str, ...]


def _dd_from_fraction(q: Fraction) -> tuple[float, float]:
    hi = float(q)
    return hi, float(q - Fraction(hi)) if math.isfinite(hi) else 0.0


def _pow2_at_least(v: float) -> float:
    """The smallest power of two >= v (1 for v == 0)."""
    if v <= 0 or not math.isfinite(v):
        return 1.0
    m, e = math.frexp(v)  # v = m 2^e with m in [0.5, 1)
    return math.ldexp(1.0, e - 1) if m == 0.5 else math.ldexp(1.0, e)


def _shift_scale(x: np.ndarray, c: float, s: float) -> DD:
    """`(x - c) / s` exactly as a double-double (`s` a power of two)."""
    hi, lo = ext.two_sum(x, np.full_like(x, -c))
    return DD(hi / s, lo / s)


def general(phi: np.ndarray) -> Design:
    """The design as given (`u = I`); intercept if some column is constant and nonzero."""
    n, p = phi.shape
    const = bool(n) and np.any((phi.min(axis=0) == phi.max(axis=0)) & (phi[0] != 0))
    return Design(DD(phi, None), ext.from_float(np.eye(p, dtype=phi.dtype)), bool(const),
                  np.ones(p, bool), tuple(f"B{j}" for j in range(p)))


def polynomial(x: np.ndarray, degree: int, intercept: bool) -> Design:
    """Columns `x^j` (`j = 0..degree`, or `1..degree` without intercept) in the scaled basis."""
    lo_x, hi_x = (float(np.min(x)), float(np.max(x))) if x.size else (0.0, 0.0)
    if intercept:
        c = 0.5 * lo_x + 0.5 * hi_x
        s = _pow2_at_least(max(hi_x - c, c - lo_x))
    else:  # no constant column: a shift would need one, so scale only
        c, s = 0.0, _pow2_at_least(max(abs(lo_x), abs(hi_x)))
    t = _shift_scale(x, c, s)
    powers = [ext.from_float(np.ones_like(x))]
    for _ in range(degree):
        powers.append(ext.mul(powers[-1], t))
    first = 0 if intercept else 1
    cols = powers[first:]
    b = DD(np.stack([q.hi for q in cols], axis=1), np.stack([q.lo for q in cols], axis=1))
    fc, fs = Fraction(c), Fraction(s)
    p = degree + 1 - first
    u_hi, u_lo = np.zeros((p, p)), np.zeros((p, p))
    for jj, j in enumerate(range(first, degree + 1)):
        for kk, k in enumerate(range(first, degree + 1)):
            if j <= k:
                u_hi[jj, kk], u_lo[jj, kk] = _dd_from_fraction(math.comb(k, j) * (-fc) ** (k - j) / fs**k)
    penalised = np.ones(p, bool)
    if intercept:
        penalised[0] = False
    return Design(b, DD(u_hi, u_lo), intercept, penalised, tuple(f"B{j}" for j in range(first, degree + 1)))


def affine(X: np.ndarray, intercept: bool) -> Design:
    """Columns `[1, X]` (or `X`) with each predictor centred and scaled by a power of two."""
    n, d = X.shape
    if not intercept:
        return Design(DD(X, None), ext.from_float(np.eye(d)), False, np.ones(d, bool),
                      tuple(f"B{j}" for j in range(1, d + 1)))
    lo_x = X.min(axis=0) if n else np.zeros(d)
    hi_x = X.max(axis=0) if n else np.zeros(d)
    c = 0.5 * lo_x + 0.5 * hi_x
    s = np.array([_pow2_at_least(max(h - m, m - lo)) for lo, m, h in zip(lo_x, c, hi_x)])
    # (X - c) / s as a double-double, written straight into the design a block of rows at a time
    # (temporaries stay in cache): two_sum(X, -c), then the exact division by powers of two
    hi, lo = np.empty((n, d + 1)), np.empty((n, d + 1))
    hi[:, 0], lo[:, 0] = 1.0, 0.0
    rows = max(1, (1 << 15) // max(d, 1))
    for start in range(0, n, rows):
        x = X[start:start + rows]
        t, e = ext.two_sum(x, -c)
        hi[start:start + rows, 1:] = t / s
        lo[start:start + rows, 1:] = e / s
    b = DD(hi, lo if lo.any() else None)  # x - c is often exact (data with few digits): then no lo part
    u = np.eye(d + 1)
    u[0, 1:] = -c / s  # exact: s is a power of two
    u[np.arange(1, d + 1), np.arange(1, d + 1)] = 1.0 / s
    penalised = np.ones(d + 1, bool)
    penalised[0] = False
    return Design(b, ext.from_float(u), True, penalised, tuple(f"B{j}" for j in range(d + 1)))


def column_scales(b: np.ndarray) -> np.ndarray:
    """For each column, the power of two that brings its largest magnitude into [0.5, 1) (1 for a zero column)."""
    norms = np.maximum(np.max(b, axis=0, initial=0.0), -np.min(b, axis=0, initial=0.0))  # max |b|, no temporary
    exps = np.array([math.frexp(v)[1] if v > 0 and math.isfinite(v) else 0 for v in norms])
    return np.ldexp(1.0, -exps)


def equilibrate(design: Design) -> Design:
    """Scale each column of `b` (and of `u`) by `column_scales` (exact: powers of two)."""
    scale = column_scales(design.b.hi)
    lo = None if design.b.lo is None else design.b.lo * scale
    return design._replace(b=DD(design.b.hi * scale, lo), u=DD(design.u.hi * scale, design.u.lo * scale))
