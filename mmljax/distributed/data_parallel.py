"""Data-parallel losses: per-device partial sums combined with one `psum`.

`sharded_loss(apply, data)` returns an ordinary function of the parameters. Inside it, every
device evaluates the model on its own rows and sums its squared errors; `lax.psum` adds the `D`
partial sums (one number). Because it is built from `jax.shard_map`, JAX differentiates through
it: `mj.gradient(L)`, `jax.value_and_grad(L)` and `mj.hvp(L, params, v)` run each device's share
of the backward (and forward-over-reverse) pass on its rows, and the transpose of the parameter
broadcast is a `psum` of the `P` partial gradient entries — the only communication per gradient.
Parameters are replicated; nothing of size `n` moves.

Padding rows (when `n` does not divide evenly) have their prediction replaced by their target
(`jnp.where(mask, pred, y)`), so they add exactly zero to the sum and to every derivative.

Works for every model family — `models.linear`, `models.basis` (fixed and learned bases),
`models.mlp` — and for any `apply(params, x)`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import PartitionSpec
from jaxtyping import Array, Float

from .. import losses as _losses
from .._validate import require_callable
from ._compat import shard_map
from .mesh import ShardedData, data_axis

__all__ = ["sharded_loss", "sharded_hand_gradient", "LOSSES"]

LOSSES = ("sse", "half_sse", "mse")


def _resolve_loss(loss: Any, where: str) -> tuple[Callable, bool]:
    """`(sum_loss, is_mean)`: the per-device loss, and whether the total is divided by the element count."""
    named = {"sse": (_losses.sse, False), "half_sse": (_losses.half_sse, False), "mse": (_losses.sse, True)}
    if isinstance(loss, str):
        if loss not in named:
            raise ValueError(
                f"{where}: loss must be one of {LOSSES} or a callable loss(pred, y) that sums over "
                f"examples; got {loss!r}"
            )
        return named[loss]
    require_callable(loss, where, "loss")
    if loss is _losses.mse:  # a mean: the per-device means cannot simply be added
        return named["mse"]
    return loss, False


def _check_data(data: Any, where: str) -> None:
    if not isinstance(data, ShardedData):
        raise TypeError(
            f"{where}: data must be a ShardedData from mmljax.distributed.shard_data(x, y, mesh); "
            f"got {type(data).__name__}"
        )


def _mask_like(mask: Array, a: Array) -> Array:
    return mask.reshape(mask.shape + (1,) * (a.ndim - 1))


def sharded_loss(
    apply: Callable[[Any, Array], Array],
    data: ShardedData,
    loss: str | Callable[[Array, Array], Array] = "half_sse",
    *,
    penalty: Callable[[Any], Array] | None = None,
) -> Callable[[Any], Float[Array, ""]]:
    """The loss of `apply` on row-sharded data, as one function of the parameters.

    **Arguments:**

    - `apply`: the model, `apply(params, x_rows) -> predictions` shaped like the targets' rows
      (e.g. `mj.models.mlp.apply`).
    - `data`: a `ShardedData` from `shard_data(x, y, mesh)`.
    - `loss`: "half_sse" (default, `½ Σ (y − f)²`, the models' hand-gradient loss), "sse", "mse"
      (`Σ (y − f)² / N` with `N` the number of target elements), or a callable `loss(pred, y)`
      that **sums** over examples (e.g. `mj.losses.sse`; `mj.losses.mse` is recognised as a mean).
    - `penalty`: optional `penalty(params) -> scalar`, added once (not per device), e.g.
      `lambda p: lam * mj.losses.l2_penalty(p.theta)`.

    **Returns:** `L(params) -> scalar`, equal to the single-device loss up to the order of the
    summation (≤ 1e-12 relative in float64). Differentiate it with `mj.gradient`,
    `jax.value_and_grad`, `mj.hvp`, `jax.jit` it, or pass it to `minimize` / `newton`.
    """
    where = "sharded_loss"
    require_callable(apply, where, "apply")
    _check_data(data, where)
    if penalty is not None:
        require_callable(penalty, where, "penalty")
    sum_loss, is_mean = _resolve_loss(loss, where)
    ax = data_axis(data.mesh, where)
    rows = PartitionSpec(ax)
    count = data.n * math.prod(data.y.shape[1:])

    def local(params, x, y, mask):
        pred = apply(params, x)
        if jnp.shape(pred) != y.shape:
            raise ValueError(
                f"{where}: apply(params, x) returned shape {jnp.shape(pred)} for {x.shape[0]} rows but "
                f"the targets' rows have shape {y.shape}; they must match"
            )
        pred = jnp.where(_mask_like(mask, y), pred, y)  # padding rows: residual exactly 0
        return lax.psum(sum_loss(pred, y), ax)

    # jit: one compiled program per call (an eager shard_map would dispatch op by op on every device)
    total = jax.jit(shard_map(local, data.mesh, (PartitionSpec(), rows, rows, rows), PartitionSpec()))

    def L(params):
        value = total(params, data.x, data.y, data.mask)
        if is_mean:
            value = value / count
        if penalty is not None:
            value = value + penalty(params)
        return value

    return L


def sharded_hand_gradient(
    hand_gradient: Callable[[Any, Array, Array], Any],
    apply: Callable[[Any, Array], Array],
    data: ShardedData,
) -> Callable[[Any], Any]:
    """A model's hand-derived gradient of `½ Σ ||y_n − f(x_n)||²`, evaluated per device and `psum`-ed.

    **Arguments:** `hand_gradient(params, x, y)` and `apply(params, x)` of one model family
    (e.g. `mj.models.linear.hand_gradient`, `mj.models.linear.apply`); `data` from `shard_data`.

    **Returns:** `G(params)` shaped like `params`: the sum of every device's hand gradient on its
    rows. Padding rows get the target `f(x)` (their residual is zero), so they add nothing.
    """
    where = "sharded_hand_gradient"
    require_callable(hand_gradient, where, "hand_gradient")
    require_callable(apply, where, "apply")
    _check_data(data, where)
    ax = data_axis(data.mesh, where)
    rows = PartitionSpec(ax)

    def local(params, x, y, mask):
        y_eff = jnp.where(_mask_like(mask, y), y, apply(params, x).reshape(y.shape))
        return jax.tree_util.tree_map(lambda g: lax.psum(g, ax), hand_gradient(params, x, y_eff))

    total = jax.jit(shard_map(local, data.mesh, (PartitionSpec(), rows, rows, rows), PartitionSpec()))
    return lambda params: total(params, data.x, data.y, data.mask)
