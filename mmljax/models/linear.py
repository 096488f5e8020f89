"""The linear model `f(x) = Θᵀx + b` and the scalar model `f(x) = a·x` (Lectures 1.2, 1.4).

Parameters are a `LinearParams(theta, bias)` NamedTuple:

- one output (`out_features=1`): `theta` of shape `(d,)`, `bias` of shape `()`, predictions `(n,)`;
- `k` outputs: `theta` of shape `(d, k)`, `bias` of shape `(k,)`, predictions `(n, k)`;
- `bias=None` for the model without intercept.

**Flat order.** `mmljax.ravel_vec(params)` gives `[vec(Θ); b]`: the columns of `Θ` stacked
(column-major), then the bias. `hand_hessian` and `hand_jacobian` use exactly this order, so
`mj.hessian_matrix(loss)(params) == hand_hessian(params, x, y)`.

The loss throughout is `L = ½ Σ_n ||y_n − f(x_n)||²`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._validate import check_bool, check_int
from . import _checks

__all__ = [
    "LinearParams",
    "init",
    "apply",
    "hand_gradient",
    "hand_hessian",
    "hand_jacobian",
    "scalar_apply",
    "scalar_hand_gradient",
    "scalar_hand_hessian",
    "scalar_minimiser",
]

_INIT = "mmljax.models.linear.init"


class LinearParams(NamedTuple):
    """`theta`: `(d,)` or `(d, k)`; `bias`: `()` or `(k,)` matching the outputs, or `None`."""

    theta: ArrayLike
    bias: ArrayLike | None


def init(key: ArrayLike, in_features: int, out_features: int = 1, bias: bool = True, dtype=None) -> LinearParams:
    """Random parameters for `f(x) = Θᵀx + b`.

    **Arguments:** `key` a JAX PRNG key; `in_features` = d; `out_features` = k (`1` gives the
    single-output model with `theta` of shape `(d,)`); `bias` whether to include `b`; `dtype`
    (default: JAX's default float).

    **Returns:** `LinearParams` with `Θ ~ N(0, 1/d)` entrywise and `b = 0`.
    """
    in_features = check_int(in_features, "linear.init", "in_features", minimum=1)
    out_features = check_int(out_features, "linear.init", "out_features", minimum=1)
    bias = check_bool(bias, "linear.init", "bias")
    dtype = _checks.float_dtype(dtype, "linear.init")
    shape = (in_features,) if out_features == 1 else (in_features, out_features)
    theta = jax.random.normal(key, shape, dtype) / float(np.sqrt(in_features))
    b = jnp.zeros(shape[1:], dtype) if bias else None
    return LinearParams(theta, b)


def _validate(params: LinearParams, where: str) -> tuple[int, int | None]:
    """(d, k) with k None for the single-output model."""
    _checks.params_type(params, LinearParams, where, _INIT)
    th = params.theta
    if jnp.ndim(th) not in (1, 2):
        raise ValueError(f"{where}: params.theta must have shape (d,) or (d, k); got {_checks.shape_of(th)}")
    k = None if jnp.ndim(th) == 1 else jnp.shape(th)[1]
    if params.bias is not None:
        expected = () if k is None else (k,)
        if _checks.shape_of(params.bias) != expected:
            raise ValueError(
                f"{where}: params.bias must have shape {expected} to match theta of shape "
                f"{_checks.shape_of(th)}; got {_checks.shape_of(params.bias)}"
            )
    return jnp.shape(th)[0], k


def _inputs(params, x, where):
    d, k = _validate(params, where)
    x = _checks.inputs_2d(x, d, where, f"theta has shape {_checks.shape_of(params.theta)}")
    return x, d, k


def apply(params: LinearParams, x: Float[ArrayLike, "n d"]) -> Float[Array, "n ..."]:
    """Predictions `X Θ + b`.

    **Arguments:** `params` from `init`; `x` of shape `(n, d)`.

    **Returns:** shape `(n,)` for one output, `(n, k)` for `k` outputs.
    """
    x, _, _ = _inputs(params, x, "linear.apply")
    out = x @ params.theta
    return out if params.bias is None else out + params.bias


def hand_gradient(params: LinearParams, x: Float[ArrayLike, "n d"], y: Float[ArrayLike, "n ..."]) -> LinearParams:
    """Gradient of `½ Σ ||y_n − f(x_n)||²` by hand: `dL/dΘ = Xᵀ r`, `dL/db = Σ_n r_n`, `r = f(X) − y`.

    **Returns:** a `LinearParams` shaped like `params`.
    """
    x, _, _ = _inputs(params, x, "linear.hand_gradient")
    pred = apply(params, x)
    r = pred - _checks.targets(y, pred.shape, "linear.hand_gradient")
    g_theta = r @ x if r.ndim == 1 else jnp.einsum("nd,nk->dk", x, r)
    g_bias = None if params.bias is None else jnp.sum(r, axis=0)
    return LinearParams(g_theta, g_bias)


def _augmented(params, x):
    """Φ = [X, 1] (or X without bias) and the permutation from vec(Θ_aug) to ravel_vec order."""
    n, d = x.shape
    k = 1 if jnp.ndim(params.theta) == 1 else jnp.shape(params.theta)[1]
    if params.bias is None:
        return x, k, np.arange(d * k)
    phi = jnp.concatenate([x, jnp.ones((n, 1), x.dtype)], axis=1)
    # Θ_aug = [Θ; bᵀ] is (d+1, k); ravel_vec puts vec(Θ) first, then b.
    theta_pos = np.array([j * (d + 1) + i for j in range(k) for i in range(d)])
    bias_pos = np.array([j * (d + 1) + d for j in range(k)])
    return phi, k, np.concatenate([theta_pos, bias_pos])


def hand_hessian(params: LinearParams, x: Float[ArrayLike, "n d"], y: Float[ArrayLike, "n ..."]) -> Float[Array, "P P"]:
    """Hessian of `½ Σ ||y_n − f(x_n)||²` by hand, in `ravel_vec(params)` order.

    With `Φ = [X, 1]` (or `X` without bias) it is `I_k ⊗ ΦᵀΦ` in the order `vec(Θ_aug)` of
    `Θ_aug = [Θ; bᵀ]`, permuted to `[vec(Θ); b]`. For one output with bias:
    `[[XᵀX, Xᵀ1], [1ᵀX, n]]`. It does not depend on `y` (checked for shape only).

    **Returns:** `(P, P)` with `P = d·k (+ k)`.
    """
    x, _, _ = _inputs(params, x, "linear.hand_hessian")
    _checks.targets(y, apply(params, x).shape, "linear.hand_hessian")
    phi, k, perm = _augmented(params, x)
    G = jnp.einsum("na,nb->ab", phi, phi)
    H = G if k == 1 else jnp.kron(jnp.eye(k, dtype=G.dtype), G)
    return H[perm][:, perm]


def hand_jacobian(params: LinearParams, x: Float[ArrayLike, "n d"]) -> Float[Array, "nk P"]:
    """Per-example Jacobian of the outputs w.r.t. all parameters, by hand.

    **Returns:** `(n·k, P)`; row `i·k + j` (example-major) is `d f_j(x_i) / d ravel_vec(params)`:
    `e_jᵀ ⊗ [x_iᵀ, 1]` in `vec(Θ_aug)` order, permuted to `[vec(Θ); b]`.
    """
    x, _, _ = _inputs(params, x, "linear.hand_jacobian")
    phi, k, perm = _augmented(params, x)
    eye = jnp.eye(k, dtype=phi.dtype)
    J = jnp.einsum("jl,na->njla", eye, phi).reshape(x.shape[0] * k, k * phi.shape[1])
    return J[:, perm]


# ---- the scalar model of Lecture 1.2: f(x) = a·x ---------------------------------------------


def _scalar_inputs(a, x, y, where):
    if jnp.ndim(a) != 0:
        raise ValueError(f"{where}: a must be a scalar (shape ()); got shape {_checks.shape_of(a)}")
    x = jnp.asarray(x)
    if x.ndim != 1:
        raise ValueError(
            f"{where}: x must have shape (n,) for the scalar model a·x; got {x.shape} — for several "
            "features use linear.apply with x of shape (n, d)"
        )
    _checks.require_floating(x, where, "x")
    y = None if y is None else _checks.targets(y, x.shape, where)
    return x, y


def scalar_apply(a: Float[ArrayLike, ""], x: Float[ArrayLike, " n"]) -> Float[Array, " n"]:
    """`f(x) = a·x` for `x` of shape `(n,)`."""
    x, _ = _scalar_inputs(a, x, None, "linear.scalar_apply")
    return a * x


def scalar_hand_gradient(
    a: Float[ArrayLike, ""], x: Float[ArrayLike, " n"], y: Float[ArrayLike, " n"]
) -> Float[Array, ""]:
    """`dL/da = Σ_n (a x_n − y_n) x_n` for `L = ½ Σ (y_n − a x_n)²`."""
    x, y = _scalar_inputs(a, x, y, "linear.scalar_hand_gradient")
    return jnp.sum((a * x - y) * x)


def scalar_hand_hessian(
    a: Float[ArrayLike, ""], x: Float[ArrayLike, " n"], y: Float[ArrayLike, " n"]
) -> Float[Array, ""]:
    """`d²L/da² = Σ_n x_n²` (≥ 0: the loss is convex in `a`)."""
    x, _ = _scalar_inputs(a, x, y, "linear.scalar_hand_hessian")
    return jnp.sum(x * x)


def scalar_minimiser(x: Float[ArrayLike, " n"], y: Float[ArrayLike, " n"]) -> Float[Array, ""]:
    """`a* = Σ x_n y_n / Σ x_n²` (Lecture 1.2, corrected: GUIDE.md §9)."""
    x, y = _scalar_inputs(jnp.zeros(()), x, y, "linear.scalar_minimiser")
    return jnp.sum(x * y) / jnp.sum(x * x)
