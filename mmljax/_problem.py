"""A loss, its parameters and its data: checked once, flattened in `ravel_vec` order.

Shared by the iterative solvers, the second-order analysis and `check_minimiser`. The loss is
`loss(params)` or, with data, `loss(params, args)` (optimistix's convention): the data go into the
compiled program as traced arguments, so the same loss with new data of the same shapes reuses it.

Parameters may be any pytree: arrays, dicts, NamedTuples, equinox modules. Array leaves (and
Python floats) are the parameters; every other leaf (activation functions, sizes, names) is static,
as with `eqx.partition(params, eqx.is_inexact_array)`. The parameters are flattened leaf by leaf in
tree order, each leaf column-major (`mmljax.ravel_vec`), the order of `hessian_matrix`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._validate import reject_complex, require_callable, require_float_tree
from .layout import ravel_vec


def is_param(leaf: Any) -> bool:
    """A leaf that is a parameter: an array (jax or numpy) or a Python float."""
    return eqx.is_array(leaf) or isinstance(leaf, (float, complex, np.generic))


def is_traced(*trees: Any) -> bool:
    """True when any leaf is a tracer (the call runs inside `jax.jit`, `jax.vmap`, `jax.grad`, ...)."""
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(trees))


def _strong(leaf: Any) -> Any:
    if isinstance(leaf, (float, complex, np.generic)):
        return jnp.asarray(leaf, dtype=jnp.result_type(leaf))
    if isinstance(leaf, jax.Array) and not isinstance(leaf, jax.core.Tracer) and getattr(leaf, "weak_type", False):
        return jnp.asarray(leaf, dtype=leaf.dtype)  # a weakly typed array would compile a program of its own
    return leaf


def as_param_tree(params: Any) -> Any:
    """Python floats and numpy scalars as arrays (so they are traced, not baked into a program), weak types
    made strong (so `jnp.full(3, 1.0)` and `jnp.ones(3)` share a compiled program)."""
    return jax.tree_util.tree_map(_strong, params)


def check_params(params: Any, where: str, what: str) -> Any:
    """Real floating parameter leaves, finite where concrete; returns the tree with floats as arrays."""
    if isinstance(params, (str, bytes)) or params is None:
        raise TypeError(f"{where}: {what} must be an array or a pytree of floating arrays; got {params!r}")
    params = as_param_tree(params)
    dyn, _ = eqx.partition(params, is_param)
    if not jax.tree_util.tree_leaves(dyn):
        raise ValueError(
            f"{where}: {what} has no floating arrays (nothing to optimise or differentiate); got "
            f"{type(params).__name__}"
        )
    reject_complex(dyn, where, what)
    require_float_tree(dyn, where, what)
    sizes = [int(np.size(leaf)) for leaf in jax.tree_util.tree_leaves(dyn)]
    if sum(sizes) == 0:
        raise ValueError(f"{where}: {what} has 0 elements (every array leaf is empty); nothing to test")
    return params


def check_args(args: Any, where: str) -> Any:
    """`args` must be a pytree whose array leaves are real (complex data are refused). Python floats become
    arrays (traced, so a sweep over a float such as a penalty reuses the program); ints and other leaves stay
    static (they may be sizes)."""
    if args is None:
        return None
    reject_complex(args, where, "args")
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype=jnp.result_type(a)) if type(a) is float else a, args)


def check_loss_call(loss: Any, args: Any, where: str, what: str = "loss") -> None:
    """`loss` must be callable as `loss(params)` (args None) or `loss(params, args)`: a clear error otherwise."""
    require_callable(loss, where, what)
    try:
        sig = inspect.signature(loss)
    except (TypeError, ValueError):  # builtins and some C callables: nothing to check
        return
    try:
        sig.bind(None) if args is None else sig.bind(None, None)
    except TypeError:
        name = getattr(loss, "__name__", type(loss).__name__)
        if args is None:
            hint = (
                f"it is called as {what}(params); for a {what}(params, args) pass the data with args=, or close "
                f"over them"
            )
        else:
            hint = f"with args= it is called as {what}(params, args); define {what}(params, args) or drop args="
        raise TypeError(f"{where}: {what} has the signature {name}{sig}, but {hint}") from None


class FlatProblem:
    """`loss` on one flat vector, built inside a trace: `x0`, `f(x, args)`, `unravel(x)` (a pytree).

    `unravel` restores each leaf's dtype and the static leaves of `params` (an equinox module's
    functions and sizes).
    """

    def __init__(self, loss: Callable, params: Any, args: Any, where: str):
        dyn, static = eqx.partition(params, is_param)
        leaves = jax.tree_util.tree_leaves(dyn)
        dtype = jnp.result_type(*[jnp.asarray(leaf).dtype for leaf in leaves])
        if not jnp.issubdtype(dtype, jnp.floating):
            dtype = jnp.result_type(float)
        flat, unravel_vec = ravel_vec(dyn)
        self.x0 = flat.astype(dtype)
        self.dtype = dtype
        self._dtypes = jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf).dtype, dyn)
        self._unravel_vec = unravel_vec
        self._static = static
        self._loss = loss
        self.has_args = args is not None
        out = jax.eval_shape(self.f, self.x0, args)
        if not hasattr(out, "shape") or out.shape != ():
            shape = getattr(out, "shape", type(out).__name__)
            raise ValueError(
                f"{where}: loss must return a scalar; got shape {shape} — reduce it with jnp.sum or jnp.mean"
            )
        if not jnp.issubdtype(out.dtype, jnp.floating):
            raise TypeError(f"{where}: loss must return a real floating scalar; got dtype {out.dtype}")

    def unravel(self, x: jax.Array) -> Any:
        dyn = self._unravel_vec(x)
        dyn = jax.tree_util.tree_map(lambda a, dt: a.astype(dt), dyn, self._dtypes)
        return eqx.combine(dyn, self._static)

    def f(self, x: jax.Array, args: Any = None) -> jax.Array:
        p = self.unravel(x)
        out = self._loss(p, args) if self.has_args else self._loss(p)
        return jnp.asarray(out).astype(self.dtype) if jnp.issubdtype(jnp.asarray(out).dtype, jnp.floating) else out


def param_size_dtype(params: Any) -> tuple[int, Any]:
    """`(P, dtype)` of the parameter leaves of a checked `params` (no tracing needed)."""
    dyn, _ = eqx.partition(params, is_param)
    leaves = jax.tree_util.tree_leaves(dyn)
    dtype = jnp.result_type(*[jnp.asarray(leaf).dtype for leaf in leaves])
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    return sum(int(np.size(leaf)) for leaf in leaves), np.dtype(dtype)


def check_key(key: Any, where: str, name: str = "key") -> jax.Array:
    """A `jax.random` key (new-style typed key or a legacy `uint32[2]` one); `None` gives `PRNGKey(0)`."""
    if key is None:
        return jax.random.PRNGKey(0)
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        raise TypeError(
            f"{where}: {name} must be a jax.random key; got the int {key!r} — pass "
            f"jax.random.PRNGKey({key}) (or jax.random.key({key}))"
        )
    dtype = getattr(key, "dtype", None)
    if dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key) and jnp.ndim(key) == 0:
        return key
    if dtype is not None and np.dtype(dtype) == np.uint32 and jnp.shape(key) == (2,):
        return key
    raise TypeError(
        f"{where}: {name} must be a jax.random key (jax.random.PRNGKey(seed) or jax.random.key(seed)); "
        f"got {type(key).__name__} with shape {jnp.shape(key)}"
    )
