"""Derivations from the lecture notes (`shared/reference/mml-lecture-notes.md`), in mmljax's layout.

Numerator layout throughout: the Jacobian of `f: R^N -> R^M` is `M x N`; the gradient of a scalar
is stored in the shape of its argument.
"""

from __future__ import annotations

import jax.numpy as jnp

from ._identity import Identity
from ._samplers import normal

L12 = "Lecture 1.2 (scalar differentiation)"
L15 = "Lecture 1.5 (vector-by-vector differentiation)"


def _ax_data(rng, n):
    x, y = normal(rng, (n,)), normal(rng, (n,))
    return normal(rng), (x, y)


def _ls_scalar(a, x, y):
    return jnp.sum((a * x - y) ** 2)


def _t_sample(rng, n):
    return normal(rng), ()


def _chain_f(t):
    x1, x2 = jnp.sin(t), jnp.cos(t)
    return x1**2 + 2 * x2


def _Ax_sample(rng, n):
    return normal(rng, (n,)), (normal(rng, (n + 1, n)), normal(rng, (n + 1,)))


IDENTITIES = (
    Identity(
        name="L(a) = Σ (a x_n − y_n)²: dL/da",
        source=L12 + ", worked example f(x) = a·x",
        domain="lectures",
        f=_ls_scalar,
        derivative=lambda a, x, y: jnp.sum(2 * (a * x - y) * x),
        sample=_ax_data,
        sizes=(3, 10, 40),
    ),
    Identity(
        name="L(a) = Σ (a x_n − y_n)²: d²L/da²",
        source=L12 + ", worked example f(x) = a·x",
        domain="lectures",
        f=_ls_scalar,
        derivative=lambda a, x, y: jnp.sum(2 * x**2),
        order=2,
        sample=_ax_data,
        sizes=(3, 10, 40),
    ),
    Identity(
        name="L(a) = Σ (a x_n − y_n)²: minimiser a = Σ x_n y_n / Σ x_n²",
        source=L12 + " (corrected, GUIDE.md §9)",
        domain="lectures",
        f=_ls_scalar,
        minimiser=lambda x, y: jnp.sum(x * y) / jnp.sum(x**2),
        sample=_ax_data,
        sizes=(3, 10, 40),
    ),
    Identity(
        name="L(a) = Σ (a x_n − y_n)²: printed minimiser a = Σ 2 x_n y_n / Σ x_n²",
        source=L12 + " as printed (erratum, GUIDE.md §9)",
        domain="lectures",
        f=_ls_scalar,
        minimiser=lambda x, y: jnp.sum(2 * x * y) / jnp.sum(x**2),
        sample=_ax_data,
        sizes=(3, 10, 40),
        expect_fail=True,
        note="the lecture's printed result; the checker must reject it",
    ),
    Identity(
        name="chain rule: f = x1² + 2 x2, x(t) = (sin t, cos t): df/dt = 2 sin t (cos t − 1)",
        source=L15 + ", chain-rule example",
        domain="lectures",
        f=_chain_f,
        derivative=lambda t: 2 * jnp.sin(t) * (jnp.cos(t) - 1),
        sample=_t_sample,
        sizes=(1, 1, 1),
        medium_sizes=(1, 1, 1),
    ),
    Identity(
        name="d(Ax)/dx = A",
        source=L15,
        domain="lectures",
        f=lambda x, A, y: A @ x,
        derivative=lambda x, A, y: A,
        sample=_Ax_sample,
    ),
    Identity(
        name="d ½||y − Ax||² / dx = −(y − Ax)ᵀ A",
        source=L15 + ", least squares by the chain rule",
        domain="lectures",
        f=lambda x, A, y: 0.5 * jnp.sum((y - A @ x) ** 2),
        derivative=lambda x, A, y: -(y - A @ x) @ A,
        sample=_Ax_sample,
    ),
)
