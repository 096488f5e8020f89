"""The row-sharded backend of the least-squares solvers: `least_squares(..., mesh=mesh)` runs on it.

The solvers' program (`mmljax.solvers.least_squares`) is written against `mmljax.linalg.qr.LinearOps`;
`sharded_ops(mesh)` gives it one whose every `O(n)` quantity stays on the devices that own the rows,
so the fit — the same well-conditioned basis, the same power-of-two equilibration, the same Björck
refinement in double-double with the same stopping rules, the same statistics — is the same traced
program with the rows split over the mesh:

| operation | per device | communicated |
|---|---|---|
| factor `B = Q R` | local Householder QR | TSQR tree: `p²` per level |
| `Bᵀf`, `Qᵀf` (working precision) | its rows' products | one `psum` of `p·k` |
| residuals `f − r − B z`, `Bᵀ r` (double-double) | compensated row products | `all_gather`: `2·p·k` partial sums |
| column maxima (stopping rule) | its rows | a max-reduction of `k` |
| sums of squares (RSS, TSS, variances) in double-double | its rows | `all_gather` of `2·k` partial sums |
| normal equations (`method="normal"/"cholesky"`) | `Bᵢᵀ Bᵢ` | one `psum` of `p²` |

Partial double-double sums are added in double-double on every device. So the refined solution agrees
with the single-device one to the last bits float64 can show
(≤ 1e-12 relative), and Filip's degree-10 polynomial keeps ≥ 12 correct digits on 8 devices.
This module never imports the solvers: it is a backend below them.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ..linalg import doubledouble as ext
from ..linalg.doubledouble import DD
from ..linalg.qr import LinearOps
from ._compat import shard_map
from .mesh import data_axis, data_devices
from .tsqr import tsqr_local

__all__ = ["sharded_ops"]


def _dd_allsum(x: DD, axis: str) -> DD:
    """Sum per-device double-double partial results across devices, in double-double (replicated)."""
    return ext.sum_(DD(lax.all_gather(x.hi, axis), lax.all_gather(x.lo, axis)), axis=0)


def sharded_ops(mesh: Mesh, where: str = "least_squares") -> LinearOps:
    """The `LinearOps` of a design whose rows are split over the first axis of `mesh` (validated).

    **Arguments:** `mesh` a `jax.sharding.Mesh` (e.g. `make_mesh()`); `where` names the caller in errors.

    **Returns:** a hashable `LinearOps` (cached per mesh) whose functions are `shard_map`s over the
    mesh's data axis; the solvers pad the design with zero rows to a multiple of the device count.
    """
    data_axis(mesh, where)
    return _sharded_ops(mesh)


@functools.lru_cache(maxsize=16)
def _sharded_ops(mesh: Mesh) -> LinearOps:
    ax = data_axis(mesh)
    S, R = PartitionSpec(ax), PartitionSpec()
    n_dev = data_devices(mesh)

    def smap(body, in_specs, out_specs):
        return shard_map(body, mesh, in_specs, out_specs, check=False)

    qr = smap(functools.partial(tsqr_local, axis=ax, n_devices=n_dev), (S,), (S, R))
    rmatmul = smap(lambda b, f: lax.psum((f.T @ b).T, ax), (S, S), R)

    def residual_local(bh, bl, f, r, z):
        return ext.tall_residual(bh, bl, z, ext.sub(f, r)), _dd_allsum(ext.tall_rmatmul(bh, bl, r), ax)

    residual_exact = smap(lambda bh, f, r, z: residual_local(bh, None, f, r, z), (S, S, S, R), (S, R))
    residual_dd = smap(residual_local, (S, S, S, S, R), (S, R))

    def residual(bh, bl, f, r, z):
        return residual_exact(bh, f, r, z) if bl is None else residual_dd(bh, bl, f, r, z)

    colmax = smap(lambda a: lax.pmax(jnp.max(jnp.abs(a), axis=0, initial=0.0), ax), (S,), R)
    gram = smap(lambda b: lax.psum(lax.dot_general(b, b, (((0,), (0,)), ((), ()))), ax), (S,), R)
    square_sum = smap(lambda x: _dd_allsum(ext.square_sum(x, axis=0), ax), (S,), R)
    sum_dd = smap(lambda x: _dd_allsum(ext.sum_(x, axis=0), ax), (S,), R)
    sum_rows = smap(lambda a: lax.psum(jnp.sum(a, axis=0), ax), (S,), R)
    whole = NamedSharding(mesh, R)

    def replicate(a):
        return lax.with_sharding_constraint(a, whole)

    return LinearOps(
        qr=qr,
        rmatmul=rmatmul,
        residual=residual,
        colmax=colmax,
        gram=gram,
        square_sum=square_sum,
        sum_dd=sum_dd,
        sum_rows=sum_rows,
        devices=n_dev,
        replicate=replicate,
    )
