"""Shape checks shared by the model families: inputs, targets, and parameter pytrees.

Shapes are static under `jax.jit` and `jax.vmap`, so every check here also runs inside a
transformation and raises before JAX would fail deep inside with an unhelpful message.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np


def as_array(a: Any, where: str, what: str) -> jnp.ndarray:
    """`jnp.asarray(a)`, or a TypeError naming the argument when `a` is not numeric (None, strings)."""
    if a is None or isinstance(a, (str, bytes)):
        raise TypeError(f"{where}: {what} must be a floating array; got {a!r} ({type(a).__name__})")
    try:
        return jnp.asarray(a)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{where}: {what} must be a floating array; got {type(a).__name__} ({e})") from None


def shape_of(a: Any) -> tuple[int, ...]:
    return tuple(jnp.shape(a))


def require_floating(a: Any, where: str, what: str) -> None:
    dtype = jnp.result_type(a)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(
            f"{where}: {what} must be a floating array (float32 or float64); got dtype {dtype} — "
            f"pass {what}.astype(float)"
        )


def inputs_2d(x: Any, d: int, where: str, source: str) -> jnp.ndarray:
    """`x` as an `(n, d)` array; `source` says where `d` comes from (e.g. "theta has shape (3,)")."""
    x = as_array(x, where, "x")
    if x.ndim != 2:
        hint = (
            "reshape with x[:, None]"
            if (x.ndim == 1 and d == 1)
            else ("a single example? pass x[None, :]" if x.shape == (d,) else f"pass an array of shape (n, {d})")
        )
        raise ValueError(f"{where}: x must have shape (n, d) = (n, {d}) ({source}); got shape {x.shape} — {hint}")
    if x.shape[1] != d:
        raise ValueError(
            f"{where}: x has shape {x.shape} but the model expects {d} input feature(s), i.e. "
            f"shape (n, {d}) ({source}) — params from another model, or the wrong data?"
        )
    require_floating(x, where, "x")
    return x


def inputs_1d(x: Any, where: str, basis: str) -> jnp.ndarray:
    """Scalar inputs: `(n,)` (or `(n, 1)`, squeezed to `(n,)`)."""
    x = as_array(x, where, "x")
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        raise ValueError(
            f"{where}: the {basis} basis takes scalar inputs, x of shape (n,) (or (n, 1)); got shape "
            f"{x.shape} — for several predictors use models.linear or an RBF basis with (m, d) centres"
        )
    require_floating(x, where, "x")
    return x


def targets(y: Any, expected: tuple[int, ...], where: str) -> jnp.ndarray:
    """`y` must have exactly the shape of the predictions (no broadcasting)."""
    y = as_array(y, where, "y")
    if y.shape != tuple(expected):
        hint = ""
        if len(expected) == 1 and y.shape == (expected[0], 1):
            hint = " — the model has one output: pass y[:, 0] (or y.ravel())"
        elif len(expected) == 2 and y.shape == (expected[0],) and expected[1] == 1:
            hint = " — pass y[:, None]"
        raise ValueError(f"{where}: y must have the shape of the predictions, {tuple(expected)}; got {y.shape}{hint}")
    require_floating(y, where, "y")
    return y


def float_dtype(dtype: Any, where: str) -> Any:
    """`dtype` (default: JAX's default float) after checking it is a real floating dtype."""
    if dtype is None:
        return jnp.result_type(float)
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{where}: dtype must be a floating dtype such as jnp.float64; got {dtype!r}") from None
    if not np.issubdtype(dt, np.floating):
        raise TypeError(f"{where}: dtype must be a real floating dtype (float32 or float64); got {dt.name}")
    return dt


def params_type(params: Any, cls: type, where: str, init: str) -> None:
    if not isinstance(params, cls):
        raise TypeError(
            f"{where}: params must be a {cls.__name__} (from {init}); got {type(params).__name__} — "
            "each model family has its own parameter structure"
        )
