"""Input validation shared by the public API: clear errors instead of deep JAX tracebacks.

Checks on values (NaN/Inf) run only on concrete arrays; under `jax.jit` the inputs are
tracers and only their shapes and dtypes are checked.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def require_callable(f: Any, where: str, what: str = "f") -> None:
    if not callable(f):
        raise TypeError(
            f"{where}: {what} must be a callable (a function of the input); "
            f"got {type(f).__name__}"
        )


def is_concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


def require_float_tree(tree: Any, where: str, what: str = "x") -> None:
    """Every leaf must be a floating (or complex) array without NaN/Inf."""
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves:
        raise ValueError(f"{where}: {what} is empty (no arrays to differentiate)")
    for i, leaf in enumerate(leaves):
        name = what if len(leaves) == 1 else f"{what} (leaf {i})"
        dtype = jnp.result_type(leaf) if not hasattr(leaf, "dtype") else leaf.dtype
        if not jnp.issubdtype(dtype, jnp.inexact):
            raise TypeError(
                f"{where}: {name} has dtype {np.dtype(dtype).name}; derivatives need floating "
                f"inputs — pass {what}.astype(float) (or jnp.asarray({what}, jnp.float64))"
            )
        if is_concrete(leaf):
            arr = np.asarray(leaf)
            bad = ~np.isfinite(arr)
            if bad.any():
                where_bad = np.argwhere(bad)[:5].tolist() if arr.ndim else []
                raise ValueError(
                    f"{where}: {name} contains {int(bad.sum())} NaN/Inf value(s)"
                    + (f" at indices {where_bad}" if where_bad else "")
                    + "; derivatives there are undefined — clean the input first"
                )


def require_same_structure(x: Any, v: Any, where: str, xname: str = "x", vname: str = "v") -> None:
    """`v` must have the pytree structure and leaf shapes of `x` (a tangent of `x`)."""
    sx, sv = jax.tree_util.tree_structure(x), jax.tree_util.tree_structure(v)
    if sx != sv:
        raise ValueError(f"{where}: {vname} must have the same structure as {xname}; got {sv}, expected {sx}")
    for a, b in zip(jax.tree_util.tree_leaves(x), jax.tree_util.tree_leaves(v)):
        if jnp.shape(a) != jnp.shape(b):
            raise ValueError(
                f"{where}: {vname} must have the shape of {xname}: expected {jnp.shape(a)}, "
                f"got {jnp.shape(b)}"
            )


def as_tangent(x: Any, v: Any) -> Any:
    """Cast `v` leaf-wise to the dtypes of `x` (jvp demands matching tangent dtypes)."""
    return jax.tree_util.tree_map(lambda a, b: jnp.asarray(b, dtype=jnp.result_type(a)), x, v)
