"""Check a hand-derived derivative against three witnesses: jacfwd, jacrev, finite differences.

`check_derivative` compares a hand formula (a Jacobian in numerator layout, its `vec` matrix
form, or a Hessian) with forward- and reverse-mode autodiff and with central finite differences
plus a Taylor-remainder test, and says by how much and where they disagree. `check_minimiser`
checks a hand-derived closed-form minimiser: the gradient vanishes there and the Hessian is
positive definite.

Errors are normwise: for a witness `R` and the hand value `D`,
`abs = max|D − R|`, `rel = abs / max|R|` (or `abs` when `R` is all zero); a witness passes when
`abs <= atol + rtol · max|R|`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._json import json_safe
from ._minimum import KINDS, check_tolerances, dense_test
from ._problem import FlatProblem, check_args, check_loss_call, check_params, param_size_dtype
from ._validate import (
    check_choice,
    check_int,
    check_real,
    leaf_names,
    reject_complex,
    require_callable,
    require_float_tree,
)
from .finite_diff import _map, fd_directional, fd_hessian, fd_jacobian, taylor_steps, taylor_verdict
from .layout import ravel_vec

__all__ = [
    "Witness",
    "CheckResult",
    "CheckFailed",
    "check_derivative",
    "MinimiserResult",
    "check_minimiser",
    "default_tolerances",
    "minimiser_verdict",
    "CheckSpec",
    "witness_program",
    "run_witnesses",
    "is_array_point",
]

# Largest Jacobian (elements) built densely by the checker; beyond it, random directions.
DENSE_LIMIT = 250_000
# Largest input for the O(n²) second-difference Hessian.
FD_HESSIAN_LIMIT = 64


class CheckFailed(AssertionError):
    """Raised by `raise_if_failed()`; the message names the check and the worst disagreement."""


def default_tolerances(dtype, order: int = 1) -> dict[str, float]:
    """Default relative tolerances per witness for a dtype and derivative order.

    float64: hand vs autodiff 1e-10; vs finite differences 1e-6 (first order, error
    `~eps^(2/3)` times the scale of `f'''`) or 1e-4 (second differences, `~sqrt(eps)`).
    float32: 1e-4 vs autodiff, 2e-2 / 2e-1 vs finite differences.
    """
    if jnp.finfo(dtype).bits >= 64:
        return {"autodiff": 1e-10, "finite_diff": 1e-6 if order == 1 else 1e-4, "atol": 0.0}
    return {"autodiff": 1e-4, "finite_diff": 2e-2 if order == 1 else 2e-1, "atol": 0.0}


@dataclass(frozen=True)
class Witness:
    """How far the hand formula is from one witness.

    `worst_index` is the index (in the hand value's shape) of the largest absolute difference;
    `hand_value` and `witness_value` are the two numbers there. For the Taylor witness `max_rel`
    holds the observed convergence order instead.
    """

    name: str
    ok: bool
    max_abs: float
    max_rel: float
    tol: float
    worst_index: tuple[int, ...] | None = None
    hand_value: float | None = None
    witness_value: float | None = None
    note: str = ""
    location: str = ""

    def describe(self) -> str:
        if self.name == "taylor":
            order = "n/a (remainder at rounding level)" if math.isnan(self.max_rel) else f"{self.max_rel:.2f}"
            return f"Taylor remainder order {order} (needs >= {self.tol:g}){' ' + self.note if self.note else ''}"
        where = ""
        if self.worst_index is not None:
            at = self.location or f"index {self.worst_index}"
            where = f" at {at} (hand {self.hand_value:.6g}, {self.name} {self.witness_value:.6g})"
        return (
            f"vs {self.name}: max abs err {self.max_abs:.3g}, rel err {self.max_rel:.3g} "
            f"(tol {self.tol:.1g}){where}{' ' + self.note if self.note else ''}"
        )


@dataclass
class CheckResult:
    """Outcome of `check_derivative`.

    **Fields:** `name`; `ok`; `dtype` (of the input); `shape` (the expected derivative shape,
    numerator layout); `hand_shape` (what the hand formula returned); `order`; `layout`
    ("tensor" or "vec"); `witnesses` (name -> `Witness`: "jacfwd", "jacrev", "finite_diff",
    "taylor"); `mode` ("dense" or "directions"); `message`.
    """

    name: str
    ok: bool
    dtype: str
    shape: tuple[int, ...]
    hand_shape: tuple[int, ...] | None
    order: int
    layout: str
    witnesses: dict[str, Witness] = field(default_factory=dict)
    mode: str = "dense"
    message: str = ""

    def max_rel(self, *names: str) -> float:
        """Worst relative error over the named witnesses (all error witnesses when none named)."""
        names = names or tuple(n for n in self.witnesses if n != "taylor")
        vals = [self.witnesses[n].max_rel for n in names if n in self.witnesses]
        return max(vals) if vals else float("nan")

    @property
    def autodiff_rel(self) -> float:
        return self.max_rel("jacfwd", "jacrev")

    @property
    def finite_diff_rel(self) -> float:
        return self.max_rel("finite_diff")

    def __str__(self) -> str:
        return self.message

    def summary(self) -> str:
        """The report: the verdict, then one line per witness (its error, the worst element)."""
        return self.message

    def raise_if_failed(self) -> CheckResult:
        if not self.ok:
            raise CheckFailed(self.message)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "hand_shape": None if self.hand_shape is None else list(self.hand_shape),
            "order": self.order,
            "layout": self.layout,
            "mode": self.mode,
            "witnesses": {
                k: {
                    "ok": w.ok,
                    "max_abs": _finite_or_none(w.max_abs),
                    "max_rel": _finite_or_none(w.max_rel),
                    "tol": w.tol,
                    "worst_index": None if w.worst_index is None else list(w.worst_index),
                    "location": w.location or None,
                }
                for k, w in self.witnesses.items()
            },
            "message": self.message,
        }


def _finite_or_none(x: float) -> float | None:
    return json_safe(x)


def _compare(name: str, hand: np.ndarray, ref: np.ndarray, rtol: float, atol: float) -> Witness:
    err = np.abs(hand - ref)
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    if not np.all(np.isfinite(hand)):
        idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(~np.isfinite(hand))), hand.shape))
        return Witness(
            name,
            False,
            float("inf"),
            float("inf"),
            rtol,
            idx,
            float(hand[idx]),
            float(ref[idx]),
            note="(hand formula gave NaN/Inf)",
        )
    max_abs = float(np.max(err)) if err.size else 0.0
    rel = max_abs / scale if scale > 0 else max_abs
    ok = max_abs <= atol + rtol * scale
    idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(err)), err.shape)) if err.size else None
    hv = float(hand[idx]) if idx is not None else None
    rv = float(ref[idx]) if idx is not None else None
    return Witness(name, bool(ok), max_abs, rel, rtol, idx, hv, rv)


def _to_vec_matrix(J: np.ndarray, out_shape: tuple, in_shape: tuple) -> np.ndarray:
    """Numerator-layout tensor `out_shape + in_shape` -> `(out.size, in.size)` in vec order.

    Column-major flattening of a group of axes is row-major flattening of the reversed axes.
    """
    no, ni = len(out_shape), len(in_shape)
    perm = tuple(reversed(range(no))) + tuple(no + i for i in reversed(range(ni)))
    return np.transpose(J, perm).reshape(math.prod(out_shape), math.prod(in_shape))


def _expected_shape(out_shape, in_shape, order, layout):
    if order == 1:
        return (math.prod(out_shape), math.prod(in_shape)) if layout == "vec" else out_shape + in_shape
    return (math.prod(in_shape),) * 2 if layout == "vec" else in_shape + in_shape


def _transposed_shape(out_shape, in_shape, order, layout):
    if order == 2:
        return None
    if layout == "vec":
        return (math.prod(in_shape), math.prod(out_shape))
    if out_shape == () and len(in_shape) == 2:
        return in_shape[::-1]  # the gradient with respect to X given as Xᵀ-shaped
    return in_shape + out_shape


def check_derivative(
    f: Callable,
    hand: Any,
    x: Any,
    *,
    order: Literal[1, 2] = 1,
    name: str | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    fd_rtol: float | None = None,
    layout: Literal["tensor", "vec"] = "tensor",
    directions: int | None = None,
    seed: int = 0,
) -> CheckResult:
    """Check a hand-derived derivative of `f` at `x` against jacfwd, jacrev and finite differences.

    **Arguments:**

    - `f`: function of one argument `x` (close over constants) returning an array.
    - `hand`: the hand-derived derivative at `x` — an array (a pytree for a pytree `x`), or a
      callable `hand(x)` giving it. For `order=1` a Jacobian of shape `out_shape + in_shape`
      (numerator layout; for scalar `f` the gradient, shaped like `x`); with `layout="vec"` the
      `(out.size, in.size)` matrix in column-major vec order. For `order=2` (scalar `f`) the
      Hessian, `in_shape + in_shape` or `(n, n)` with `layout="vec"`.
    - `x`: a floating array (float64 recommended; float32 gets loose tolerances and a warning), or
      any pytree of them — a dict, a NamedTuple, an `equinox.Module` (only its inexact-array leaves
      are differentiated, the rest is static: `eqx.partition(x, eqx.is_inexact_array)`). For a
      pytree `x` the hand Jacobian has the structure of `x` with leaves `out_shape + leaf.shape`
      (what `jax.jacrev` returns; for scalar `f` the gradient shaped like `x`; `None` at static
      leaves, as `eqx.filter_grad` gives); the hand Hessian is nested (`H[i][j]` of shape
      `shape_i + shape_j`, what `jax.hessian` returns) or, with `layout="vec"`, the `(P, P)` matrix
      in `ravel_vec` order. Reports name the leaf (`x['w'][1, 0]`). Leaves of mixed precision are
      checked in the widest one.
    - `order`: 1 (Jacobian/gradient) or 2 (Hessian of a scalar `f`).
    - `rtol`, `atol`: tolerance against autodiff (defaults from `default_tolerances`);
      `fd_rtol` against finite differences. Each a finite number `>= 0`.
    - `layout`: "tensor" or "vec" (see `hand`).
    - `directions`: a positive integer; when given (or when the Jacobian would exceed
      `DENSE_LIMIT` elements), check along that many random directions `u`, `v` (`J v` vs `jvp`,
      `uᵀ J v` vs `vjp`, `J v` vs a central difference, plus the Taylor test) instead of building
      the Jacobian.
    - `seed`: an integer `>= 0` seeding the random directions.

    **Returns:** a `CheckResult`; never raises on a wrong formula (call `raise_if_failed()`).
    Shape disagreements are reported (expected vs received, and whether the hand value looks
    transposed) rather than raised.

    **Raises:** `TypeError`/`ValueError` naming the argument for invalid options, a complex,
    non-numeric or non-finite `x`, or an `f` that fails or does not return an array.
    """
    where = "check_derivative"
    require_callable(f, where)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"{where}: name must be a string or None; got {name!r} ({type(name).__name__})")
    name = name or getattr(f, "__name__", "derivative")
    spec = _validated_spec(where, order, layout, rtol, atol, fd_rtol)
    if directions is not None:
        directions = check_int(directions, where, "directions", minimum=1)
    seed = check_int(seed, where, "seed", minimum=0)
    if not callable(hand):
        _require_numeric_tree(hand, where, "hand")
    hand_fn = hand if callable(hand) else (lambda z, _h=hand: _h)
    if not is_array_point(x):
        return _check_tree(f, hand_fn, x, spec, name, directions, seed)
    program = witness_program(lambda z, *a: f(z), lambda z, *a: hand_fn(z), spec.order)
    return run_witnesses(program, f, hand_fn, x, (), spec, name, directions, seed, stacklevel=2)


def _validated_spec(where, order, layout, rtol, atol, fd_rtol) -> CheckSpec:
    order = check_int(order, where, "order", minimum=1, maximum=2)
    check_choice(layout, where, "layout", ("tensor", "vec"))
    tols = [
        None if t is None else check_real(t, where, n, minimum=0.0)
        for n, t in (("rtol", rtol), ("atol", atol), ("fd_rtol", fd_rtol))
    ]
    return CheckSpec(order, layout, *tols)


def is_array_point(x: Any) -> bool:
    """A single array-like point (the original API), as opposed to a pytree of them."""
    if isinstance(x, (jax.Array, np.ndarray, np.generic, float, int)) and not isinstance(x, bool):
        return True
    if isinstance(x, (list, tuple)) and not hasattr(x, "_fields"):
        # nested lists of numbers are an array; a list of arrays is a pytree
        return all(isinstance(e, (float, int, list, tuple)) and not isinstance(e, bool) for e in x) and bool(x)
    return False


def _require_numeric_tree(tree: Any, where: str, what: str) -> None:
    """Every leaf of `tree` is numeric (no strings or objects); `what` is "hand" or "x"."""
    kind = "an array (or a callable giving one)" if what == "hand" else "a floating-point array"
    leaves = jax.tree_util.tree_leaves(tree)
    for leaf in leaves:
        try:
            dtype = np.asarray(leaf).dtype
        except Exception:
            dtype = np.dtype(object)
        if not (np.issubdtype(dtype, np.number) or np.dtype(dtype).kind == "b"):
            raise TypeError(f"{where}: {what} must be {kind}; got a leaf {leaf!r} ({type(leaf).__name__})")


def _inexact(leaf: Any) -> bool:
    """The differentiated leaves of a pytree point: inexact (JAX or numpy) arrays, as `eqx.is_inexact_array`.

    Python floats, ints, strings and functions are static, like every non-array field of an
    `equinox.Module`.
    """
    return eqx.is_inexact_array(leaf)


def _check_tree(f, hand_fn, x, spec: CheckSpec, name, directions, seed) -> CheckResult:
    """`check_derivative` for a pytree `x`: flatten with `ravel_vec`, check, name leaves in the report."""
    where = f"check_derivative[{name}]"
    params, static = eqx.partition(x, _inexact)
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves:
        all_leaves = jax.tree_util.tree_leaves(x)
        if len(all_leaves) == 1 and all_leaves[0] is x or x is None:
            got = f"{x!r} ({type(x).__name__})"
        else:
            kinds = sorted({type(leaf).__name__ for leaf in all_leaves}) or ["nothing"]
            got = f"a {type(x).__name__} holding {', '.join(kinds)}"
        raise TypeError(
            f"{where}: x must be a floating-point array or a pytree of them; got {got} — "
            "pass e.g. jnp.asarray(v, float)"
        )
    params = jax.tree_util.tree_map(jnp.asarray, params)
    reject_complex(params, where, "x")
    require_float_tree(params, where, "x")
    # Mixed precisions are checked in the widest one (the check is of the formula, not of rounding).
    common = np.result_type(*[leaf.dtype for leaf in jax.tree_util.tree_leaves(params)])
    params = jax.tree_util.tree_map(lambda a: a.astype(common), params)
    names = leaf_names(params)
    shapes = [tuple(jnp.shape(leaf)) for leaf in leaves]
    sizes = [math.prod(s) for s in shapes]
    flat, unravel = ravel_vec(params)
    treedef = jax.tree_util.tree_structure(params)
    point = lambda v: eqx.combine(unravel(v), static)  # noqa: E731
    F = lambda v: f(point(v))  # noqa: E731
    try:
        out = jax.eval_shape(F, flat)
    except Exception as e:
        raise ValueError(f"{where}: f fails on x: {type(e).__name__}: {e}") from e
    if not hasattr(out, "shape") or isinstance(out, (tuple, list, dict)):
        raise TypeError(f"{where}: f must return an array; it returned {_describe_out(out)}")
    out_shape = tuple(out.shape)
    base = dict(name=name, dtype=str(flat.dtype), order=spec.order, layout=spec.layout)
    P = flat.size

    def fail(msg: str, expected, got) -> CheckResult:
        return CheckResult(ok=False, shape=expected, hand_shape=got, message=f"check '{name}' FAILED: {msg}", **base)

    try:
        hand_struct = eqx.filter_eval_shape(hand_fn, x)
    except Exception as e:
        return fail(f"the hand formula raised {type(e).__name__}: {e}", (P,), None)
    if spec.layout == "vec":
        to_flat = lambda h: h  # noqa: E731
    elif spec.order == 1:
        hand_params = eqx.filter(hand_struct, lambda a: hasattr(a, "shape"))
        got = jax.tree_util.tree_structure(hand_params)
        if got != treedef:
            return fail(
                f"the hand derivative must have the pytree structure of x ({treedef}); it has {got}",
                out_shape + (P,),
                None,
            )
        for nm, s, h in zip(names, shapes, jax.tree_util.tree_leaves(hand_params)):
            if tuple(h.shape) != out_shape + s:
                hint = ""
                if out_shape and tuple(h.shape) == s + out_shape:
                    hint = " — it looks transposed (numerator layout puts the output axes first)"
                elif not out_shape and len(s) == 2 and tuple(h.shape) == s[::-1]:
                    hint = " — it looks transposed: the gradient of a scalar f has the shape of the leaf"
                return fail(
                    f"the hand derivative's leaf {nm} has shape {tuple(h.shape)}; expected "
                    f"out_shape + {nm}.shape = {out_shape + s}{hint}",
                    out_shape + (P,),
                    None,
                )
        no = len(out_shape)

        def to_flat(h):
            parts = []
            for leaf, s, n in zip(treedef.flatten_up_to(eqx.filter(h, lambda a: hasattr(a, "shape"))), shapes, sizes):
                k = len(s)
                perm = tuple(range(no)) + tuple(no + i for i in reversed(range(k)))
                parts.append(jnp.reshape(jnp.transpose(leaf, perm), out_shape + (n,)))
            return jnp.concatenate(parts, axis=-1)
    else:
        try:
            outer = treedef.flatten_up_to(hand_struct)
            blocks = [treedef.flatten_up_to(row) for row in outer]
        except Exception:
            return fail(
                f"the hand Hessian must be nested like jax.hessian's output (x's structure {treedef} "
                "inside x's structure), or pass layout='vec' with the (P, P) matrix in ravel_vec order",
                (P, P),
                None,
            )
        for i, row in enumerate(blocks):
            for j, blk in enumerate(row):
                if tuple(getattr(blk, "shape", ())) != shapes[i] + shapes[j]:
                    return fail(
                        f"the hand Hessian's block [{names[i]}][{names[j]}] has shape "
                        f"{tuple(getattr(blk, 'shape', ()))}; expected {shapes[i] + shapes[j]}",
                        (P, P),
                        None,
                    )

        def to_flat(h):
            rows = [treedef.flatten_up_to(r) for r in treedef.flatten_up_to(h)]
            return jnp.concatenate(
                [
                    jnp.concatenate([_to_vec_matrix_j(rows[i][j], shapes[i], shapes[j]) for j in range(len(shapes))], 1)
                    for i in range(len(shapes))
                ],
                0,
            )

    H = lambda v: to_flat(hand_fn(point(v)))  # noqa: E731
    program = witness_program(lambda z, *a: F(z), lambda z, *a: H(z), spec.order)
    internal = spec if spec.layout == "vec" else spec._replace(layout="tensor")
    result = run_witnesses(program, F, lambda z: H(z), flat, (), internal, name, directions, seed, stacklevel=3)
    result.layout = spec.layout
    if not result.witnesses:
        return result
    locate = _locator(names, shapes, sizes, out_shape, spec)
    result.witnesses = {
        k: (
            dataclasses.replace(w, location=locate(w.worst_index))
            if w.worst_index is not None and result.mode == "dense"
            else w
        )
        for k, w in result.witnesses.items()
    }
    result.message = _message(result, np.zeros(0), result.witnesses)
    result.message = result.message.replace(
        f"derivative shape {result.shape}",
        f"x: {len(leaves)} leaves, {P} parameters flattened by ravel_vec, derivative shape {result.shape}",
        1,
    )
    return result


def _describe_out(out: Any) -> str:
    if out is None:
        return "None (a missing return statement?)"
    return f"a {type(out).__name__}"


def _to_vec_matrix_j(J, out_shape: tuple, in_shape: tuple):
    """`_to_vec_matrix` for a traced array (jnp)."""
    no, ni = len(out_shape), len(in_shape)
    perm = tuple(reversed(range(no))) + tuple(no + i for i in reversed(range(ni)))
    return jnp.reshape(jnp.transpose(J, perm), (math.prod(out_shape), math.prod(in_shape)))


def _locator(names, shapes, sizes, out_shape, spec) -> Callable[[tuple], str]:
    """Maps an index into the flattened derivative to a leaf name, e.g. `x['w'][1, 0]`."""
    starts = np.cumsum([0] + list(sizes))

    def leaf(p: int) -> str:
        i = int(np.searchsorted(starts, p, side="right") - 1)
        s = shapes[i]
        sub = np.unravel_index(p - starts[i], s, order="F") if s else ()
        return names[i] + (f"[{', '.join(str(int(k)) for k in sub)}]" if s else "")

    def locate(idx: tuple) -> str:
        if spec.order == 2:
            return f"({leaf(idx[0])}, {leaf(idx[1])})"
        out_idx, p = idx[:-1], idx[-1]
        if spec.layout == "vec":
            out_idx = np.unravel_index(idx[0], out_shape, order="F") if out_shape else ()
        out = f"output {list(int(k) for k in out_idx)}, " if out_shape else ""
        return out + leaf(p)

    return locate


class CheckSpec(NamedTuple):
    """The options of one check (`order`, `layout`, tolerances; None means the dtype's default), as
    `check_derivative` takes them; `run_witnesses` validates them."""

    order: int
    layout: str
    rtol: float | None
    atol: float | None
    fd_rtol: float | None


def witness_program(f: Callable, hand: Callable, order: int) -> Callable:
    """One jitted program computing every witness array for `check_derivative`.

    Compiling the hand value, jacfwd, jacrev, the finite differences and the Taylor evaluations
    together costs one XLA compilation per input shape instead of one per primitive.
    """

    def witnesses(x, v, args):
        F = lambda z: f(z, *args)
        G = F if order == 1 else jax.grad(F)
        out = {"hand": hand(x, *args)}
        if order == 1:
            out["jacfwd"], out["jacrev"] = jax.jacfwd(F)(x), jax.jacrev(F)(x)
            out["finite_diff"] = fd_jacobian(F, x)
        else:
            out["jacfwd"], out["jacrev"] = jax.jacfwd(jax.jacrev(F))(x), jax.jacrev(jax.jacrev(F))(x)
            if x.size <= FD_HESSIAN_LIMIT:
                out["finite_diff"] = fd_hessian(F, x)
        steps = taylor_steps(x, v)
        out["taylor_steps"], out["taylor_f0"] = steps, G(x)
        out["taylor_fh"] = _map(lambda h: G(x + h * v), steps)
        return out

    return jax.jit(witnesses)


def run_witnesses(program, f, hand, x, args, spec: CheckSpec, name, directions, seed, stacklevel=2) -> CheckResult:
    """`check_derivative` of `f(x, *args)` against `hand(x, *args)` with a `witness_program(f, hand, order)`
    built once and reused for many points of the same shapes (what the catalogue does for each identity).

    **Arguments:** `x` an array point; `args` a tuple of extra arguments; `spec` a `CheckSpec`; `name`,
    `directions`, `seed` as in `check_derivative`. **Returns:** a `CheckResult`.
    """
    order, layout = spec.order, spec.layout
    _validated_spec("check_derivative", order, layout, spec.rtol, spec.atol, spec.fd_rtol)
    if directions is not None:
        directions = check_int(directions, "check_derivative", "directions", minimum=1)
    _require_numeric_tree(x, f"check_derivative[{name}]", "x")
    reject_complex(x, f"check_derivative[{name}]", "x")
    require_float_tree(x, f"check_derivative[{name}]")
    x = jnp.asarray(x)
    if x.size == 0:
        raise ValueError(f"check_derivative[{name}]: x is empty (shape {x.shape}); there is no derivative to check")
    dtype = x.dtype
    if jnp.finfo(dtype).bits < 64:
        warnings.warn(
            f"check_derivative[{name}]: checking in {dtype} only — tolerances are loose; enable "
            "float64 with jax.config.update('jax_enable_x64', True) and pass float64 inputs",
            stacklevel=stacklevel + 1,
        )
    tols = default_tolerances(dtype, order)
    rtol = tols["autodiff"] if spec.rtol is None else spec.rtol
    atol = tols["atol"] if spec.atol is None else spec.atol
    fd_rtol = max(tols["finite_diff"], rtol) if spec.fd_rtol is None else spec.fd_rtol

    try:
        out = jax.eval_shape(lambda z: f(z, *args), x)
    except Exception as e:  # the user's function fails on this input: say so plainly
        raise ValueError(f"check_derivative[{name}]: f fails on x of shape {x.shape}: {e}") from e
    if not hasattr(out, "shape") or isinstance(out, (tuple, list, dict)):
        raise TypeError(f"check_derivative[{name}]: f must return an array; it returned {_describe_out(out)}")
    out_shape, in_shape = tuple(out.shape), tuple(x.shape)
    if order == 2 and out_shape != ():
        raise ValueError(f"check_derivative[{name}]: order=2 needs a scalar function; f returns shape {out_shape}")
    expected = _expected_shape(out_shape, in_shape, order, layout)
    base = dict(name=name, dtype=str(dtype), shape=expected, order=order, layout=layout)

    try:
        hand_shape = tuple(jax.eval_shape(lambda z: hand(z, *args), x).shape)
    except Exception as e:
        msg = f"check '{name}' FAILED: the hand formula raised {type(e).__name__}: {e}"
        return CheckResult(ok=False, hand_shape=None, message=msg, **base)
    if hand_shape != expected:
        msg = (
            f"check '{name}' FAILED: shape mismatch — autodiff gives {expected} "
            f"({'vec matrix (out.size, in.size)' if layout == 'vec' else 'numerator layout out_shape + in_shape'}"
            f" with out_shape={out_shape}, in_shape={in_shape}), the hand formula gives {hand_shape}"
        )
        if hand_shape == _transposed_shape(out_shape, in_shape, order, layout):
            msg += (
                " — it looks transposed: the gradient of a scalar f has the shape of X"
                if out_shape == ()
                else " — it looks transposed (denominator layout?); numerator layout puts the output axes first"
            )
        return CheckResult(ok=False, hand_shape=hand_shape, message=msg, **base)

    rng = np.random.default_rng(seed)
    if directions is None and math.prod(expected) > DENSE_LIMIT:
        directions = 3
    if directions:
        D = np.asarray(hand(x, *args), np.float64)
        F = lambda z: f(z, *args)
        witnesses = _check_directions(F, D, x, order, layout, out_shape, rtol, atol, fd_rtol, directions, rng)
        mode = "directions"
    else:
        v = jax.device_put(np.asarray(rng.standard_normal(in_shape), dtype))  # no staging compile
        arrays = {k: np.asarray(a, np.float64) for k, a in program(x, v, args).items()}
        D = arrays.pop("hand")
        witnesses = _dense_witnesses(
            arrays, D, np.asarray(v, np.float64), dtype, order, layout, out_shape, in_shape, rtol, atol, fd_rtol
        )
        mode = "dense"
    # A check passes only when the autodiff witnesses ran: an empty set of witnesses proves nothing.
    ok = all(k in witnesses for k in ("jacfwd", "jacrev")) and all(w.ok for w in witnesses.values())
    result = CheckResult(ok=ok, hand_shape=D.shape, witnesses=witnesses, mode=mode, **base)
    result.message = _message(result, D, witnesses, arrays.get("jacrev") if mode == "dense" else None)
    return result


def _dense_witnesses(arrays, D, v, dtype, order, layout, out_shape, in_shape, rtol, atol, fd_rtol):
    refs = {k: arrays[k] for k in ("jacfwd", "jacrev", "finite_diff") if k in arrays}
    if layout == "vec":
        o = out_shape if order == 1 else in_shape
        refs = {k: _to_vec_matrix(r, o, in_shape) for k, r in refs.items()}
        arrays["jacrev"] = refs["jacrev"]
    witnesses = {}
    fd_atol = _fd_rounding_floor(arrays, dtype, order)
    for k, R in refs.items():
        fd = k == "finite_diff"
        witnesses[k] = _compare(k, D, R, fd_rtol if fd else rtol, fd_atol if fd else atol)
    Dv = _apply_hand(D, v, order, layout, out_shape, in_shape)
    t = taylor_verdict(
        arrays["taylor_steps"], arrays["taylor_f0"], arrays["taylor_fh"], Dv, float(jnp.finfo(dtype).eps)
    )
    note = "" if t.ok else "(a correct derivative gives order 2; order 1 means the formula is wrong)"
    witnesses["taylor"] = Witness("taylor", t.ok, float(t.remainders[-1]), t.order, 1.8, note=note)
    return witnesses


def _fd_rounding_floor(arrays, dtype, order) -> float:
    """Absolute rounding error of a central difference, `~eps·|f(x)| / h` with the smallest step.

    Without it a derivative that is zero or cancels to nearly zero fails on rounding noise alone.
    First order only (for order 2 the witness program holds the gradient, not `f`).
    """
    if order != 1:
        return 0.0
    eps = float(jnp.finfo(dtype).eps)
    fscale = float(np.max(np.abs(arrays["taylor_f0"]))) if arrays["taylor_f0"].size else 0.0
    return 16 * eps * fscale / eps ** (1 / 3)


def _apply_hand(D, v, order, layout, out_shape, in_shape):
    """`D v` for the hand derivative D in its layout, as an array of the output's shape."""
    if layout == "vec":
        Dv = D @ np.ravel(v, order="F")
        o = out_shape if order == 1 else in_shape
        return np.reshape(Dv, o, order="F")
    k = len(in_shape)
    return np.tensordot(D, v, axes=k) if k else D * v


def _check_directions(f, D, x, order, layout, out_shape, rtol, atol, fd_rtol, n, rng):
    in_shape = tuple(x.shape)
    g = f if order == 1 else jax.grad(f)
    o_shape = out_shape if order == 1 else in_shape
    eps = float(jnp.finfo(x.dtype).eps)
    worst: dict[str, Witness] = {}
    for _ in range(n):
        v = jnp.asarray(rng.standard_normal(in_shape), x.dtype)
        u = jnp.asarray(rng.standard_normal(o_shape), x.dtype)
        Dv = _apply_hand(D, np.asarray(v, np.float64), order, layout, out_shape, in_shape)
        _, jv = jax.jvp(g, (x,), (v,))
        _, pull = jax.vjp(g, x)
        (uj,) = pull(u)
        # uᵀ J v two ways: hand (uᵀ (D v)) vs reverse mode ((uᵀ J) v).
        uDv = np.asarray([np.vdot(np.asarray(u, np.float64), Dv)])
        ujv = np.asarray([np.vdot(np.asarray(uj, np.float64), np.asarray(v, np.float64))])
        cands = {
            "jacfwd": _compare("jacfwd", Dv, np.asarray(jv, np.float64), rtol, atol),
            "jacrev": _compare("jacrev", uDv, ujv, rtol, atol),
            "finite_diff": _compare("finite_diff", Dv, np.asarray(fd_directional(g, x, v), np.float64), fd_rtol, 0.0),
        }
        for k, w in cands.items():
            if k not in worst or w.max_rel > worst[k].max_rel:
                worst[k] = w
        steps = taylor_steps(x, v)
        fh = _map(lambda h: g(x + h * v), steps)
        t = taylor_verdict(steps, g(x), fh, Dv, eps)
        tw = Witness("taylor", t.ok, float(t.remainders[-1]), t.order, 1.8)
        if "taylor" not in worst or not tw.ok:
            worst["taylor"] = tw
    return worst


def _message(result: CheckResult, D: np.ndarray, witnesses: dict[str, Witness], ref=None) -> str:
    status = "ok" if result.ok else "FAILED"
    head = f"check '{result.name}' {status} ({result.dtype}, derivative shape {result.shape}, {result.mode})"
    lines = [head] + ["  " + w.describe() + ("" if w.ok else "  <-- fails") for w in witnesses.values()]
    if not result.ok and ref is not None and D.ndim == 2 and D.shape == ref.shape[::-1]:
        scale = max(float(np.max(np.abs(ref))), 1e-300)
        if np.max(np.abs(D - ref.T)) <= 1e-8 * scale:
            lines.append(
                "  the hand value equals the TRANSPOSE of autodiff's Jacobian: it is in denominator "
                "layout (or transposed); mmljax uses numerator layout, J[m, n] = df_m/dx_n"
            )
    return "\n".join(lines)


class MinimiserResult(eqx.Module):
    """Outcome of `check_minimiser` (an `equinox.Module`; numbers are Python floats).

    **Fields:** `name`, `ok`, `kind` (the verdict of the shared second-order test: "minimum",
    "maximum", "saddle", "degenerate" or "not_stationary"), `dtype`, `grad_norm`, `relative_step`
    (`||H⁺g|| / max(||params||, 1)`: how far a Newton step moves the claimed minimiser, relative),
    `min_eigenvalue`, `max_eigenvalue` (of the Hessian there), `positive_definite` (every eigenvalue
    above `eig_tol · max|λ|`), `tol`, `eig_tol`, `message`.
    """

    name: str = eqx.field(static=True)
    ok: bool = eqx.field(static=True)
    kind: str = eqx.field(static=True)
    dtype: str = eqx.field(static=True)
    grad_norm: float
    relative_step: float
    min_eigenvalue: float
    max_eigenvalue: float
    positive_definite: bool = eqx.field(static=True)
    tol: float = eqx.field(static=True)
    eig_tol: float = eqx.field(static=True)
    message: str = eqx.field(static=True, default="")

    @property
    def gradient_norm(self) -> float:
        """Former name of `grad_norm`."""
        return self.grad_norm

    def __str__(self) -> str:
        return self.message

    def summary(self) -> str:
        return self.message

    def raise_if_failed(self) -> MinimiserResult:
        if not self.ok:
            raise CheckFailed(self.message)
        return self

    def to_dict(self) -> dict[str, Any]:
        names = (
            "name",
            "ok",
            "kind",
            "dtype",
            "grad_norm",
            "relative_step",
            "min_eigenvalue",
            "max_eigenvalue",
            "positive_definite",
            "tol",
            "eig_tol",
            "message",
        )
        return {
            k: (_finite_or_none(v) if isinstance(v, float) else v) for k, v in ((k, getattr(self, k)) for k in names)
        }


@functools.lru_cache(maxsize=64)
def _minimiser_program(loss: Callable, has_args: bool) -> Callable:
    """`(g, H)` of `loss` at a flat point, one compiled program per loss function (data traced)."""

    @eqx.filter_jit
    def program(params, args):
        fp = FlatProblem(loss, params, args if has_args else None, "check_minimiser")
        x = fp.x0
        return x, jax.grad(fp.f)(x, args), jax.hessian(fp.f)(x, args)

    return program


def check_minimiser(
    loss: Callable,
    params: Any,
    *,
    args: Any = None,
    name: str | None = None,
    tol: float | None = None,
    eig_tol: float | None = None,
) -> MinimiserResult:
    """Check that `params` is a strict local minimiser of the scalar `loss(params)` (or `loss(params, args)`).

    The shared second-order minimum test (also `mmljax.analysis.classify_critical_point`), from the
    lectures with GUIDE.md's errata: the gradient vanishes — measured scale-free as the relative
    Newton step `||H⁺ g|| / max(||params||, 1)` (a gradient along a numerically flat direction counts
    as `|vᵀg| / max|λ|`), at most `tol` (default `sqrt(eps)`: 1.5e-8 in float64, 3.5e-4 in float32) —
    and the Hessian is positive *definite*: every eigenvalue above `eig_tol · max|λ|` (default
    `10·P·eps`; zero eigenvalues are inconclusive, so they fail). `params` may be an array or any
    pytree (dicts, equinox modules), flattened by `ravel_vec`.

    **Raises:** `TypeError`/`ValueError` for a loss of the wrong arity or a non-scalar loss, complex,
    integer, non-finite or 0-size parameters, and bad tolerances.
    """
    where = "check_minimiser"
    check_loss_call(loss, args, where)
    name = name or getattr(loss, "__name__", "minimiser")
    args = check_args(args, f"{where}[{name}]")
    params = check_params(params, f"{where}[{name}]", "params")
    P, dtype = param_size_dtype(params)
    tol, eig_tol = check_tolerances(tol, eig_tol, dtype, P, f"{where}[{name}]")
    try:
        program = _minimiser_program(loss, args is not None)
    except TypeError:  # an unhashable loss (an equinox module holding arrays)
        program = _minimiser_program.__wrapped__(loss, args is not None)
    flat, g, H = program(params, args)
    return minimiser_verdict(name, flat, g, H, tol, eig_tol)


def minimiser_verdict(name: str, flat, g, H, tol: float | None = None, eig_tol: float | None = None) -> MinimiserResult:
    """`check_minimiser`'s verdict from a gradient `g (P,)` and Hessian `H (P, P)` already computed at the
    flattened candidate `flat (P,)` (`ravel_vec` order), by the shared minimum test."""
    flat = jnp.asarray(flat)
    dtype = flat.dtype
    n = flat.size
    tol, eig_tol = check_tolerances(tol, eig_tol, dtype, n, f"check_minimiser[{name}]")
    g = np.asarray(g, np.float64).reshape(n)
    H = np.asarray(H, np.float64).reshape(n, n)
    for what, arr in (("gradient", g), ("Hessian", H)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(
                f"check_minimiser[{name}]: the {what} is not finite at params; the loss must be twice "
                f"differentiable and finite there"
            )
    test, _ = dense_test(jnp.asarray(g), jnp.asarray(H), jnp.asarray(np.asarray(flat, np.float64)), tol, eig_tol)
    kind = KINDS[int(test.kind)]
    step = float(test.relative_step)
    lmin, lmax = float(test.min_eigenvalue), float(test.max_eigenvalue)
    gnorm = float(np.linalg.norm(g))
    pd = bool(int(test.n_positive) == n)
    stationary = step <= tol
    ok = bool(pd and stationary)
    status = "ok" if ok else "FAILED"
    msg = (
        f"minimiser '{name}' {status} ({dtype}, {n} parameters): gradient norm {gnorm:.3g}, "
        f"relative Newton step {step:.3g} (tol {tol:.1g}), Hessian eigenvalues in [{lmin:.3g}, {lmax:.3g}]"
    )
    if not stationary:
        msg += " — the gradient does not vanish there: not a stationary point"
    if not pd:
        msg += (
            " — the Hessian is not positive definite (a zero eigenvalue is inconclusive, a negative one"
            " means a saddle or maximum)"
        )
    return MinimiserResult(
        name=name,
        ok=ok,
        kind=kind,
        dtype=str(dtype),
        grad_norm=gnorm,
        relative_step=step,
        min_eigenvalue=lmin,
        max_eigenvalue=lmax,
        positive_definite=pd,
        tol=tol,
        eig_tol=eig_tol,
        message=msg,
    )
