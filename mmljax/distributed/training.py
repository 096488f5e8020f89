"""Data-parallel training: `minimize` with its batches split over a mesh, parameters replicated.

`minimize_sharded` runs `mmljax.solvers.minimize` unchanged — the same jit-compiled loop, the same
mini-batch of step `s` for a given seed, the same checkpoints — on data placed with a
`NamedSharding` over the mesh's first axis. The loss sees each mini-batch with the constraint
"rows split over the devices" (`lax.with_sharding_constraint`), so XLA's SPMD partitioner gives
every device its share of the batch and inserts the collectives itself: the gradient is an
all-reduce of `P` numbers per step, and gathering the step's examples (a global random subset of
row-sharded data) is an all-reduce of the batch rows, `B · (row size)` numbers. Any loss works —
sums and means alike — because the partitioner, not the loss, decides how partial results combine;
the result equals the single-device run for the same seed to float64 rounding.

Data whose number of rows does not divide evenly over the devices cannot be row-sharded
(`NamedSharding` needs equal blocks); they are then replicated on every device (with a warning),
and only the batches are split.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import Mesh

from .._validate import require_callable
from .mesh import data_axis, data_devices, replicated, row_sharding

__all__ = ["minimize_sharded", "shard_batches"]


@functools.lru_cache(maxsize=32)
def shard_batches(loss: Callable[[Any, Any], Any], mesh: Mesh) -> Callable[[Any, Any], Any]:
    """`loss(params, batch)` with every array of `batch` constrained to be split by rows over `mesh`.

    Cached per `(loss, mesh)`, so `minimize`'s compiled loop is reused across calls like the
    single-device one.
    """
    rows = row_sharding(mesh)

    def batch_sharded_loss(params, batch):
        return loss(params, jax.tree_util.tree_map(lambda a: jax.lax.with_sharding_constraint(a, rows), batch))

    return batch_sharded_loss


def _place_data(data: Any, mesh: Mesh, where: str) -> Any:
    leaves = jax.tree_util.tree_leaves(data)
    n = {int(np.shape(leaf)[0]) if np.ndim(leaf) else -1 for leaf in leaves}
    D = data_devices(mesh)
    if len(n) == 1 and (n_rows := n.pop()) > 0 and n_rows % D == 0:
        sharding = row_sharding(mesh)
    else:
        sharding = replicated(mesh)
        if len(n) <= 1:
            warnings.warn(
                f"{where}: the data's rows do not split evenly over the mesh's {D} devices, so every device holds a "
                f"copy of the data (only the batches are split); use a multiple of {D} rows to shard the data itself",
                UserWarning, stacklevel=4)
    return jax.tree_util.tree_map(lambda a: jax.device_put(a, sharding), data)


def minimize_sharded(
    loss: Callable[..., Any],
    params0: Any,
    optimizer: Any = None,
    *,
    mesh: Mesh,
    steps: int,
    batch_size: int | None = None,
    data: Any = None,
    **kwargs: Any,
):
    """`mmljax.solvers.minimize(..., mesh=mesh)`: the same run with batches split over `mesh`.

    **Arguments:** those of `minimize` (`loss(params, batch)` with `data=`, or `loss(params)`),
    plus `mesh`, whose first axis splits the examples. Without `data` the loss is called as it
    is (use `sharded_loss` to build a full-batch loss whose sums run on the devices).

    **Returns:** `minimize`'s `OptimizeResult`; parameters replicated on the mesh, and equal to the
    single-device run with the same seed to float64 rounding.
    """
    from ..solvers.optax_loop import minimize

    where = "minimize"
    data_axis(mesh, where)
    require_callable(loss, where, "loss")
    params = jax.device_put(params0, replicated(mesh))
    if data is not None:
        data = _place_data(data, mesh, where)
        try:
            loss = shard_batches(loss, mesh)
        except TypeError:  # an unhashable loss (an equinox module holding arrays): no cache
            loss = shard_batches.__wrapped__(loss, mesh)
    return minimize(loss, params, optimizer, steps=steps, batch_size=batch_size, data=data, **kwargs)
