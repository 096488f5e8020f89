"""Björck's iterative refinement of the augmented least-squares system in extended precision.

The system `[[I, B], [Bᵀ, 0]] [r; z] = [f; g]` holds both the residual `r` and the solution `z`,
so refining it corrects both (refining only `z` through the normal equations would square the
condition number). Each step computes the residual of the system in double-double arithmetic,
solves for a correction with the working-precision QR factors and adds it to `r` and `z`, which
are themselves kept in double-double. The error shrinks by about `cond(B) * eps` per step until
it reaches the double-double level, so the answer is limited by the data, not by the solver.

`f = y, g = 0` gives the least-squares fit; `f = 0, g = c` gives `r = B (BᵀB)⁻¹ c`, whose squared
norm `cᵀ(BᵀB)⁻¹c` is a variance (used for accurate standard errors).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

from . import _extended as ext
from ._extended import DD
from ._qr import QRFactor, solve_augmented

Array = Any


class Refined(NamedTuple):
    """Refined solution: residual `r (n, k)` and solution `z (p, k)` in double-double."""

    r: DD
    z: DD
    steps: int
    converged: bool
    corrections: tuple[float, ...]


def _colmax(a: Array) -> Array:
    return np.max(np.abs(a), axis=0) if a.shape[0] else np.zeros(a.shape[1:], a.dtype)


def refine_augmented(
    b: DD,
    factor: QRFactor,
    f: DD,
    g: DD,
    *,
    max_steps: int = 30,
    solve: Callable[[QRFactor, Array, Array], tuple[Array, Array]] = solve_augmented,
) -> Refined:
    """Refine the solution of `[[I, B], [Bᵀ, 0]] [r; z] = [f; g]`.

    **Arguments:** `b` the `(n, p)` design in double-double (its `hi` part is what `factor`
    factorises); `f (n, k)`, `g (p, k)` double-double right-hand sides; `solve` the
    working-precision solver of the augmented system (replaceable, e.g. by a distributed one).

    **Returns:** `Refined(r, z, steps, converged, corrections)`: `steps` corrections were applied;
    `converged` is True when the last relative correction fell below the working precision;
    `corrections` lists the relative size of each correction (largest over the columns).
    """
    eps = float(np.finfo(b.hi.dtype).eps)
    r0, z0 = solve(factor, f.hi, g.hi)
    r, z = ext.from_float(r0), ext.from_float(z0)
    fscale = _colmax(f.hi)
    sizes: list[float] = []
    steps = 0
    converged = False
    while steps < max_steps:
        res_f = ext.sub(ext.sub(f, r), ext.matmul(b, z))
        res_g = ext.sub(g, ext.rmatmul(b, r))
        dr, dz = solve(factor, res_f.hi, res_g.hi)
        if not (np.all(np.isfinite(dr)) and np.all(np.isfinite(dz))):
            break
        zscale = np.maximum(_colmax(z.hi), np.finfo(b.hi.dtype).tiny)
        rscale = np.maximum(fscale + _colmax(r.hi), np.finfo(b.hi.dtype).tiny)
        size = float(np.max(np.maximum(_colmax(dz) / zscale, _colmax(dr) / rscale), initial=0.0))
        if sizes and size > sizes[-1]:
            break  # growing corrections: cond(B) * eps is too large for refinement to converge
        r, z = ext.add_float(r, dr), ext.add_float(z, dz)
        sizes.append(size)
        steps += 1
        converged = size <= eps
        if size <= 16 * eps * eps or (len(sizes) > 1 and size > 0.5 * sizes[-2]):
            break  # at the double-double level, or no longer contracting
    return Refined(r, z, steps, converged, tuple(sizes))


def refined_inverse_diagonal(b: DD, factor: QRFactor, u: DD, *, max_steps: int = 10) -> np.ndarray | None:
    """`diag(u (BᵀB)⁻¹ uᵀ)` to about working precision, or None if the iteration does not converge.

    The Gram matrix `G = BᵀB` is formed once in double-double (`O(n p²)`), then `W = G⁻¹ uᵀ` is
    refined with `R⁻¹R⁻ᵀ` as the approximate inverse (each step `O(p³)`); it contracts by about
    `cond(B)² eps` per step, so it converges for `cond(B)` up to ~1e7. The diagonal of `u W` is
    then taken in double-double, so a basis change with cancellation (polynomials) loses nothing.
    """
    import scipy.linalg

    eps = float(np.finfo(b.hi.dtype).eps)
    r = factor.r

    def approx_inverse(rhs):
        return scipy.linalg.solve_triangular(r, scipy.linalg.solve_triangular(r, rhs, trans="T", check_finite=False),
                                             check_finite=False)

    gram = ext.rmatmul(b, b)
    rhs = DD(u.hi.T.copy(), u.lo.T.copy())
    w = ext.from_float(approx_inverse(rhs.hi))
    prev = np.inf
    converged = False
    for _ in range(max_steps):
        resid = ext.sub(rhs, ext.matmul(gram, w))
        dw = approx_inverse(resid.hi)
        size = float(np.max(np.abs(dw)) / max(float(np.max(np.abs(w.hi))), np.finfo(b.hi.dtype).tiny))
        if not np.isfinite(size) or size > prev:
            break
        w = ext.add_float(w, dw)
        prev = size
        if size <= 16 * eps * eps:
            converged = True
            break
        if size <= eps:
            converged = True  # keep going while it still contracts
    if not converged:
        return None
    return ext.sum_(ext.mul(u, DD(w.hi.T, w.lo.T)), axis=1).hi
