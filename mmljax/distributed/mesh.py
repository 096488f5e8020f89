"""Meshes and row-sharded data: the only layout the distributed code uses.

A mesh is a plain `jax.sharding.Mesh`; its **first axis shards the data rows** (observations)
and every other axis, if any, holds replicas. Rows are split into equal blocks, one per position
along that axis (`NamedSharding(mesh, PartitionSpec(axis))`); parameters and small results are
replicated (`PartitionSpec()`). When the number of rows does not divide evenly, the last blocks
are padded: with zero rows for least squares (a zero row changes neither `ΦᵀΦ`, `Φᵀy` nor the
QR factor's `R`), and with copies of the first row plus a mask for losses (the padded rows'
predictions are replaced by their targets, so they add exactly zero to a sum of squares and to
its derivatives).

The same functions work on one device (a mesh of one), on several GPUs of one machine, on many
forced CPU devices (`XLA_FLAGS=--xla_force_host_platform_device_count=8`) and across hosts after
`jax.distributed.initialize()` (where `jax.devices()` lists every process's devices).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, ArrayLike, Bool

__all__ = [
    "make_mesh",
    "data_axis",
    "data_devices",
    "row_sharding",
    "replicated",
    "rows_per_device",
    "shard_rows",
    "to_host",
    "ShardedData",
    "shard_data",
]


def make_mesh(n_devices: int | None = None, *, axis_name: str = "data", devices: Sequence[Any] | None = None) -> Mesh:
    """A one-axis mesh over the first `n_devices` devices, for sharding data rows.

    **Arguments:** `n_devices` how many devices (default: all of `jax.devices()`, i.e. every
    process's devices after `jax.distributed.initialize()`); `axis_name` the axis name used by
    the collectives; `devices` an explicit device list instead.

    **Returns:** `jax.sharding.Mesh` of shape `(n_devices,)` with axis `axis_name`.
    """
    pool = list(jax.devices() if devices is None else devices)
    if n_devices is None:
        n_devices = len(pool)
    if isinstance(n_devices, bool) or not isinstance(n_devices, (int, np.integer)) or n_devices < 1:
        raise ValueError(f"make_mesh: n_devices must be a positive integer; got {n_devices!r}")
    if n_devices > len(pool):
        raise ValueError(
            f"make_mesh: asked for {n_devices} devices but only {len(pool)} are visible "
            f"({pool[0].platform if pool else 'none'}); for CPU devices start Python with "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={n_devices} (set before importing jax)"
        )
    if not isinstance(axis_name, str) or not axis_name:
        raise TypeError(f"make_mesh: axis_name must be a non-empty string; got {axis_name!r}")
    return Mesh(np.array(pool[:n_devices]), (axis_name,))


def data_axis(mesh: Any, where: str = "mmljax.distributed") -> str:
    """The name of the mesh axis that shards the rows (the first one); validates `mesh`."""
    if not isinstance(mesh, Mesh):
        raise TypeError(
            f"{where}: mesh must be a jax.sharding.Mesh (e.g. mmljax.distributed.make_mesh() or "
            f"jax.make_mesh((n,), ('data',))); got {type(mesh).__name__}"
        )
    if not mesh.axis_names:
        raise ValueError(f"{where}: the mesh has no axes; its first axis must shard the data rows")
    return mesh.axis_names[0]


def data_devices(mesh: Mesh) -> int:
    """How many row blocks the mesh makes (the size of its first axis)."""
    return int(mesh.shape[data_axis(mesh)])


def row_sharding(mesh: Mesh) -> NamedSharding:
    """`NamedSharding(mesh, PartitionSpec(first_axis))`: rows split, everything else whole."""
    return NamedSharding(mesh, PartitionSpec(data_axis(mesh)))


def replicated(mesh: Mesh) -> NamedSharding:
    """`NamedSharding(mesh, PartitionSpec())`: a full copy on every device."""
    data_axis(mesh)
    return NamedSharding(mesh, PartitionSpec())


def rows_per_device(n_rows: int, mesh: Mesh, min_rows: int = 1) -> int:
    """Rows in each block: `max(ceil(n_rows / D), min_rows)` for `D = data_devices(mesh)`."""
    D = data_devices(mesh)
    return max(-(-int(n_rows) // D), int(min_rows), 1)


def _is_row_sharded(a: Any, mesh: Mesh) -> bool:
    return (
        isinstance(a, jax.Array)
        and isinstance(a.sharding, NamedSharding)
        and a.sharding.mesh == mesh
        and tuple(a.sharding.spec)[:1] == (data_axis(mesh),)
        and all(s is None for s in tuple(a.sharding.spec)[1:])
    )


def _place(host: np.ndarray, sharding: NamedSharding) -> jax.Array:
    # make_array_from_callback also works with several processes: each fills its own shards.
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def shard_rows(
    a: ArrayLike, mesh: Mesh, *, min_rows_per_device: int = 1, pad: str = "zeros", dtype: Any = None
) -> Array:
    """Split the rows of `a` over the mesh's first axis, padding the last blocks if needed.

    **Arguments:** `a` of shape `(n, ...)`; `min_rows_per_device` at least this many rows per
    block (the tall-skinny QR needs `p`); `pad` "zeros" (zero rows) or "first" (copies of row 0,
    valid model inputs); `dtype` to convert to (default: `a`'s, as JAX would store it).

    **Returns:** a `jax.Array` of shape `(D * rows_per_device, ...)` with sharding
    `NamedSharding(mesh, PartitionSpec(axis))`; rows `n:` are the padding. An array that is
    already sharded this way and needs no padding is returned as it is.
    """
    data_axis(mesh, "shard_rows")
    if pad not in ("zeros", "first"):
        raise ValueError(f"shard_rows: pad must be 'zeros' or 'first'; got {pad!r}")
    if jnp.ndim(a) < 1:
        raise ValueError(f"shard_rows: a must have at least one axis (rows); got shape {jnp.shape(a)}")
    n = int(jnp.shape(a)[0])
    if n == 0:
        raise ValueError("shard_rows: a has no rows")
    per = rows_per_device(n, mesh, min_rows_per_device)
    total = per * data_devices(mesh)
    target = jnp.result_type(dtype if dtype is not None else a)  # as JAX would store it (x64 setting)
    if total == n and _is_row_sharded(a, mesh) and a.dtype == target:
        return a
    host = to_host(a).astype(target, copy=False)
    if total > n:
        if pad == "zeros":
            fill = np.zeros((total - n,) + host.shape[1:], host.dtype)
        else:
            fill = np.broadcast_to(host[:1], (total - n,) + host.shape[1:])
        host = np.concatenate([host, fill])
    return _place(np.ascontiguousarray(host), row_sharding(mesh))


def to_host(a: ArrayLike) -> np.ndarray:
    """A numpy copy of `a`, gathering the shards of a global array (from every process if needed)."""
    if isinstance(a, jax.Array) and not a.is_fully_addressable:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(a, tiled=True))
    return np.asarray(a)


class ShardedData(NamedTuple):
    """Observations split over a mesh for data-parallel losses.

    `x (N, ...)` and `y (N, ...)` row-sharded with `N = D * rows_per_device >= n`; `mask (N,)`
    True for the `n` real rows (padding rows copy row 0 and are masked out); `n` the number of
    real rows; `mesh` the mesh.
    """

    x: Array
    y: Array
    mask: Bool[Array, " N"]
    n: int
    mesh: Mesh


def shard_data(x: ArrayLike, y: ArrayLike, mesh: Mesh) -> ShardedData:
    """Place inputs `x (n, ...)` and targets `y (n, ...)` on the mesh, rows split over its first axis.

    **Returns:** a `ShardedData`; pass it to `sharded_loss`, `sharded_hand_gradient` or
    `minimize(..., mesh=)`. Dtypes are kept (as JAX stores them under the current x64 setting).
    """
    data_axis(mesh, "shard_data")
    if jnp.ndim(x) < 1 or jnp.ndim(y) < 1:
        raise ValueError(
            f"shard_data: x and y must have a leading axis of observations; got shapes "
            f"{jnp.shape(x)} and {jnp.shape(y)}"
        )
    n = int(jnp.shape(x)[0])
    if int(jnp.shape(y)[0]) != n:
        raise ValueError(f"shard_data: x has {n} rows (observations) but y has {jnp.shape(y)[0]}; they must match")
    xs = shard_rows(x, mesh, pad="first")
    ys = shard_rows(y, mesh, pad="first")
    mask = shard_rows(np.ones(n, bool), mesh, pad="zeros")
    return ShardedData(xs, ys, mask, n, mesh)
