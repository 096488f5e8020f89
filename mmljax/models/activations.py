"""The one table of activation functions, with first and second derivatives written by hand.

Each row is `(σ, σ', σ'')` as functions of the pre-activation `z`, elementwise. The models'
hand gradients use `σ'`, the learned-basis Hessian also `σ''`; the identity catalogue checks
these same functions against autodiff and finite differences (`mmljax check -k activation`).
The logistic sigmoid is defined here once (`sigmoid`); softplus' derivatives reuse it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["Activation", "ACTIVATIONS", "get_activation", "sigmoid"]


class Activation(NamedTuple):
    """`f(z) = σ(z)`, `df(z) = σ'(z)`, `d2f(z) = σ''(z)`, elementwise."""

    name: str
    f: Callable
    df: Callable
    d2f: Callable


def _tanh_d(z):
    t = jnp.tanh(z)
    return 1 - t * t


def _tanh_d2(z):
    t = jnp.tanh(z)
    return -2 * t * (1 - t * t)


def sigmoid(z):
    """The logistic sigmoid `σ(z) = 1 / (1 + e^(−z))` (`jax.nn.sigmoid`: stable for large |z|)."""
    return jax.nn.sigmoid(z)


def _sigmoid_d(z):
    s = sigmoid(z)
    return s * (1 - s)


def _sigmoid_d2(z):
    s = sigmoid(z)
    return s * (1 - s) * (1 - 2 * s)


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation("tanh", jnp.tanh, _tanh_d, _tanh_d2),
    "sigmoid": Activation("sigmoid", sigmoid, _sigmoid_d, _sigmoid_d2),
    # relu'(0) = 0, the value jax.nn.relu's custom JVP uses, so hand and autodiff agree at z = 0.
    "relu": Activation("relu", jax.nn.relu, lambda z: (z > 0).astype(z.dtype), jnp.zeros_like),
    # softplus(z) = log(1 + e^z): σ' is the logistic sigmoid, σ'' its derivative.
    "softplus": Activation("softplus", jax.nn.softplus, sigmoid, _sigmoid_d),
    "identity": Activation("identity", lambda z: z, jnp.ones_like, jnp.zeros_like),
}


def get_activation(name: str, where: str) -> Activation:
    """The activation called `name`, or a ValueError listing the valid names."""
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"{where}: activation must be one of {sorted(ACTIVATIONS)}; got {name!r}")
    return ACTIVATIONS[name]
