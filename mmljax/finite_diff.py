"""Finite-difference references: the third witness, independent of autodiff.

Central differences with a dtype-aware step `h = eps^(1/3) · max(1, |x|)` (the step that balances
the `O(h²)` truncation error against the `O(eps/h)` rounding error), second differences with
`h = eps^(1/4) · max(1, |x|)`, and the Taylor-remainder test that works along random directions
on inputs of any size.

All Jacobians are in numerator layout (`out_shape + in_shape`). Inputs are single arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Real

from ._validate import check_int, check_real, reject_complex, require_callable, require_float_tree

__all__ = [
    "central_step",
    "fd_jacobian",
    "fd_gradient",
    "fd_hessian",
    "fd_directional",
    "TaylorResult",
    "taylor_test",
    "taylor_steps",
    "taylor_verdict",
]


# Primitives that lower to LAPACK custom calls on CPU.
_LINALG = frozenset(
    {
        "lu",
        "lu_pivots_to_permutation",
        "cholesky",
        "eigh",
        "eig",
        "qr",
        "geqrf",
        "geqp3",
        "householder_product",
        "svd",
        "triangular_solve",
        "schur",
        "hessenberg",
        "tridiagonal",
        "tridiagonal_solve",
    }
)


def _primitives(jaxpr) -> set[str]:
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for param in eqn.params.values():
            for sub in param if isinstance(param, (list, tuple)) else (param,):
                inner = getattr(sub, "jaxpr", sub)  # ClosedJaxpr -> Jaxpr
                if hasattr(inner, "eqns"):
                    names |= _primitives(inner)
    return names


def _map(f: Callable, xs: Array) -> Array:
    """`f` over the leading axis of `xs`: batched (`vmap`), or in a loop when `f` does linear algebra.

    A batched `f` turns linear algebra (LU for `det`/`inv`/`solve`, QR, eigh, ...) into batched
    LAPACK calls, which jaxlib parallelises over XLA:CPU's intra-op thread pool from inside that
    pool; with two cores this deadlocks now and then (observed with jax 0.10: a worker blocked in
    `ParallelBatchMap` of `lapack_dgetrf_ffi`). For such `f` a `lax.map` loop evaluates one point
    at a time; everything else keeps the faster `vmap`.
    """
    jaxpr = jax.make_jaxpr(f)(jax.ShapeDtypeStruct(xs.shape[1:], xs.dtype))
    if _primitives(jaxpr.jaxpr) & _LINALG:
        return jax.lax.map(f, xs)
    return jax.vmap(f)(xs)


def _point(x, where: str) -> Array:
    """A single floating array `x` (these references work on one array; flatten pytrees with `ravel_vec`)."""
    leaves = jax.tree_util.tree_leaves(x)
    if len(leaves) != 1 or leaves[0] is not x:
        raise TypeError(
            f"{where}: x must be a single floating array; got a {type(x).__name__} — flatten a "
            "pytree with mmljax.ravel_vec first"
        )
    require_float_tree(x, where)
    return jnp.asarray(x)


def _step(step: ArrayLike, x: Array, where: str) -> Array:
    """A user step: positive and finite, a scalar or broadcastable to x's shape."""
    reject_complex(step, where, "step")
    s = np.asarray(step) if not isinstance(step, jax.core.Tracer) else None
    if s is not None:
        if not np.issubdtype(s.dtype, np.number) or np.issubdtype(s.dtype, np.bool_):
            raise TypeError(f"{where}: step must be a positive number or array; got {step!r}")
        if not (np.all(np.isfinite(s)) and np.all(s > 0)):
            raise ValueError(f"{where}: step must be positive and finite; got {step!r}")
    try:
        return jnp.broadcast_to(jnp.asarray(step, x.dtype), x.shape)
    except ValueError:
        raise ValueError(
            f"{where}: step of shape {jnp.shape(step)} does not broadcast to x's shape {x.shape}"
        ) from None


def central_step(x: Float[ArrayLike, "*shape"], power: float = 1 / 3) -> Float[Array, "*shape"]:
    """Per-element step `eps^power · max(1, |x|)` in the dtype of `x`; `0 < power < 1`."""
    power = check_real(power, "central_step", "power", minimum=0.0, maximum=1.0, strict=True)
    x = jnp.asarray(x)
    eps = jnp.finfo(x.dtype).eps
    return (eps**power) * jnp.maximum(1.0, jnp.abs(x))


def _basis(x: Array) -> Array:
    """The standard basis directions of x's shape: shape `(x.size,) + x.shape`."""
    return jnp.eye(x.size, dtype=x.dtype).reshape((x.size,) + x.shape)


def fd_jacobian(
    f: Callable[[Array], Array], x: Float[ArrayLike, "*shape"], *, step: Real[ArrayLike, "*step"] | None = None
) -> Float[Array, "*jac"]:
    """Central-difference Jacobian, shape `out_shape + in_shape`.

    One pair of evaluations of `f` per input element (batched; looped when `f` does linear
    algebra, see `_map`), error `O(h²) + O(eps/h)`.
    """
    require_callable(f, "fd_jacobian")
    x = _point(x, "fd_jacobian")
    h = central_step(x) if step is None else _step(step, x, "fd_jacobian")
    # Make the step exactly representable so that (x + h) - (x - h) == 2h.
    h = (x + h) - x
    E = _basis(x) * h
    cols = _map(lambda e: f(x + e) - f(x - e), E)  # (n,) + out_shape
    cols = cols / (2 * h.reshape((-1,) + (1,) * (cols.ndim - 1)))
    out_ndim = cols.ndim - 1
    J = jnp.moveaxis(cols, 0, -1)  # out_shape + (n,)
    return J.reshape(J.shape[:out_ndim] + x.shape)


def fd_gradient(
    f: Callable[[Array], Array], x: Float[ArrayLike, "*shape"], *, step: Real[ArrayLike, "*step"] | None = None
) -> Float[Array, "*shape"]:
    """Central-difference gradient of a scalar function, shaped like `x`: `fd_jacobian` of a scalar `f`.

    **Raises:** `ValueError` when `f` does not return a scalar (use `fd_jacobian`).
    """
    require_callable(f, "fd_gradient")
    x = _point(x, "fd_gradient")
    out = jax.eval_shape(f, x)
    if getattr(out, "shape", None) != ():
        raise ValueError(
            f"fd_gradient: f must return a scalar; it returned {getattr(out, 'shape', out)!r} — "
            "use fd_jacobian for vector-valued functions"
        )
    return fd_jacobian(f, x, step=step)


def fd_hessian(
    f: Callable[[Array], Array], x: Float[ArrayLike, "*shape"], *, step: Real[ArrayLike, "*step"] | None = None
) -> Float[Array, "*jac"]:
    """Second-difference Hessian of a scalar function from values only: shape `x.shape * 2`.

    `H_ij ≈ [f(x+hi+hj) − f(x+hi−hj) − f(x−hi+hj) + f(x−hi−hj)] / (4 h_i h_j)` with
    `h = eps^(1/4)·max(1,|x|)`; error `O(h²) + O(eps/h²)`, about `sqrt(eps)` relative.
    """
    require_callable(f, "fd_hessian")
    x = _point(x, "fd_hessian")
    out = jax.eval_shape(f, x)
    if getattr(out, "shape", None) != ():
        raise ValueError(f"fd_hessian: f must return a scalar; it returned {getattr(out, 'shape', out)!r}")
    h = central_step(x, 0.25) if step is None else _step(step, x, "fd_hessian")
    h = (x + h) - x
    E = _basis(x) * h  # (n,) + shape

    def row(ei):
        def entry(ej):
            return f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)

        return _map(entry, E)

    H = _map(row, E)  # (n, n)
    hf = h.ravel()
    H = H / (4 * hf[:, None] * hf[None, :])
    H = 0.5 * (H + H.T)
    return H.reshape(x.shape + x.shape)


def fd_directional(
    f: Callable[[Array], Array],
    x: Float[ArrayLike, "*shape"],
    v: Real[ArrayLike, "*shape"],
    *,
    step: float | None = None,
) -> Float[Array, "*out"]:
    """Central-difference directional derivative `(f(x + h v) − f(x − h v)) / 2h` ≈ `J v`."""
    require_callable(f, "fd_directional")
    x = _point(x, "fd_directional")
    reject_complex(v, "fd_directional", "v")
    if step is not None:
        step = check_real(step, "fd_directional", "step", minimum=0.0, strict=True)
    v = jnp.asarray(v, x.dtype)
    if v.shape != x.shape:
        raise ValueError(f"fd_directional: v must have the shape of x {x.shape}; got {v.shape}")
    if step is None:
        scale = jnp.maximum(1.0, jnp.max(jnp.abs(x))) / jnp.maximum(jnp.max(jnp.abs(v)), 1e-300)
        step = jnp.finfo(x.dtype).eps ** (1 / 3) * scale
    return (f(x + step * v) - f(x - step * v)) / (2 * step)


class TaylorResult(NamedTuple):
    """Outcome of a Taylor-remainder test.

    `steps` and `remainders` are the sequence `h_k` and `|f(x+h v) − f(x) − h J v|`; `order` is
    the observed convergence order (about 2 for a correct `J v`, about 1 for a wrong one);
    `ok` is True when the remainder shrinks like `h²` or sits at the rounding floor.
    """

    ok: bool
    order: float
    steps: np.ndarray
    remainders: np.ndarray
    noise_floor: float


def taylor_steps(x: Float[Array, "*shape"], v: Real[ArrayLike, "*shape"], n_steps: int = 6) -> Float[Array, " steps"]:
    """The step sequence `h0 / 2^k` of the Taylor test (traceable: usable under `jit`).

    `h0 = 10 · eps^(1/4) · max(1, |x|) / |v|` — large enough that the `h²` term dominates
    rounding over all `n_steps` halvings, small enough to be in the asymptotic regime.
    """
    eps = jnp.finfo(x.dtype).eps
    xscale = jnp.maximum(1.0, jnp.max(jnp.abs(x)))
    vscale = jnp.maximum(jnp.max(jnp.abs(v)), jnp.finfo(x.dtype).tiny)
    h0 = 10 * eps**0.25 * xscale / vscale
    return h0 / 2.0 ** jnp.arange(n_steps, dtype=x.dtype)


def taylor_verdict(steps, f0, fh, jv, eps: float, min_order: float = 1.8) -> TaylorResult:
    """Judge the remainders `||f(x + h v) − f(x) − h·jv||` at the given steps (numpy, float64).

    `fh` stacks `f(x + h_k v)` along axis 0. Points at the rounding floor (`64 eps |f|`) are
    ignored, and so are points where the remainder is below `sqrt(eps) · h_k · |jv|` (the
    first-order model matches to `sqrt(eps)` relative: rounding in `f(x + h v) − f(x)`, which
    `|f|` underestimates when `f`'s terms cancel, e.g. a linear `f` whose value is near 0);
    with fewer than two points above the floor the remainder is rounding noise (f locally
    linear along v and `jv` exact to rounding) and the test passes.
    """
    steps = np.asarray(steps, np.float64)
    f0 = np.asarray(f0, np.float64)
    fh = np.asarray(fh, np.float64).reshape((len(steps),) + f0.shape)
    jv = np.asarray(jv, np.float64)
    rem = np.array([np.linalg.norm((fh[k] - f0 - steps[k] * jv).ravel()) for k in range(len(steps))])
    fscale = float(np.max(np.abs(f0))) if f0.size else 0.0
    floor = 64 * eps * max(fscale, 1e-300) * max(1.0, np.sqrt(f0.size))
    above = (rem > floor) & (rem > np.sqrt(eps) * steps * np.linalg.norm(jv.ravel()))
    if above.sum() < 2:
        return TaylorResult(True, float("nan"), steps, rem, floor)
    slope = np.polyfit(np.log(steps[above]), np.log(rem[above]), 1)[0]
    return TaylorResult(bool(slope >= min_order), float(slope), steps, rem, floor)


def taylor_test(
    f: Callable[[Array], Array],
    x: Float[ArrayLike, "*shape"],
    v: Real[ArrayLike, "*shape"],
    jv: Float[ArrayLike, "*out"],
    *,
    n_steps: int = 6,
    min_order: float = 1.8,
) -> TaylorResult:
    """Taylor-remainder test of a claimed directional derivative `jv = J(x) v`.

    For a correct `J`, `r(h) = ||f(x + h v) − f(x) − h·jv||` is `O(h²)`: halving `h` divides it by
    four. A wrong `J` leaves an `O(h)` term. The observed order is the least-squares slope of
    `log r` against `log h` over the points above the rounding floor. Works for inputs of any size,
    since only function values and one product `J v` are needed.
    """
    require_callable(f, "taylor_test")
    x = _point(x, "taylor_test")
    n_steps = check_int(n_steps, "taylor_test", "n_steps", minimum=3)
    min_order = check_real(min_order, "taylor_test", "min_order", minimum=0.0, strict=True)
    reject_complex(v, "taylor_test", "v")
    v = jnp.asarray(v, x.dtype)
    if v.shape != x.shape:
        raise ValueError(f"taylor_test: v must have the shape of x {x.shape}; got {v.shape}")
    out = jax.eval_shape(f, x)
    if jnp.shape(jv) != tuple(getattr(out, "shape", ())):
        raise ValueError(
            f"taylor_test: jv must have the shape of f(x), {tuple(getattr(out, 'shape', ()))} (it is "
            f"J(x) v); got {jnp.shape(jv)}"
        )
    steps = taylor_steps(x, v, n_steps)
    fh = _map(lambda h: f(x + h * v), steps)
    return taylor_verdict(steps, f(x), fh, jv, float(jnp.finfo(x.dtype).eps), min_order)
