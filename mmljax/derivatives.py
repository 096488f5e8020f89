"""One derivative API over `jax.grad/jacfwd/jacrev/jvp/vjp`, in numerator layout.

Conventions (GUIDE.md §3):

- the Jacobian of `f: R^in_shape -> R^out_shape` has shape `out_shape + in_shape`
  (`J[m, n] = df_m/dx_n` for vectors);
- the gradient of a scalar function has the shape (or pytree structure) of its argument;
- `jacobian_matrix` is the 2-D `(out.size, in.size)` matrix with rows and columns in column-major
  `vec` order, so that `jacobian_matrix(lambda X: A @ X @ B)(X) == kron(B.T, A)`;
- Hessians have shape `in_shape + in_shape`; `hessian_matrix` is `(n, n)` in `vec` order, pytrees
  flattened by `ravel_vec` (leaves in tree order, each column-major);
- Hessian-vector products are forward-over-reverse and never build the Hessian.

Every function here is thin over JAX, so all of them work under `jax.jit` and `jax.vmap`, in
float32 and float64, on CPU and GPU.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Literal

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._validate import as_tangent, require_callable, require_float_tree, require_same_structure
from .layout import ravel_vec, vec

__all__ = [
    "derivative",
    "gradient",
    "jacobian",
    "jacobian_mode",
    "jacobian_matrix",
    "hessian",
    "hessian_matrix",
    "hvp",
    "directional_derivative",
    "second_directional_derivative",
]

Mode = Literal["auto", "fwd", "rev"]
_MODES = ("auto", "fwd", "rev")


def _tree_size(tree: Any) -> int:
    return sum(math.prod(jnp.shape(leaf)) for leaf in jax.tree_util.tree_leaves(tree))


def _check_mode(mode: str, where: str) -> None:
    if mode not in _MODES:
        raise ValueError(f"{where}: mode must be one of {_MODES}; got {mode!r}")


def derivative(f: Callable[..., Array]) -> Callable[..., Array]:
    """`df/dx` of a scalar -> scalar function.

    **Arguments:** `f` maps a scalar (shape `()`) to a scalar.

    **Returns:** a function of `x` (shape `()`) giving `f'(x)` (shape `()`). Use `jax.vmap` to
    evaluate it on many points.
    """
    require_callable(f, "derivative")
    g = jax.grad(f)

    def df(x, *args, **kwargs):
        require_float_tree(x, "derivative")
        if jnp.ndim(x) != 0:
            raise ValueError(
                f"derivative: x must be a scalar (shape ()); got shape {jnp.shape(x)} — use "
                "gradient() for vector inputs or jax.vmap(derivative(f)) to evaluate pointwise"
            )
        return g(x, *args, **kwargs)

    return df


def gradient(f: Callable[..., Array], argnums: int | tuple[int, ...] = 0) -> Callable[..., Any]:
    """Gradient of a scalar function, with the shape (pytree structure) of the argument.

    **Arguments:** `f` returns a scalar; `argnums` picks the argument(s) to differentiate.

    **Returns:** a function with `f`'s signature giving `df/dx` shaped like `x` (the row vector
    `df/dx` of the lectures, stored like `x`).
    """
    require_callable(f, "gradient")
    g = jax.grad(f, argnums=argnums)

    def grad_f(*args, **kwargs):
        _check_args(args, argnums, "gradient")
        out = jax.eval_shape(f, *args, **kwargs)
        if jnp.shape(out) != ():
            raise ValueError(
                f"gradient: f must return a scalar; it returned shape {jnp.shape(out)} — use "
                "jacobian() for vector-valued functions"
            )
        return g(*args, **kwargs)

    return grad_f


def _check_args(args: tuple, argnums: int | tuple[int, ...], where: str) -> None:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not args:
        raise TypeError(f"{where}: call the derivative function with the point x to evaluate at")
    for i in nums:
        if i >= len(args):
            raise ValueError(f"{where}: argnums={argnums} but only {len(args)} argument(s) given")
        require_float_tree(args[i], where, "x" if i == 0 else f"argument {i}")


def jacobian_mode(f: Callable[..., Any], *args, argnums: int = 0, **kwargs) -> str:
    """The mode `jacobian(f, mode="auto")` uses at these arguments: "fwd" or "rev".

    Forward mode costs one pass per input element, reverse one per output element, so "auto"
    picks forward when `x.size <= f(x).size` and reverse otherwise. Shapes only: nothing runs.
    """
    out = jax.eval_shape(f, *args, **kwargs)
    return "fwd" if _tree_size(args[argnums]) <= _tree_size(out) else "rev"


def jacobian(
    f: Callable[..., Any], mode: Mode = "auto", argnums: int = 0
) -> Callable[..., Any]:
    """Jacobian in numerator layout: shape `out_shape + in_shape`.

    **Arguments:** `f` maps `x` of shape `in_shape` to shape `out_shape` (pytrees allowed, as in
    `jax.jacfwd`); `mode` is "fwd", "rev" or "auto" (forward when the input is no larger than the
    output — see `jacobian_mode`, which reports the choice).

    **Returns:** a function of `x` giving `df/dx` with `J[m, n] = df_m/dx_n` for vectors.
    """
    require_callable(f, "jacobian")
    _check_mode(mode, "jacobian")
    fwd, rev = jax.jacfwd(f, argnums=argnums), jax.jacrev(f, argnums=argnums)

    def jac(*args, **kwargs):
        _check_args(args, argnums, "jacobian")
        m = mode if mode != "auto" else jacobian_mode(f, *args, argnums=argnums, **kwargs)
        return (fwd if m == "fwd" else rev)(*args, **kwargs)

    return jac


def jacobian_matrix(f: Callable[..., Array], mode: Mode = "auto") -> Callable[..., Array]:
    """`d vec(f(X)) / d vec(X)` as a 2-D matrix (numerator layout, column-major vec).

    **Arguments:** `f` maps an array of shape `in_shape` (or a pytree, flattened by `ravel_vec`)
    to an array of shape `out_shape`; `mode` as in `jacobian`.

    **Returns:** a function of `X` giving shape `(prod(out_shape), prod(in_shape))`; for scalar
    `f` the `(1, n)` row vector. `jacobian_matrix(lambda X: A @ X @ B)(X) == kron(B.T, A)`.
    """
    require_callable(f, "jacobian_matrix")
    _check_mode(mode, "jacobian_matrix")

    def jac_mat(X, *args, **kwargs):
        require_float_tree(X, "jacobian_matrix", "X")
        flat, unravel = ravel_vec(X)
        fv = lambda v: vec(f(unravel(v), *args, **kwargs))
        m = mode if mode != "auto" else jacobian_mode(fv, flat)
        return (jax.jacfwd if m == "fwd" else jax.jacrev)(fv)(flat)

    return jac_mat


def hessian(f: Callable[..., Array], argnums: int = 0) -> Callable[..., Any]:
    """Hessian of a scalar function: shape `in_shape + in_shape` (forward-over-reverse)."""
    require_callable(f, "hessian")
    h = jax.hessian(f, argnums=argnums)

    def hess(*args, **kwargs):
        _check_args(args, argnums, "hessian")
        _require_scalar(f, args, kwargs, "hessian")
        return h(*args, **kwargs)

    return hess


def hessian_matrix(f: Callable[..., Array]) -> Callable[..., Float[Array, "n n"]]:
    """Hessian as an `(n, n)` matrix in `vec` order (pytrees flattened by `ravel_vec`)."""
    require_callable(f, "hessian_matrix")

    def hess_mat(x, *args, **kwargs):
        require_float_tree(x, "hessian_matrix")
        _require_scalar(f, (x, *args), kwargs, "hessian_matrix")
        flat, unravel = ravel_vec(x)
        return jax.hessian(lambda v: f(unravel(v), *args, **kwargs))(flat)

    return hess_mat


def _require_scalar(f, args, kwargs, where: str) -> None:
    out = jax.eval_shape(f, *args, **kwargs)
    if jnp.shape(out) != ():
        raise ValueError(f"{where}: f must return a scalar; it returned shape {jnp.shape(out)}")


def hvp(f: Callable[..., Array], x: Any, v: Any, *args, **kwargs) -> Any:
    """Hessian-vector product `H(x) v` by forward-over-reverse (`jvp` of `grad`).

    **Arguments:** scalar `f`; `x` and `v` arrays or pytrees of the same structure and shapes;
    extra `args`/`kwargs` are passed to `f` and not differentiated.

    **Returns:** `H v` shaped like `x`. Costs about two gradient evaluations; the Hessian is never
    built.
    """
    require_callable(f, "hvp")
    require_float_tree(x, "hvp")
    require_same_structure(x, v, "hvp")
    g = jax.grad(lambda p: f(p, *args, **kwargs))
    return jax.jvp(g, (x,), (as_tangent(x, v),))[1]


def directional_derivative(f: Callable[..., Any], x: Any, v: Any, *args, **kwargs) -> Any:
    """`∇_v f(x) = J(x) v` (one `jvp`): shaped like `f(x)`; for scalar f, `(df/dx) v`."""
    require_callable(f, "directional_derivative")
    require_float_tree(x, "directional_derivative")
    require_same_structure(x, v, "directional_derivative")
    return jax.jvp(lambda p: f(p, *args, **kwargs), (x,), (as_tangent(x, v),))[1]


def second_directional_derivative(f: Callable[..., Array], x: Any, v: Any, *args, **kwargs) -> Array:
    """`vᵀ H(x) v` for scalar `f`: the curvature along `v` (one Hessian-vector product)."""
    hv = hvp(f, x, v, *args, **kwargs)
    leaves_v = jax.tree_util.tree_leaves(as_tangent(x, v))
    leaves_hv = jax.tree_util.tree_leaves(hv)
    return sum(jnp.vdot(a, b) for a, b in zip(leaves_v, leaves_hv))
