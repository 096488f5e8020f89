"""The one place that knows where this JAX version keeps `shard_map` and the scoped x64 switch.

`jax.shard_map` (jax >= 0.7, also 0.10 and 0.11) is preferred; older releases only have
`jax.experimental.shard_map.shard_map`, whose replication check is called `check_rep`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from ..linalg.precision import float64_scope as float64_scope  # noqa: F401  (re-exported for the package)


def shard_map(f: Callable, mesh: Any, in_specs: Any, out_specs: Any, *, check: bool = True) -> Callable:
    """`jax.shard_map(f, mesh=..., in_specs=..., out_specs=..., check_vma=check)` on any supported JAX.

    `check=False` is used by the least-squares kernels, which are never differentiated and return
    values that are replicated by construction (every device runs the same deterministic reduction
    on the same gathered data), which the static check cannot see through `all_gather`.
    """
    if hasattr(jax, "shard_map"):
        return jax.shard_map(f, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=check)
    from jax.experimental.shard_map import shard_map as legacy  # pragma: no cover (jax < 0.7)

    return legacy(f, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_rep=check)
