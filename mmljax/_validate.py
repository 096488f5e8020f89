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
        raise TypeError(f"{where}: {what} must be a callable (a function of the input); got {type(f).__name__}")


def is_concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


def leaf_names(tree: Any, what: str = "x") -> list[str]:
    """Readable names of the leaves of `tree` in flattening order: `x` for a bare array, else
    `x['w']`, `x.layers[0].weight`, `x[1]` (key paths)."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [what + jax.tree_util.keystr(path) for path, _ in flat]


def _dtype_of(leaf: Any) -> np.dtype | None:
    """The dtype of an array-like leaf, or None when it is not numeric (strings, objects)."""
    dtype = getattr(leaf, "dtype", None)
    if dtype is None:
        try:
            dtype = np.asarray(leaf).dtype
        except Exception:
            return None
    try:
        dtype = np.dtype(dtype)
    except TypeError:  # extended dtypes (PRNG keys) are not numbers
        return None
    if not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
        return None
    return dtype


def require_float_tree(tree: Any, where: str, what: str = "x") -> None:
    """Every leaf must be a real floating array without NaN/Inf.

    Non-numeric leaves (strings, None-only trees, objects) and complex leaves are refused with a
    `TypeError`; integer leaves with a `TypeError` suggesting `astype(float)`; NaN/Inf with a
    `ValueError` giving their indices. Leaves are named by key path (`x['w']`).
    """
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves:
        raise ValueError(f"{where}: {what} is empty (no arrays to differentiate); got {tree!r}")
    names = leaf_names(tree, what) if not (len(leaves) == 1 and leaves[0] is tree) else [what]
    for name, leaf in zip(names, leaves):
        dtype = _dtype_of(leaf)
        if dtype is None:
            raise TypeError(f"{where}: {name} must be a floating-point array; got {leaf!r} ({type(leaf).__name__})")
        if np.issubdtype(dtype, np.complexfloating):
            raise TypeError(
                f"{where}: {name} is complex ({dtype.name}); mmljax works with real floating arrays "
                f"only (no conjugate convention) — split real and imaginary parts into separate parameters"
            )
        if not np.issubdtype(dtype, np.floating):
            raise TypeError(
                f"{where}: {name} has dtype {dtype.name}; derivatives need floating "
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
                f"{where}: {vname} must have the shape of {xname}: expected {jnp.shape(a)}, got {jnp.shape(b)}"
            )


def as_tangent(x: Any, v: Any) -> Any:
    """Cast `v` leaf-wise to the dtypes of `x` (jvp demands matching tangent dtypes)."""
    return jax.tree_util.tree_map(lambda a, b: jnp.asarray(b, dtype=jnp.result_type(a)), x, v)


# ---------------------------------------------------------------------------- options of the API
# Every public numeric option goes through one of these: the message names the function (`where`),
# the argument (`name`) and the value received.


def check_int(value: Any, where: str, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer option (not a bool, not a float) within `[minimum, maximum]`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{where}: {name} must be an integer; got {value!r} ({type(value).__name__})")
    v = int(value)
    if minimum is not None and v < minimum:
        raise ValueError(f"{where}: {name} must be >= {minimum}; got {v}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{where}: {name} must be <= {maximum}; got {v}")
    return v


def check_real(
    value: Any,
    where: str,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict: bool = False,
    allow_inf: bool = False,
) -> float:
    """A real (finite unless `allow_inf`) number option within `[minimum, maximum]`.

    `strict=True` makes the bounds exclusive (`> minimum`, `< maximum`). NaN is always refused;
    complex numbers, strings and bools are refused with a TypeError.
    """
    if isinstance(value, (bool, str, bytes)) or isinstance(value, complex) or np.iscomplexobj(value):
        raise TypeError(f"{where}: {name} must be a real number; got {value!r} ({type(value).__name__})")
    if np.ndim(value) != 0:
        raise TypeError(f"{where}: {name} must be a real number (a scalar); got an array of shape {np.shape(value)}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{where}: {name} must be a real number; got {value!r} ({type(value).__name__})") from None
    if v != v or (not allow_inf and v in (float("inf"), float("-inf"))):
        raise ValueError(f"{where}: {name} must be a finite number; got {v}")
    lo_ok = minimum is None or (v > minimum if strict else v >= minimum)
    hi_ok = maximum is None or (v < maximum if strict else v <= maximum)
    if not (lo_ok and hi_ok):
        rel = (">", "<") if strict else (">=", "<=")
        bounds = " and ".join(f"{op} {b:g}" for op, b in zip(rel, (minimum, maximum)) if b is not None)
        raise ValueError(f"{where}: {name} must be {bounds}; got {v:g}")
    return v


def check_choice(value: Any, where: str, name: str, choices: tuple) -> Any:
    """One of `choices` (compared with ==; a non-hashable value is refused cleanly)."""
    try:
        ok = value in choices
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"{where}: {name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_bool(value: Any, where: str, name: str) -> bool:
    """A Python or numpy bool (not an int that happens to be 0/1)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}: {name} must be True or False; got {value!r} ({type(value).__name__})")
    return bool(value)


def reject_complex(tree: Any, where: str, what: str = "x") -> None:
    """Refuse complex leaves: mmljax's derivatives and solvers are real-valued (no conjugate convention)."""
    leaves = jax.tree_util.tree_leaves(tree)
    names = leaf_names(tree, what) if not (len(leaves) == 1 and leaves[0] is tree) else [what]
    for name, leaf in zip(names, leaves):
        dtype = _dtype_of(leaf)
        if dtype is not None and np.issubdtype(dtype, np.complexfloating):
            raise TypeError(
                f"{where}: {name} is complex ({np.dtype(dtype).name}); mmljax works with real "
                f"floating arrays only — split real and imaginary parts into separate parameters"
            )
