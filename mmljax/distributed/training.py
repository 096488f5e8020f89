"""Data-parallel training helpers: what `minimize(..., mesh=mesh)` uses to split its batches over a mesh.

The solver (`mmljax.solvers.minimize`) owns the loop; this module only places arrays and constrains
batches (it never imports the solvers):

- `place_rows(args, mesh)`: the data with a `NamedSharding` over the mesh's first axis (rows split
  over the devices), or replicated (with a warning) when the rows do not split evenly;
- `place_params(params, mesh)`: parameters replicated on every device;
- `shard_batches(mesh)`: a function that constrains every array of a mini-batch to be split by rows
  (`lax.with_sharding_constraint`), so XLA's SPMD partitioner gives every device its share of the
  batch and inserts the collectives itself: the gradient is an all-reduce of `P` numbers per step,
  and gathering the step's examples (a global random subset of row-sharded data) is an all-reduce of
  the batch rows. Any loss works — sums and means alike — because the partitioner, not the loss,
  decides how partial results combine; the result equals the single-device run for the same key to
  float64 rounding. `shard_batches(mesh, loss)` wraps a loss `loss(params, batch)` the same way.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from .mesh import data_axis, data_devices, replicated, row_sharding

__all__ = ["place_rows", "place_params", "shard_batches"]


@functools.lru_cache(maxsize=32)
def _constraint(mesh: Mesh) -> Callable[[Any], Any]:
    rows = row_sharding(mesh)

    def constrain(batch):
        return jax.tree_util.tree_map(lambda a: jax.lax.with_sharding_constraint(a, rows), batch)

    return constrain


def shard_batches(mesh: Mesh, loss: Callable[[Any, Any], Any] | None = None) -> Callable:
    """The batch constraint of `mesh` (cached per mesh, so a compiled loop is reused across calls), or,
    with `loss`, `loss(params, batch)` with every array of `batch` constrained to be split by rows.

    The loss may also come first (`shard_batches(loss, mesh)`), the older order."""
    if not isinstance(mesh, Mesh) and isinstance(loss, Mesh):
        mesh, loss = loss, mesh
    data_axis(mesh, "shard_batches")
    constrain = _constraint(mesh)
    if loss is None:
        return constrain

    def batch_sharded_loss(params, batch):
        return loss(params, constrain(batch))

    return batch_sharded_loss


def place_rows(data: Any, mesh: Mesh, where: str = "minimize") -> Any:
    """`data` with its rows split over the mesh's first axis (replicated, with a warning, when they do not split
    evenly)."""
    data_axis(mesh, where)
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
                UserWarning,
                stacklevel=4,
            )
    return jax.tree_util.tree_map(lambda a: jax.device_put(a, sharding), data)


def place_params(params: Any, mesh: Mesh, where: str = "minimize") -> Any:
    """`params` replicated on every device of `mesh`."""
    data_axis(mesh, where)
    return jax.device_put(params, replicated(mesh))


_place_data = place_rows  # the former private name (used by the multi-device test worker)
