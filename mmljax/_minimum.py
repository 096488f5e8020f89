"""The one second-order minimum test, shared by `check_minimiser` and `classify_critical_point`.

Scale-aware, from the gradient `g` and the Hessian's eigen-decomposition `H = V diag(λ) Vᵀ` at a
point `x` (flattened in `ravel_vec` order):

- **stationary**: the relative Newton step `||H⁺ g|| / max(||x||, 1) <= tol`. In directions where
  the Hessian is numerically zero (`|λ_i| <= eig_tol · max|λ|`) the step is measured as
  `|v_iᵀ g| / max|λ|` (what a step the size of the largest curvature would need), so a gradient
  along a flat direction is not hidden by the pseudo-inverse. The test is invariant under scaling the
  loss (`c · L`) and, for parameters away from the unit scale, under scaling the parameters.
- **curvature**: eigenvalues with `|λ| <= eig_tol · max|λ|` count as zero. A strict minimum needs
  every eigenvalue positive: positive *semi*-definiteness is inconclusive (zero eigenvalues make
  the test "degenerate"; the erratum of the lecture notes).

Defaults: `tol = sqrt(eps)` of the dtype (1.5e-8 in float64, 3.5e-4 in float32),
`eig_tol = 10 · P · eps` (the rounding level of a computed Hessian). Works on arrays inside `jax.jit`
and `jax.vmap` (the verdict is an integer code, `KINDS[code]`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._validate import check_real

KINDS = ("minimum", "maximum", "saddle", "degenerate", "not_stationary")
MINIMUM, MAXIMUM, SADDLE, DEGENERATE, NOT_STATIONARY = range(5)


class MinimumTest(NamedTuple):
    """The verdict and the numbers behind it (arrays; one entry per batch element under `vmap`)."""

    kind: jax.Array  # index into KINDS
    relative_step: jax.Array
    n_positive: jax.Array
    n_negative: jax.Array
    n_zero: jax.Array
    min_eigenvalue: jax.Array
    max_eigenvalue: jax.Array


def default_tol(dtype) -> float:
    return float(np.sqrt(np.finfo(np.dtype(dtype)).eps))


def default_eig_tol(dtype, P: int) -> float:
    return float(10 * max(P, 1) * np.finfo(np.dtype(dtype)).eps)


def check_tolerances(tol, eig_tol, dtype, P: int, where: str) -> tuple[float, float]:
    """Validated `(tol, eig_tol)` with their dtype defaults (both relative, `0 <= tol`, `0 <= eig_tol < 1`)."""
    tol = default_tol(dtype) if tol is None else check_real(tol, where, "tol", minimum=0.0)
    eig_tol = default_eig_tol(dtype, P) if eig_tol is None else check_real(eig_tol, where, "eig_tol", minimum=0.0)
    if eig_tol >= 1.0:
        raise ValueError(f"{where}: eig_tol is relative to the largest |eigenvalue| and must be < 1; got {eig_tol:g}")
    return tol, eig_tol


def verdict(lam: jax.Array, gV: jax.Array, x_norm: jax.Array, tol, eig_tol) -> MinimumTest:
    """The test from all eigenvalues `lam (P,)`, the gradient's components along their eigenvectors
    `gV (P,)` (`Vᵀ g`) and the parameters' norm `x_norm`. (With only some eigenpairs known, estimate the
    relative step yourself and call `verdict_from_step`.)"""
    scale = jnp.max(jnp.abs(lam))
    floor = eig_tol * scale
    zero = jnp.abs(lam) <= floor
    safe = jnp.where(zero, jnp.where(scale > 0, scale, 1.0), jnp.abs(lam))
    step = jnp.linalg.norm(gV / safe)
    # a zero Hessian: no curvature scale at all; any gradient is "not stationary"
    step = jnp.where(scale > 0, step, jnp.where(jnp.linalg.norm(gV) > 0, jnp.inf, 0.0))
    rel = step / jnp.maximum(x_norm, 1.0)
    return verdict_from_step(lam, rel, tol, eig_tol)


def verdict_from_step(lam: jax.Array, rel: jax.Array, tol, eig_tol) -> MinimumTest:
    """The test from eigenvalues `lam` and an already computed relative Newton step `rel`. When `lam`
    holds only some of the eigenvalues (Lanczos), the counts are of those: lower bounds of the true ones."""
    scale = jnp.max(jnp.abs(lam))
    floor = eig_tol * scale
    n_pos = jnp.sum(lam > floor)
    n_neg = jnp.sum(lam < -floor)
    n_zero = lam.shape[0] - n_pos - n_neg
    kind = jnp.where(
        rel > tol,
        NOT_STATIONARY,
        jnp.where(
            (n_neg > 0) & (n_pos > 0),
            SADDLE,
            jnp.where(n_zero > 0, DEGENERATE, jnp.where(n_pos > 0, MINIMUM, MAXIMUM)),
        ),
    )
    return MinimumTest(kind, rel, n_pos, n_neg, n_zero, jnp.min(lam), jnp.max(lam))


def dense_test(g: jax.Array, H: jax.Array, x: jax.Array, tol, eig_tol) -> tuple[MinimumTest, jax.Array]:
    """The test from a dense gradient `(P,)` and Hessian `(P, P)` at `x (P,)`; also returns all eigenvalues."""
    lam, V = jnp.linalg.eigh(0.5 * (H + H.T))
    return verdict(lam, V.T @ g, jnp.linalg.norm(x), tol, eig_tol), lam
