"""Björck's iterative refinement of the augmented least-squares system in double-double, as a JAX loop.

The system `[[I, B], [Bᵀ, 0]] [r; z] = [f; g]` holds both the residual `r` and the solution `z`,
so refining it corrects both (refining only `z` through the normal equations would square the
condition number). Each step computes the residual of the system in double-double arithmetic,
solves for a correction with the working-precision factors and adds it to `r` and `z`, which are
themselves kept in double-double. The error shrinks by about `cond(B)·eps` per step until it
reaches the double-double level, so the answer is limited by the data, not by the solver.

The loop is a `lax.while_loop` with a convergence test (no host round trips): it works under
`jax.jit` and `jax.vmap` (each batch element stops on its own test) and talks to the design only
through a `LinearOps` backend, so it is the same with the rows on one device or split over many.
It is never differentiated: the least-squares solvers differentiate the solution implicitly.

`f = y, g = 0` gives the least-squares fit; `f = 0, g = c` gives `r = B (BᵀB)⁻¹ c`, whose squared
norm `cᵀ(BᵀB)⁻¹c` is a variance (used for accurate standard errors).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from . import doubledouble as ext
from .doubledouble import DD
from .qr import LinearOps, QRFactor, solve_augmented

Array = Any

__all__ = ["Refined", "refine_augmented"]


class Refined(NamedTuple):
    """Refined solution: residual `r (m, k)` and solution `z (p, k)`, both double-double; `steps`
    (corrections applied, int array), `converged` (the last relative correction was at or below the
    working precision, bool array), `correction` (the relative size of the last one)."""

    r: DD
    z: DD
    steps: Array
    converged: Array
    correction: Array


class _State(NamedTuple):
    r: DD
    z: DD
    steps: Array
    prev: Array
    done: Array
    converged: Array


def refine_augmented(
    ops: LinearOps,
    b_hi: Array,
    b_lo: Array | None,
    factor: QRFactor,
    f: DD,
    g: DD,
    *,
    max_steps: int = 30,
    skip: Any = False,
) -> Refined:
    """Refine the solution of `[[I, B], [Bᵀ, 0]] [r; z] = [f; g]`, `B = b_hi + b_lo`.

    **Arguments:** `b_hi (m, p)` (and `b_lo`, None when `B` is exact in working precision) and its
    factorisation `factor`; `f (m, k)` and `g (p, k)` double-double; `ops` the backend; `skip` (a bool
    array) returns the working-precision solution without refining (under `jax.vmap` the loop then does
    not run at all when every batch element skips).

    **Returns:** `Refined(r, z, steps, converged, correction)`. The loop stops when a correction is
    not finite or larger than the one before (not applied), when it is at the double-double level,
    or when the contraction shows that the next one would be below that level.
    """
    dtype = g.hi.dtype
    eps = jnp.asarray(jnp.finfo(dtype).eps, dtype)
    tiny = jnp.asarray(jnp.finfo(dtype).tiny, dtype)
    floor = 16 * eps * eps
    r0, z0 = solve_augmented(ops, b_hi, factor, f.hi, g.hi)
    fscale = ops.colmax(f.hi)

    def body(s: _State) -> _State:
        res_f, btr = ops.residual(b_hi, b_lo, f, s.r, s.z)
        res_g = ext.sub(g, btr)
        dr, dz = solve_augmented(ops, b_hi, factor, res_f.hi, res_g.hi)
        dr_max, r_max = ops.colmax(dr), ops.colmax(s.r.hi)
        finite = jnp.all(jnp.isfinite(dr_max)) & jnp.all(jnp.isfinite(dz))
        zscale = jnp.maximum(jnp.max(jnp.abs(s.z.hi), axis=0), tiny)
        rscale = jnp.maximum(fscale + r_max, tiny)
        size = jnp.max(jnp.maximum(jnp.max(jnp.abs(dz), axis=0) / zscale, dr_max / rscale), initial=0.0)
        grows = (s.steps > 0) & (size > s.prev)
        accept = finite & ~grows
        new_r = jax.tree_util.tree_map(lambda a, b: jnp.where(accept, a, b), ext.add_float(s.r, dr), s.r)
        new_z = jax.tree_util.tree_map(lambda a, b: jnp.where(accept, a, b), ext.add_float(s.z, dz), s.z)
        steps = s.steps + accept.astype(s.steps.dtype)
        converged = jnp.where(accept, size <= eps, s.converged)
        stop = (~accept) | (size <= floor) | ((steps > 1) & ((size > 0.5 * s.prev) | (size * (size / s.prev) <= floor)))
        return _State(new_r, new_z, steps, jnp.where(accept, size, s.prev), stop, converged)

    def running(s: _State):
        return (~s.done) & (s.steps < max_steps)

    start = _State(
        ext.from_float(r0),
        ext.from_float(z0),
        jnp.asarray(0, jnp.int32),
        jnp.asarray(jnp.inf, dtype),
        jnp.asarray(skip) | (f.hi.shape[0] == 0),
        jnp.asarray(False),
    )
    end = lax.while_loop(running, body, start)
    return Refined(end.r, end.z, end.steps, end.converged, end.prev)
