"""Squared-error losses of predictions against targets, each with its hand gradient.

Every loss takes `(pred, y)` of exactly the same shape (no broadcasting: a `(n,)` vs `(n, 1)`
mix-up raises, naming both shapes) and sums over all elements:

| loss | value | gradient w.r.t. `pred` |
|---|---|---|
| `sse` | `Σ (y − pred)²` | `2 (pred − y)` |
| `half_sse` | `½ Σ (y − pred)²` | `pred − y` |
| `mse` | `Σ (y − pred)² / N` (`N = pred.size`) | `2 (pred − y) / N` |

Ridge variants add a penalty on a pytree of parameters, `λ ||θ||²` (summed over every leaf; pass
only the leaves you want penalised, e.g. without biases): `ridge_sse = sse + λ||θ||²`,
`ridge_half_sse = half_sse + ½λ||θ||²`, `ridge_mse = mse + λ||θ||²`. For the linear model
`pred = Φθ` the first two have the minimiser `(ΦᵀΦ + λI)⁻¹ Φᵀ y`. Their hand gradients return
a `RidgeGradient(pred, params)`: the gradient w.r.t. the predictions (as for the plain loss) and
the penalty's gradient w.r.t. the parameters (`2λθ`, `λθ`, `2λθ`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Real

from ._validate import is_concrete, reject_complex

__all__ = [
    "sse",
    "half_sse",
    "mse",
    "sse_gradient",
    "half_sse_gradient",
    "mse_gradient",
    "l2_penalty",
    "ridge_sse",
    "ridge_half_sse",
    "ridge_mse",
    "ridge_sse_gradient",
    "ridge_half_sse_gradient",
    "ridge_mse_gradient",
    "RidgeGradient",
]


class RidgeGradient(NamedTuple):
    """`pred`: dLoss/dpred, shaped like the predictions; `params`: dPenalty/dθ, shaped like θ."""

    pred: Array
    params: Any


def _pair(pred: Any, y: Any, where: str) -> tuple[Array, Array]:
    for name, a in (("pred", pred), ("y", y)):
        if a is None or isinstance(a, (str, bytes)):
            raise TypeError(f"{where}: {name} must be a floating array; got {a!r} ({type(a).__name__})")
    pred, y = jnp.asarray(pred), jnp.asarray(y)
    if pred.shape != y.shape:
        hint = ""
        if (pred.ndim + 1 == y.ndim and y.shape[-1:] == (1,)) or (y.ndim + 1 == pred.ndim and pred.shape[-1:] == (1,)):
            hint = " — one has a trailing axis of length 1: use .ravel() or [:, None] so they match"
        raise ValueError(
            f"{where}: predictions and targets must have the same shape; got pred {pred.shape} and y {y.shape}{hint}"
        )
    for name, a in (("pred", pred), ("y", y)):
        if not jnp.issubdtype(a.dtype, jnp.floating):
            raise TypeError(
                f"{where}: {name} must be a floating array; got dtype {a.dtype} — pass {name}.astype(float)"
            )
    return pred, y


def sse(pred: Float[ArrayLike, "*shape"], y: Float[ArrayLike, "*shape"]) -> Float[Array, ""]:
    """Sum of squared errors `Σ (y − pred)²` over all elements."""
    pred, y = _pair(pred, y, "sse")
    r = y - pred
    return jnp.sum(r * r)


def half_sse(pred: Float[ArrayLike, "*shape"], y: Float[ArrayLike, "*shape"]) -> Float[Array, ""]:
    """`½ Σ (y − pred)²`: the loss whose gradient is the residual `pred − y`."""
    pred, y = _pair(pred, y, "half_sse")
    r = y - pred
    return 0.5 * jnp.sum(r * r)


def mse(pred: Float[ArrayLike, "*shape"], y: Float[ArrayLike, "*shape"]) -> Float[Array, ""]:
    """Mean squared error `Σ (y − pred)² / N`, `N` the number of elements."""
    pred, y = _pair(pred, y, "mse")
    r = y - pred
    return jnp.sum(r * r) / r.size


def sse_gradient(pred: Float[ArrayLike, "*shape"], y: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
    """`d sse / d pred = 2 (pred − y)`, shaped like `pred`."""
    pred, y = _pair(pred, y, "sse_gradient")
    return 2 * (pred - y)


def half_sse_gradient(pred: Float[ArrayLike, "*shape"], y: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
    """`d half_sse / d pred = pred − y`."""
    pred, y = _pair(pred, y, "half_sse_gradient")
    return pred - y


def mse_gradient(pred: Float[ArrayLike, "*shape"], y: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
    """`d mse / d pred = 2 (pred − y) / N`."""
    pred, y = _pair(pred, y, "mse_gradient")
    return 2 * (pred - y) / pred.size


def _lam(lam: Any, where: str) -> Any:
    """A non-negative finite real scalar; a traced `lam` (under jit/grad) is checked for shape and dtype only."""
    if isinstance(lam, (bool, str, bytes, complex)) or lam is None:
        raise TypeError(f"{where}: lam must be a real number >= 0; got {lam!r} ({type(lam).__name__})")
    if jnp.ndim(lam) != 0:
        raise ValueError(f"{where}: lam must be a scalar; got shape {jnp.shape(lam)}")
    dtype = jnp.result_type(lam)
    if not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)):
        raise TypeError(f"{where}: lam must be a real number >= 0; got dtype {dtype}")
    if is_concrete(lam):
        v = float(lam)
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError(f"{where}: lam must be a finite number >= 0; got {v}")
        if v < 0:
            raise ValueError(f"{where}: lam must be >= 0 (a penalty, not a reward); got {v}")
    return lam


def l2_penalty(params: Any) -> Float[Array, ""]:
    """`||θ||²`: the sum of squares of every leaf of the pytree `params`."""
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves:
        raise ValueError("l2_penalty: params has no arrays to penalise")
    reject_complex(params, "l2_penalty", "params")
    return sum(jnp.sum(jnp.square(leaf)) for leaf in leaves)


def ridge_sse(
    pred: Float[ArrayLike, "*shape"], y: Float[ArrayLike, "*shape"], params: Any, lam: Real[ArrayLike, ""]
) -> Float[Array, ""]:
    """`Σ (y − pred)² + λ ||θ||²`."""
    return sse(pred, y) + _lam(lam, "ridge_sse") * l2_penalty(params)


def ridge_half_sse(
    pred: Float[ArrayLike, "*shape"], y: Float[ArrayLike, "*shape"], params: Any, lam: Real[ArrayLike, ""]
) -> Float[Array, ""]:
    """`½ Σ (y − pred)² + ½ λ ||θ||²` (same minimiser as `ridge_sse`)."""
    return half_sse(pred, y) + 0.5 * _lam(lam, "ridge_half_sse") * l2_penalty(params)


def ridge_mse(
    pred: Float[ArrayLike, "*shape"], y: Float[ArrayLike, "*shape"], params: Any, lam: Real[ArrayLike, ""]
) -> Float[Array, ""]:
    """`Σ (y − pred)² / N + λ ||θ||²`."""
    return mse(pred, y) + _lam(lam, "ridge_mse") * l2_penalty(params)


def _scaled(params: Any, c: Any) -> Any:
    return jax.tree_util.tree_map(lambda leaf: c * leaf, params)


def ridge_sse_gradient(
    pred: Float[ArrayLike, "*shape"], y: Float[ArrayLike, "*shape"], params: Any, lam: Real[ArrayLike, ""]
) -> RidgeGradient:
    """`(2 (pred − y), 2λθ)`."""
    return RidgeGradient(sse_gradient(pred, y), _scaled(params, 2 * _lam(lam, "ridge_sse_gradient")))


def ridge_half_sse_gradient(
    pred: Float[ArrayLike, "*shape"], y: Float[ArrayLike, "*shape"], params: Any, lam: Real[ArrayLike, ""]
) -> RidgeGradient:
    """`(pred − y, λθ)`."""
    return RidgeGradient(half_sse_gradient(pred, y), _scaled(params, _lam(lam, "ridge_half_sse_gradient")))


def ridge_mse_gradient(
    pred: Float[ArrayLike, "*shape"], y: Float[ArrayLike, "*shape"], params: Any, lam: Real[ArrayLike, ""]
) -> RidgeGradient:
    """`(2 (pred − y) / N, 2λθ)`."""
    return RidgeGradient(mse_gradient(pred, y), _scaled(params, 2 * _lam(lam, "ridge_mse_gradient")))
