"""Vector calculus: gradients, Jacobians and Hessians of functions of a vector `x ∈ R^n`.

Layouts: the gradient of a scalar is stored 1-D, shaped like `x` (the Matrix Cookbook writes it
as a column vector, i.e. in denominator layout; as a 1-D array the two coincide). The Jacobian
of `f: R^n -> R^m` is `m x n` (numerator layout, `J[i, j] = df_i/dx_j`); where the Cookbook or
a textbook states a Jacobian the other way round, the entry says so and stores the transpose.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ..models.activations import ACTIVATIONS
from ._identity import Identity
from ._samplers import normal, spd, symmetric

_SIGMOID = ACTIVATIONS["sigmoid"]

CB = "Matrix Cookbook"
CB_FORMS = CB + " §2.4 (matrices, vectors and scalar forms)"
CB_NORMS = CB + " §2.6 (vector norms)"
# The Cookbook writes ∂f/∂x of a scalar as a column vector (denominator layout); the numerator-layout
# derivative is its transpose, the 1 x n row, which mmljax stores 1-D: the same numbers.
DENOM = "the Cookbook's column vector is the denominator-layout gradient; mmljax stores it 1-D (same numbers)"


def _softmax(x):
    e = jnp.exp(x - jnp.max(x))
    return e / jnp.sum(e)


def _x_a(rng, n):
    return normal(rng, (n,)), (normal(rng, (n,)),)


def _x_B(rng, n):
    return normal(rng, (n,)), (normal(rng, (n, n)),)


def _x_sym(rng, n):
    return normal(rng, (n,)), (symmetric(rng, n),)


def _bilinear_sample(rng, n):
    m = n + 1
    return normal(rng, (n,)), (
        normal(rng, (m, n)),
        normal(rng, (m,)),
        normal(rng, (m, m)),
        normal(rng, (m, n)),
        normal(rng, (m,)),
    )


def _weighted_sample(rng, n):
    """x ∈ R^n, A (n x k), s ∈ R^k, W symmetric positive definite (the Cookbook assumes W = Wᵀ)."""
    k = max(n - 1, 1)
    return normal(rng, (n,)), (normal(rng, (n, k)), normal(rng, (k,)), spd(rng, n))


def _s_first(rng, n):
    x, (A, s, W) = _weighted_sample(rng, n)
    return s, (A, x, W)


def _general_W(rng, n):
    k = max(n - 1, 1)
    return normal(rng, (n,)), (normal(rng, (n, k)), normal(rng, (k,)), normal(rng, (n, n)))


def _away_from_a(rng, n):
    a = normal(rng, (n,))
    d = normal(rng, (n,))
    return a + (1.0 + rng.uniform()) * d / np.linalg.norm(d), (a,)


def _rayleigh_sample(rng, n):
    return normal(rng, (n,)) + 0.5, (symmetric(rng, n),)


def _quad(x, A, s, W):
    r = x - A @ s
    return r @ W @ r


def _quad_s(s, A, x, W):
    r = x - A @ s
    return r @ W @ r


IDENTITIES = (
    Identity(
        name="∂aᵀx/∂x = a",
        source=CB_FORMS + " eq. (69)",
        domain="vector",
        f=lambda x, a: a @ x,
        derivative=lambda x, a: a,
        sample=_x_a,
        note=DENOM,
    ),
    Identity(
        name="∂xᵀBx/∂x = (B + Bᵀ)x",
        source=CB_FORMS + " eq. (81)",
        domain="vector",
        f=lambda x, B: x @ B @ x,
        derivative=lambda x, B: (B + B.T) @ x,
        sample=_x_B,
        note=DENOM,
    ),
    Identity(
        name="∂xᵀBx/∂x = 2Bx for symmetric B",
        source=CB_FORMS + " eq. (81) with B = Bᵀ",
        domain="vector",
        f=lambda x, B: x @ B @ x,
        derivative=lambda x, B: 2 * B @ x,
        sample=_x_sym,
        note="the symmetric special case; for general B it is (B + Bᵀ)x",
    ),
    Identity(
        name="∂(Bx + b)ᵀC(Dx + d)/∂x = BᵀC(Dx + d) + DᵀCᵀ(Bx + b)",
        source=CB_FORMS + " eq. (78)",
        domain="vector",
        f=lambda x, B, b, C, D, d: (B @ x + b) @ C @ (D @ x + d),
        derivative=lambda x, B, b, C, D, d: B.T @ C @ (D @ x + d) + D.T @ C.T @ (B @ x + b),
        sample=_bilinear_sample,
        note=DENOM,
    ),
    Identity(
        name="∂/∂s (x − As)ᵀW(x − As) = −2AᵀW(x − As), W symmetric",
        source=CB_FORMS + " eq. (84)",
        domain="vector",
        f=_quad_s,
        derivative=lambda s, A, x, W: -2 * A.T @ W @ (x - A @ s),
        sample=_s_first,
        note="the Cookbook assumes W = Wᵀ; the sampler draws W symmetric positive definite",
    ),
    Identity(
        name="∂/∂x (x − As)ᵀW(x − As) = 2W(x − As), W symmetric",
        source=CB_FORMS + " eq. (87)",
        domain="vector",
        f=_quad,
        derivative=lambda x, A, s, W: 2 * W @ (x - A @ s),
        sample=_weighted_sample,
        note="the Cookbook assumes W = Wᵀ; the sampler draws W symmetric positive definite",
    ),
    Identity(
        name="∂/∂x (x − As)ᵀW(x − As) = (W + Wᵀ)(x − As), any W",
        source=CB_FORMS + " eq. (87) without the symmetry assumption",
        domain="vector",
        f=_quad,
        derivative=lambda x, A, s, W: (W + W.T) @ (x - A @ s),
        sample=_general_W,
        note="for non-symmetric W the Cookbook's 2W(x − As) is wrong; (W + Wᵀ) symmetrises it",
    ),
    Identity(
        name="∂||x||₂²/∂x = 2x",
        source=CB_NORMS + " eq. (131)",
        domain="vector",
        f=lambda x: x @ x,
        derivative=lambda x: 2 * x,
        sample=lambda rng, n: (normal(rng, (n,)), ()),
        note=DENOM,
    ),
    Identity(
        name="∂||x − a||₂/∂x = (x − a)/||x − a||₂",
        source=CB_NORMS + " eq. (129)",
        domain="vector",
        f=lambda x, a: jnp.linalg.norm(x - a),
        derivative=lambda x, a: (x - a) / jnp.linalg.norm(x - a),
        sample=_away_from_a,
        note="x drawn at distance 1–2 from a (the norm is not differentiable at x = a)",
    ),
    Identity(
        name="∂/∂x (x − a)/||x − a||₂ = I/||x − a|| − (x − a)(x − a)ᵀ/||x − a||³",
        source=CB_NORMS + " eq. (130)",
        domain="vector",
        f=lambda x, a: (x - a) / jnp.linalg.norm(x - a),
        derivative=lambda x, a: (
            jnp.eye(x.size) / jnp.linalg.norm(x - a) - jnp.outer(x - a, x - a) / jnp.linalg.norm(x - a) ** 3
        ),
        sample=_away_from_a,
        note="a symmetric Jacobian: numerator and denominator layouts agree",
    ),
    Identity(
        name="Jacobian of elementwise σ(x): diag(σ(x) ⊙ (1 − σ(x)))",
        source="Lecture 2 (diagonal Jacobians)",
        domain="vector",
        f=_SIGMOID.f,
        derivative=lambda x: jnp.diag(_SIGMOID.df(x)),
        sample=lambda rng, n: (2 * normal(rng, (n,)), ()),
    ),
    Identity(
        name="Jacobian of x ⊙ y w.r.t. x: diag(y)",
        source=CB + " eq. (38) (Hadamard product rule)",
        domain="vector",
        f=lambda x, y: x * y,
        derivative=lambda x, y: jnp.diag(y),
        sample=_x_a,
    ),
    Identity(
        name="Jacobian of outer product x xᵀ: ∂(xxᵀ)_ij/∂x_k = δ_ik x_j + x_i δ_jk (rank 3)",
        source="index calculus, Lecture 2 (tensor-valued derivatives)",
        domain="vector",
        f=lambda x: jnp.outer(x, x),
        derivative=lambda x: jnp.einsum("ik,j->ijk", jnp.eye(x.size), x) + jnp.einsum("i,jk->ijk", x, jnp.eye(x.size)),
        sample=lambda rng, n: (normal(rng, (n,)), ()),
    ),
    Identity(
        name="softmax Jacobian ∂p_i/∂x_j = p_i (δ_ij − p_j) = diag(p) − ppᵀ",
        source="Bishop, PRML (2006) eq. (4.106)",
        domain="vector",
        f=_softmax,
        derivative=lambda x: jnp.diag(_softmax(x)) - jnp.outer(_softmax(x), _softmax(x)),
        sample=lambda rng, n: (2 * normal(rng, (n,)), ()),
    ),
    Identity(
        name="∇ log Σ exp(x) = softmax(x)",
        source="Boyd & Vandenberghe, Convex Optimization §3.1.5 (log-sum-exp example)",
        domain="vector",
        f=lambda x: jnp.log(jnp.sum(jnp.exp(x))),
        derivative=_softmax,
        sample=lambda rng, n: (2 * normal(rng, (n,)), ()),
    ),
    Identity(
        name="Hessian of log Σ exp(x) = diag(p) − ppᵀ, p = softmax(x)",
        source="Boyd & Vandenberghe, Convex Optimization §3.1.5 (log-sum-exp example)",
        domain="vector",
        f=lambda x: jnp.log(jnp.sum(jnp.exp(x))),
        derivative=lambda x: jnp.diag(_softmax(x)) - jnp.outer(_softmax(x), _softmax(x)),
        order=2,
        sample=lambda rng, n: (2 * normal(rng, (n,)), ()),
    ),
    Identity(
        name="∇ xᵀBx / xᵀx = 2(Bx − R(x) x)/xᵀx for symmetric B (Rayleigh quotient)",
        source=CB_FORMS + " eq. (81), §2.6.1 eq. (131) and the quotient rule (Rayleigh quotient)",
        domain="vector",
        f=lambda x, B: (x @ B @ x) / (x @ x),
        derivative=lambda x, B: 2 * (B @ x - (x @ B @ x) / (x @ x) * x) / (x @ x),
        sample=_rayleigh_sample,
        note=DENOM,
    ),
)
