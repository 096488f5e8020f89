"""Deep regression (Lecture 2): `f_l = σ(A_l f_{l−1} + b_l)`, `f_0 = x`, with a final linear layer.

Parameters are an `MLPParams` pytree: `layers`, a tuple of `Layer(A, b)` with `A_l` of shape
`(sizes[l], sizes[l−1])` and `b_l` of shape `(sizes[l],)`; the activation name is static (part of
the tree structure). Predictions have shape `(n,)` when `sizes[-1] == 1`, else `(n, k)`.

**Flat order.** `ravel_vec(params)` is `[vec(A_1); b_1; vec(A_2); b_2; …]` (each `A` column-major).
`hand_jacobian` and `hand_gauss_newton` use this order.

Batched notation (rows are examples): `Z_l = F_{l−1} A_lᵀ + b_l`, `F_l = σ(Z_l)` for hidden
layers, `F_L = Z_L`. For `L = ½ Σ_n ||y_n − f(x_n)||²` backpropagation is
`δ_L = F_L − Y`, `dL/dA_l = δ_lᵀ F_{l−1}` (`= Σ_n δ_{l,n} f_{l−1,n}ᵀ`), `dL/db_l = Σ_n δ_{l,n}`,
`δ_{l−1} = (δ_l A_l) ⊙ σ'(Z_{l−1})` — row by row the lectures' `(A_lᵀ δ_l) ⊙ σ'(z_{l−1})`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._validate import check_int
from . import _checks
from .activations import ACTIVATIONS, get_activation

__all__ = [
    "Layer",
    "MLPParams",
    "MLP",
    "ACTIVATIONS",
    "init",
    "apply",
    "sizes",
    "hand_gradient",
    "hand_jacobian",
    "hand_gauss_newton",
]

_INIT = "mmljax.models.mlp.init"


class Layer(NamedTuple):
    """One affine layer `z = A f + b`: `A` `(out, in)`, `b` `(out,)`."""

    A: ArrayLike
    b: ArrayLike


@dataclasses.dataclass(frozen=True)
class MLPParams:
    """`layers`: tuple of `Layer`; `activation`: static name of the hidden-layer activation."""

    layers: tuple[Layer, ...]
    activation: str = "tanh"


jax.tree_util.register_dataclass(MLPParams, data_fields=["layers"], meta_fields=["activation"])


def init(key: ArrayLike, sizes: Sequence[int], activation: str = "tanh", dtype=None) -> MLPParams:
    """Random parameters for an MLP with `sizes = [in, hidden…, out]` (depth `len(sizes) − 1`).

    **Arguments:** `key` a JAX PRNG key; `sizes` positive integers, at least two;
    `activation` one of tanh, sigmoid, relu, softplus, identity (hidden layers only; the last
    layer is linear); `dtype` (default: JAX's default float).

    **Returns:** `MLPParams` with `A_l ~ N(0, 1/sizes[l−1])` and `b_l = 0`.
    """
    if isinstance(sizes, (int, np.integer, str, bytes)) or not hasattr(sizes, "__len__") or len(sizes) < 2:
        raise ValueError(f"mlp.init: sizes must be [in, hidden..., out], at least two positive integers; got {sizes!r}")
    sizes = [check_int(s, "mlp.init", f"sizes[{i}]", minimum=1) for i, s in enumerate(sizes)]
    get_activation(activation, "mlp.init")
    dtype = _checks.float_dtype(dtype, "mlp.init")
    keys = jax.random.split(key, len(sizes) - 1)
    layers = tuple(
        Layer(jax.random.normal(k, (m, n), dtype) / float(np.sqrt(n)), jnp.zeros((m,), dtype))
        for k, n, m in zip(keys, sizes[:-1], sizes[1:])
    )
    return MLPParams(layers, activation)


def _validate(params: MLPParams, where: str) -> list[int]:
    """The sizes `[in, hidden…, out]` after checking that consecutive layers fit together."""
    _checks.params_type(params, MLPParams, where, _INIT)
    get_activation(params.activation, where)
    if not isinstance(params.layers, (tuple, list)) or not params.layers:
        raise ValueError(f"{where}: params.layers must be a non-empty tuple of Layer(A, b)")
    out = None
    for l, layer in enumerate(params.layers, start=1):
        if not isinstance(layer, (tuple, list)) or len(layer) != 2:
            raise ValueError(f"{where}: layer {l} must be a Layer(A, b); got {type(layer).__name__}")
        A, b = layer
        sA, sb = _checks.shape_of(A), _checks.shape_of(b)
        if len(sA) != 2 or sb != sA[:1]:
            raise ValueError(
                f"{where}: layer {l} must have A of shape (out, in) and b of shape (out,); got A {sA}, b {sb}"
            )
        if out is not None and sA[1] != out[-1]:
            raise ValueError(
                f"{where}: layer {l} has A of shape {sA} but layer {l - 1} outputs {out[-1]} features — "
                f"expected A_{l} of shape ({sA[0]}, {out[-1]}); params from another architecture?"
            )
        out = [sA[1]] if out is None else out
        out.append(sA[0])
    return out


def sizes(params: MLPParams) -> list[int]:
    """The architecture `[in, hidden…, out]` of `params`."""
    return _validate(params, "mlp.sizes")


def _forward(params: MLPParams, x: Array, where: str):
    """Pre-activations `Z_l` and layer outputs `F_l` (F_0 = X), all `(n, sizes[l])`."""
    s = _validate(params, where)
    x = _checks.inputs_2d(x, s[0], where, f"the first layer has A of shape {_checks.shape_of(params.layers[0].A)}")
    act = get_activation(params.activation, where)
    Zs, Fs = [], [x]
    for l, (A, b) in enumerate(params.layers):
        Z = Fs[-1] @ A.T + b
        Zs.append(Z)
        Fs.append(Z if l == len(params.layers) - 1 else act.f(Z))
    return Zs, Fs, act


def _squeeze(out: Array) -> Array:
    return out[:, 0] if out.shape[1] == 1 else out


def apply(params: MLPParams, x: Float[ArrayLike, "n d"]) -> Float[Array, "n ..."]:
    """Predictions: shape `(n,)` when the last layer has one output, else `(n, k)`.

    **Arguments:** `params` from `init`; `x` of shape `(n, sizes[0])`.
    """
    _, Fs, _ = _forward(params, x, "mlp.apply")
    return _squeeze(Fs[-1])


def hand_gradient(params: MLPParams, x: Float[ArrayLike, "n d"], y: Float[ArrayLike, "n ..."]) -> MLPParams:
    """Gradient of `½ Σ_n ||y_n − f(x_n)||²` by backpropagation (written out, not `jax.grad`).

    `δ_L = F_L − Y`; for `l = L…1`: `dL/dA_l = δ_lᵀ F_{l−1}`, `dL/db_l = Σ_n δ_{l,n}`, then
    `δ_{l−1} = (δ_l A_l) ⊙ σ'(Z_{l−1})`.

    **Returns:** an `MLPParams` shaped like `params`.
    """
    Zs, Fs, act = _forward(params, x, "mlp.hand_gradient")
    pred = _squeeze(Fs[-1])
    y = _checks.targets(y, pred.shape, "mlp.hand_gradient")
    delta = Fs[-1] - y.reshape(Fs[-1].shape)
    grads = []
    for l in range(len(params.layers) - 1, -1, -1):
        A = params.layers[l].A
        grads.append(Layer(jnp.einsum("nk,nj->kj", delta, Fs[l]), jnp.sum(delta, axis=0)))
        if l > 0:
            delta = (delta @ A) * act.df(Zs[l - 1])
    return MLPParams(tuple(reversed(grads)), params.activation)


def hand_jacobian(params: MLPParams, x: Float[ArrayLike, "n d"]) -> Float[Array, "nk P"]:
    """Per-example Jacobian of the outputs w.r.t. all parameters, by hand.

    With `D_l[i] = d f(x_i) / d z_l` (`k × sizes[l]`): `D_L = I_k`, `D_{l−1} = (D_l A_l) ⊙ σ'(z_{l−1})`
    (row-broadcast); then `d f_j(x_i)/dA_l[a, c] = D_l[i, j, a] f_{l−1}[i, c]` and
    `d f_j(x_i)/db_l = D_l[i, j]`.

    **Returns:** `(n·k, P)`; row `i·k + j` (example-major, `k = sizes[-1]`; rows `i` when `k = 1`)
    is `d f_j(x_i) / d ravel_vec(params)`.
    """
    Zs, Fs, act = _forward(params, x, "mlp.hand_jacobian")
    n, k = Fs[-1].shape
    D = jnp.broadcast_to(jnp.eye(k, dtype=Fs[-1].dtype), (n, k, k))
    blocks = []
    for l in range(len(params.layers) - 1, -1, -1):
        A = params.layers[l].A
        h_out, h_in = A.shape
        # vec(A) is column-major: entry (a, c) sits at c·h_out + a.
        J_A = jnp.einsum("nja,nc->njca", D, Fs[l]).reshape(n * k, h_in * h_out)
        blocks.append(jnp.concatenate([J_A, D.reshape(n * k, h_out)], axis=1))
        if l > 0:
            D = jnp.einsum("nja,ac->njc", D, A) * act.df(Zs[l - 1])[:, None, :]
    return jnp.concatenate(list(reversed(blocks)), axis=1)


def hand_gauss_newton(params: MLPParams, x: Float[ArrayLike, "n d"]) -> Float[Array, "P P"]:
    """The Gauss-Newton matrix `JᵀJ` of `½ Σ ||y_n − f(x_n)||²` (`J` from `hand_jacobian`).

    It is the Hessian without the residual-weighted curvature term `Σ r_nj ∇²f_j(x_n)`: equal to the
    Hessian where the residuals vanish, and always positive semi-definite.

    **Returns:** `(P, P)` in `ravel_vec(params)` order.
    """
    J = hand_jacobian(params, x)
    return jnp.einsum("rp,rq->pq", J, J)


class MLP(eqx.Module):
    """An equinox view of the same model: a callable pytree holding `MLPParams`.

    `MLP(params)(x) == apply(params, x)`; `eqx.filter_grad` of a loss of the module gives an `MLP`
    whose `.params` is the gradient in the same structure as `hand_gradient`.
    """

    params: MLPParams

    def __init__(self, params: MLPParams):
        _validate(params, "mlp.MLP")
        self.params = params

    @classmethod
    def init(cls, key: ArrayLike, sizes: Sequence[int], activation: str = "tanh", dtype=None) -> MLP:
        """`MLP(init(key, sizes, activation, dtype))`."""
        return cls(init(key, sizes, activation, dtype))

    def __call__(self, x: Float[ArrayLike, "n d"]) -> Float[Array, "n ..."]:
        return apply(self.params, x)

    @property
    def sizes(self) -> list[int]:
        return _validate(self.params, "mlp.MLP.sizes")

    @property
    def activation(self) -> str:
        return self.params.activation
