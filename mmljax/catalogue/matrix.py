"""Matrix-calculus identities (Matrix Cookbook, Petersen & Pedersen 2012), stored in mmljax's
layout: Jacobians `out_shape + in_shape`, or `vec` matrices `(out.size, in.size)` in column-major
order. Where the Cookbook states a result in denominator layout or for symmetric `X`, the entry
says so and stores the numerator-layout form.
"""

from __future__ import annotations

import jax.numpy as jnp

from ._identity import Identity
from ._samplers import normal

COOKBOOK = "Matrix Cookbook"


def _AXB_sample(rng, n):
    return normal(rng, (n, n + 1)), (normal(rng, (n + 2, n)), normal(rng, (n + 1, max(n - 1, 1))))


def _quad_sample(rng, n):
    return normal(rng, (n,)), (normal(rng, (n, n)),)


IDENTITIES = (
    Identity(
        name="d vec(AXB) / d vec X = Bᵀ ⊗ A",
        source=COOKBOOK + " eq. (520); Lecture 2 (vec trick)",
        domain="matrix",
        f=lambda X, A, B: A @ X @ B,
        derivative=lambda X, A, B: jnp.kron(B.T, A),
        layout="vec",
        sample=_AXB_sample,
    ),
    Identity(
        name="Hessian of xᵀBx = B + Bᵀ",
        source=COOKBOOK + " eq. (81) differentiated twice; Lecture 1.5 (Hessian)",
        domain="matrix",
        f=lambda x, B: x @ B @ x,
        derivative=lambda x, B: B + B.T,
        order=2,
        sample=_quad_sample,
    ),
)
