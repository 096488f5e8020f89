"""Lanczos with full reorthogonalisation on a symmetric matvec (a Hessian-vector product).

Keeps the whole Krylov basis and reorthogonalises against it (classical Gram-Schmidt, twice), so
memory is `O(P * m)` for `m` iterations and the Ritz values do not suffer the ghost copies of
plain Lanczos. Used by `mmljax.analysis` (spectrum, classification) and by the iterative solvers
(`1/λmax` step of gradient descent, negative curvature at a stationary point in Newton-CG).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp


class Ritz(NamedTuple):
    """Ritz values `theta (m,)` ascending, their vectors in the Krylov basis `S (m, m)`, residual norms
    `residual (m,)` (`||H y - θ y||` for the Ritz vector `y`: a bound on each value's error) and the basis
    `Q (m, P)` (rows orthonormal). The Ritz vector of `theta[i]` is `S[:, i] @ Q`."""

    theta: jax.Array
    S: jax.Array
    residual: jax.Array
    Q: jax.Array


class _LanczosState(NamedTuple):
    Q: jax.Array  # (m, P) the basis so far
    alpha: jax.Array  # (m,) diagonal of T
    beta: jax.Array  # (m,) off-diagonal of T (beta[m-1]: the next residual's norm)
    q: jax.Array  # the current vector
    q_prev: jax.Array
    b_prev: jax.Array


def lanczos_tridiagonal(matvec: Callable[[jax.Array], jax.Array], v0: jax.Array, m: int, key: jax.Array):
    """`m` Lanczos steps with full reorthogonalisation.

    **Returns:** `(alpha (m,), beta (m,), Q (m, P))` with `T = tridiag(beta[:-1], alpha, beta[:-1])`
    and `beta[m-1]` the norm of the next residual (for error bounds). On breakdown (an invariant
    subspace) the next vector is a fresh random one orthogonal to `Q` (drawn from `key`), with `beta = 0`.
    """
    P = v0.shape[0]
    dtype = v0.dtype
    Q = jnp.zeros((m, P), dtype)
    q0 = v0 / jnp.linalg.norm(v0)

    def orthogonalise(w, Q):
        for _ in range(2):  # classical Gram-Schmidt, twice is enough
            w = w - (Q @ w) @ Q
        return w

    def body(j, c: _LanczosState) -> _LanczosState:
        Q, alpha, beta, q, q_prev, b_prev = c.Q, c.alpha, c.beta, c.q, c.q_prev, c.b_prev
        Q = Q.at[j].set(q)
        w = matvec(q)
        a = jnp.vdot(q, w)
        w = orthogonalise(w - a * q - b_prev * q_prev, Q)
        b = jnp.linalg.norm(w)
        scale = jnp.maximum(jnp.abs(a) + b_prev, jnp.finfo(dtype).tiny)
        broke = b <= 100 * jnp.finfo(dtype).eps * scale
        fresh = orthogonalise(jax.random.normal(jax.random.fold_in(key, j), (P,), dtype), Q)
        q_next = jnp.where(broke, fresh / jnp.linalg.norm(fresh), w / jnp.where(broke, 1.0, b))
        b = jnp.where(broke, 0.0, b)
        return _LanczosState(Q, alpha.at[j].set(a), beta.at[j].set(b), q_next, q, b)

    init = _LanczosState(Q, jnp.zeros(m, dtype), jnp.zeros(m, dtype), q0, jnp.zeros_like(q0), jnp.zeros((), dtype))
    out = jax.lax.fori_loop(0, m, body, init)
    return out.alpha, out.beta, out.Q


def ritz(matvec: Callable[[jax.Array], jax.Array], P: int, dtype, m: int, key: jax.Array) -> Ritz:
    """`m` Lanczos steps from a random start drawn from `key`; the Ritz pairs of the tridiagonal matrix."""
    k_start, k_restart = jax.random.split(key)
    v0 = jax.random.normal(k_start, (P,), dtype)
    alpha, beta, Q = lanczos_tridiagonal(matvec, v0, m, k_restart)
    T = jnp.diag(alpha) + jnp.diag(beta[:-1], 1) + jnp.diag(beta[:-1], -1)
    theta, S = jnp.linalg.eigh(T)
    residual = jnp.abs(beta[m - 1] * S[m - 1])
    return Ritz(theta, S, residual, Q)
