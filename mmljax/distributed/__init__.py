"""The same fits, gradients and training sharded over many devices with JAX's own SPMD machinery.

A `jax.sharding.Mesh` whose first axis shards the data rows is all the distributed code needs;
communication is `lax.psum` / `lax.ppermute` / `lax.all_gather` inside `jax.shard_map`, nothing
home-made. The solvers take it as `mesh=`: `least_squares(Phi, y, mesh=mesh)`, `polyfit`,
`linear_regression`; this package holds the sharded implementations and the helpers:

- meshes and data: `make_mesh`, `shard_rows`, `shard_data`, `ShardedData`, `to_host`;
- linear algebra: `tsqr` (tall-skinny QR with a reduction tree of `R` factors),
  `normal_equations` (`ΦᵀΦ`, `Φᵀy` with one `psum`);
- the backend of the fits: `sharded_ops(mesh)` (what `least_squares(..., mesh=mesh)` runs on);
- training: what `minimize(..., mesh=mesh)` uses to split its batches over the devices with the
  parameters replicated: `place_rows`, `place_params`, `shard_batches`;
- data-parallel losses: `sharded_loss` (differentiate it with `mj.gradient`, `mj.hvp`,
  `jax.value_and_grad`: the gradient is a `psum` of per-device partial gradients),
  `sharded_hand_gradient`;
- `communication_bytes` (the strong-scaling benchmark is `mmljax.bench.scaling.scaling_benchmark`).
"""

from .benchmark import communication_bytes as communication_bytes
from .data_parallel import LOSSES as LOSSES
from .data_parallel import sharded_hand_gradient as sharded_hand_gradient
from .data_parallel import sharded_loss as sharded_loss
from .least_squares import sharded_ops as sharded_ops
from .mesh import ShardedData as ShardedData
from .mesh import data_axis as data_axis
from .mesh import data_devices as data_devices
from .mesh import make_mesh as make_mesh
from .mesh import replicated as replicated
from .mesh import row_sharding as row_sharding
from .mesh import shard_data as shard_data
from .mesh import shard_rows as shard_rows
from .mesh import to_host as to_host
from .training import place_params as place_params
from .training import place_rows as place_rows
from .training import shard_batches as shard_batches
from .tsqr import normal_equations as normal_equations
from .tsqr import tsqr as tsqr
from .tsqr import tsqr_levels as tsqr_levels
