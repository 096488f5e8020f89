"""Björck's iterative refinement of the augmented least-squares system in extended precision.

The system `[[I, B], [Bᵀ, 0]] [r; z] = [f; g]` holds both the residual `r` and the solution `z`,
so refining it corrects both (refining only `z` through the normal equations would square the
condition number). Each step computes the residual of the system in double-double arithmetic,
solves for a correction with the working-precision QR factors and adds it to `r` and `z`, which
are themselves kept in double-double. The error shrinks by about `cond(B) * eps` per step until
it reaches the double-double level, so the answer is limited by the data, not by the solver.
The loop talks to the design only through a `LinearOps` backend (`_qr.py`), so it is the same
with the rows in host memory and with the rows split over devices.

`f = y, g = 0` gives the least-squares fit; `f = 0, g = c` gives `r = B (BᵀB)⁻¹ c`, whose squared
norm `cᵀ(BᵀB)⁻¹c` is a variance (used for accurate standard errors).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np

from ..linalg import doubledouble as ext
from ..linalg.doubledouble import DD
from ._qr import HOST, LinearOps, QRFactor, solve_triangular

Array = Any


class Refined(NamedTuple):
    """Refined solution: residual `r (m, k)` (rows, where the backend keeps them) and solution
    `z (p, k)` (host), both in double-double."""

    r: DD
    z: DD
    steps: int
    converged: bool
    corrections: tuple[float, ...]


def _colmax(a: Array) -> np.ndarray:
    """Largest magnitude in each column, on the host (0 for no rows)."""
    if a.shape[0] == 0:
        return np.zeros(a.shape[1:], np.dtype(a.dtype))
    xp = ext.xp_of(a)
    return np.asarray(xp.max(xp.abs(a), axis=0))


def _update_rows(r: DD, dr: Array) -> tuple[DD, Array, Array, Array]:
    """`r + dr`, and the column maxima of `|dr|` and `|r|` and whether `dr` is finite."""
    xp = ext.xp_of(dr)
    return ext.add_float(r, dr), xp.max(xp.abs(dr), axis=0), xp.max(xp.abs(r.hi), axis=0), xp.all(xp.isfinite(dr))


_update_rows_jit = jax.jit(_update_rows)  # rows on devices: one program instead of a dozen small ones


def refine_augmented(b: Any, factor: QRFactor, f: DD, g: DD, *, ops: LinearOps = HOST,
                     max_steps: int = 30) -> Refined:
    """Refine the solution of `[[I, B], [Bᵀ, 0]] [r; z] = [f; g]`.

    **Arguments:** `b` the `(m, p)` design as `ops.place` returned it and `factor` its
    factorisation; `f (m, k)` double-double rows, `g (p, k)` double-double on the host;
    `ops` the backend (`HOST`, or a sharded one) that solves in working precision and computes the
    residuals of the system in double-double.

    **Returns:** `Refined(r, z, steps, converged, corrections)`: `steps` corrections were applied;
    `converged` is True when the last relative correction fell below the working precision;
    `corrections` lists the relative size of each correction (largest over the columns).
    """
    dtype = np.dtype(g.hi.dtype)
    eps, tiny = float(np.finfo(dtype).eps), float(np.finfo(dtype).tiny)
    r0, z0 = ops.solve(b, factor, f.hi, g.hi)
    r, z = ext.from_float(r0), ext.from_float(z0)
    fscale = _colmax(f.hi)
    sizes: list[float] = []
    steps = 0
    converged = False
    update = _update_rows if ext.xp_of(f) is np else _update_rows_jit
    while steps < max_steps and r.hi.shape[0]:
        res_f, res_g = ops.residual(b, f, g, r, z)
        dr, dz = ops.solve(b, factor, res_f.hi, res_g.hi)
        r_new, dr_max, r_max, finite = update(r, dr)
        if not (bool(finite) and np.all(np.isfinite(dz))):
            break
        zscale = np.maximum(_colmax(z.hi), tiny)
        rscale = np.maximum(fscale + np.asarray(r_max), tiny)
        size = float(np.max(np.maximum(_colmax(dz) / zscale, np.asarray(dr_max) / rscale), initial=0.0))
        if sizes and size > sizes[-1]:
            break  # growing corrections: cond(B) * eps is too large for refinement to converge
        r, z = r_new, ext.add_float(z, dz)
        sizes.append(size)
        steps += 1
        converged = size <= eps
        if size <= 16 * eps * eps:
            break  # at the double-double level
        if len(sizes) > 1 and (size > 0.5 * sizes[-2] or size * (size / sizes[-2]) <= 16 * eps * eps):
            break  # no longer contracting, or contracting so fast that the next one would be below it
    return Refined(r, z, steps, converged, tuple(sizes))


def refined_inverse_diagonal(gram: DD, r: np.ndarray, u: DD, *, max_steps: int = 10) -> np.ndarray | None:
    """`diag(u G⁻¹ uᵀ)` to about working precision, or None if the iteration does not converge.

    **Arguments:** `gram` the Gram matrix `G = BᵀB (p, p)` in double-double (formed once by the
    backend, `O(m p²)`); `r` the `R` factor of `B` (`RᵀR ≈ G`); `u (q, p)` double-double.

    `W = G⁻¹ uᵀ` is refined with `R⁻¹R⁻ᵀ` as the approximate inverse (each step `O(p³)`); it
    contracts by about `cond(B)² eps` per step, so it converges for `cond(B)` up to ~1e7. The
    diagonal of `u W` is then taken in double-double, so a basis change with cancellation
    (polynomials) loses nothing.
    """
    eps, tiny = float(np.finfo(r.dtype).eps), float(np.finfo(r.dtype).tiny)

    def approx_inverse(rhs):
        return solve_triangular(r, solve_triangular(r, rhs, trans=True))

    rhs = DD(u.hi.T.copy(), u.lo.T.copy())
    w = ext.from_float(approx_inverse(rhs.hi))
    prev = np.inf
    converged = False
    for _ in range(max_steps):
        dw = approx_inverse(ext.sub(rhs, ext.matmul(gram, w)).hi)
        size = float(np.max(np.abs(dw)) / max(float(np.max(np.abs(w.hi))), tiny))
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
