"""One catalogue entry (`Identity`) and the runner that checks it at several sizes and draws.

An identity is data: the function, its hand-derived derivative (or closed-form minimiser), a
sampler that draws valid inputs, its source. `run_identity` feeds it to the checker of
`mmljax.checking` at each size and draw and keeps the worst errors of each witness.

Speed. A row compiles one witness program (hand value, jacfwd, jacrev, finite differences and the
Taylor evaluations together) per input shape and reuses it for every draw of that shape. The
programs are tiny, so XLA's compile time dominates the check. Programs for small inputs are
compiled with `FAST_COMPILE`: LLVM optimisation level 0 and XLA:CPU's older loop emitters instead
of its fusion emitters, which cuts compile time about fourfold on this kind of program (measured:
0.12 s instead of 0.50 s CPU per program). The arithmetic stays IEEE float64 (no fast-math either
way), but the unoptimised build evaluates some expressions differently, so values can differ
from the optimised build in the last bit or two (measured: ≤ 5e-16 relative; finite differences
divide that by their step, giving ~4e-11 relative: far below their 1e-6 tolerance). XLA builds that lack
one of these options fall
back to fewer options.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from .._json import json_safe
from .._validate import check_int
from ..checking import CheckSpec, check_derivative, is_array_point, minimiser_verdict, run_witnesses, witness_program

__all__ = ["Identity", "IdentityReport", "run_identity", "require_x64", "FAST_COMPILE"]

Sample = Callable[[np.random.Generator, int], tuple[Any, tuple]]

# XLA options for the witness programs of small inputs (see the module docstring), with fallbacks
# for XLA versions that lack an option.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}
_COMPILE_OPTIONS = [FAST_COMPILE, {"xla_backend_optimization_level": 0}, None]
# Above this many input elements the optimised build pays for itself at run time.
_FAST_COMPILE_MAX_ELEMENTS = 4096


@dataclass(frozen=True)
class Identity:
    """A hand-derived derivative identity, checked three ways.

    **Fields:**

    - `name`, `source` (lecture section, Matrix Cookbook equation, textbook), `domain`
      ("scalar", "vector", "matrix", "models", "lectures" or your own).
    - `f(x, *args)`: the function, differentiated with respect to its first argument `x`.
    - `derivative(x, *args)`: the hand formula in mmljax's layout — the Jacobian
      (`out_shape + in_shape`), its `vec` matrix when `layout="vec"`, or the Hessian when
      `order=2`. Leave `None` for a minimiser entry.
    - `minimiser(*args)`: a hand-derived closed-form minimiser of the scalar `f(·, *args)`
      (checked by `check_minimiser`: vanishing gradient, positive-definite Hessian).
    - `sample(rng, size) -> (x, args)`: draws a valid input of the given size from the numpy
      `Generator` `rng` (float64 arrays, or for `x` any pytree of them, e.g. a dict of parameters,
      whose hand derivative has the same structure, as in `check_derivative`; explicit domains:
      positive for `log`, SPD for `log det`, well-conditioned for inverses). `args` is a tuple.
    - `sizes`, `medium_sizes`: sizes tried by `--sizes small` / `--sizes medium`. Each new input
      shape compiles a new witness program; a row whose input shape does not depend on the size
      (a scalar, a fixed parameter vector) repeats one size, e.g. `(1, 1, 1)`: three groups of
      draws sharing one compiled program.
    - `expect_fail`: a known-wrong formula kept so the checker shows it rejects it.
    - `rtol`, `atol`, `fd_rtol`: only where the defaults do not fit; `note` says why.
    """

    name: str
    source: str
    f: Callable
    sample: Sample
    derivative: Callable | None = None
    minimiser: Callable | None = None
    order: Literal[1, 2] = 1
    layout: Literal["tensor", "vec"] = "tensor"
    domain: str = "custom"
    sizes: tuple[int, ...] = (2, 4)
    medium_sizes: tuple[int, ...] = (8, 16, 24)
    expect_fail: bool = False
    rtol: float | None = None
    atol: float | None = None
    fd_rtol: float | None = None
    note: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"Identity: name must be a non-empty string; got {self.name!r}")
        if (self.derivative is None) == (self.minimiser is None):
            raise ValueError(f"Identity {self.name!r}: give exactly one of derivative= or minimiser=")
        if not callable(self.f) or not callable(self.sample):
            raise TypeError(f"Identity {self.name!r}: f and sample must be callables")
        if self.order not in (1, 2):
            raise ValueError(f"Identity {self.name!r}: order must be 1 or 2; got {self.order!r}")
        if self.layout not in ("tensor", "vec"):
            raise ValueError(f"Identity {self.name!r}: layout must be 'tensor' or 'vec'; got {self.layout!r}")
        for what in ("sizes", "medium_sizes"):
            val = getattr(self, what)
            if not isinstance(val, tuple) or not val or not all(isinstance(s, int) and s > 0 for s in val):
                raise ValueError(
                    f"Identity {self.name!r}: {what} must be a non-empty tuple of positive ints; got {val!r}"
                )

    @property
    def kind(self) -> str:
        return "minimiser" if self.minimiser is not None else ("hessian" if self.order == 2 else "jacobian")


@dataclass
class IdentityReport:
    """Worst-case outcome of one identity over its sizes and draws.

    `status` is "pass", "fail", "known wrong" (an expected failure that failed: good),
    "unexpected pass" (an expected failure that passed: bad) or "error" (the row's own code
    raised). `passed` says whether the run counts it as a success.

    `witnesses` holds the worst value of each witness over all draws: for derivative rows the
    relative errors "jacfwd", "jacrev", "finite_diff" and the lowest observed "taylor_order"
    (NaN when every remainder sat at the rounding floor); for minimiser rows the largest
    "newton_step" (relative) and the smallest "min_eigenvalue" of the Hessian.
    `autodiff_rel`, `finite_diff_rel` and `taylor_order` summarise them (for minimisers
    `autodiff_rel` is the relative Newton step). `checks` counts the checks run and `failed`
    those that failed; `message` is the checker's report of the first failing check (or of the
    first check when all passed), prefixed with the size, draw and input shape.
    """

    name: str
    source: str
    domain: str
    kind: str
    status: str
    autodiff_rel: float
    finite_diff_rel: float
    taylor_order: float
    shapes: list[tuple[int, ...]] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    seconds: float = 0.0
    message: str = ""
    witnesses: dict[str, float] = field(default_factory=dict)
    checks: int = 0
    failed: int = 0
    expect_fail: bool = False
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.status in ("pass", "known wrong")

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "name": self.name,
                "source": self.source,
                "domain": self.domain,
                "kind": self.kind,
                "status": self.status,
                "passed": self.passed,
                "expect_fail": self.expect_fail,
                "autodiff_rel": self.autodiff_rel,
                "finite_diff_rel": self.finite_diff_rel,
                "taylor_order": self.taylor_order,
                "witnesses": dict(self.witnesses),
                "shapes": [list(s) for s in self.shapes],
                "sizes": list(self.sizes),
                "checks": self.checks,
                "failed": self.failed,
                "seconds": self.seconds,
                "message": self.message,
                "note": self.note,
            }
        )


def _to_device(a):
    """numpy (or Python) leaves -> JAX arrays without compiling anything (`jnp.asarray` of a
    numpy array compiles a small staging program per shape)."""
    return jax.tree_util.tree_map(
        lambda leaf: leaf if isinstance(leaf, jax.Array) else jax.device_put(np.asarray(leaf)), a
    )


def require_x64(where: str) -> None:
    """Raise `RuntimeError` naming `where` unless `jax_enable_x64` is on (the checks run in float64)."""
    if not jax.config.read("jax_enable_x64"):
        raise RuntimeError(
            f"{where} checks in float64; enable it first with "
            "jax.config.update('jax_enable_x64', True) (the mmljax CLI does this for you)"
        )


_EXECUTE_LOCK = threading.Lock()


class _Compiled:
    """A jitted function compiled once per argument signature, small ones with `FAST_COMPILE`."""

    def __init__(self, jitted):
        self._jitted = jitted
        self._cache: dict = {}

    def __call__(self, *args):
        leaves, tree = jax.tree_util.tree_flatten(args)
        key = (tree, tuple((np.shape(a), str(a.dtype), bool(getattr(a, "weak_type", False))) for a in leaves))
        exe = self._cache.get(key)
        if exe is None:
            lowered = self._jitted.lower(*args)
            small = sum(math.prod(np.shape(a)) for a in leaves) <= _FAST_COMPILE_MAX_ELEMENTS
            exe = _compile(lowered) if small else lowered.compile()
            self._cache[key] = exe
        # Compile in parallel, execute one program at a time: two XLA:CPU executions started
        # from two Python threads can deadlock on the shared intra-op thread pool on a 2-core
        # machine (seen with `mmljax check --sizes medium`).
        with _EXECUTE_LOCK:
            return jax.block_until_ready(exe(*args))


def _compile(lowered):
    """Compile with the first option set in `_COMPILE_OPTIONS` this XLA accepts (remembered)."""
    while True:
        options = _COMPILE_OPTIONS[0]
        if options is None:
            return lowered.compile()
        try:
            return lowered.compile(options)
        except Exception as e:
            if "option" not in str(e).lower() or len(_COMPILE_OPTIONS) == 1:
                raise
            if _COMPILE_OPTIONS and _COMPILE_OPTIONS[0] is options:
                _COMPILE_OPTIONS.pop(0)


def _draw(identity: Identity, rng: np.random.Generator, size: int):
    out = identity.sample(rng, size)
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], (tuple, list))):
        raise TypeError(
            f"sample must return a pair (x, args) with args a tuple of extra arguments; got "
            f"{type(out).__name__}{'' if not isinstance(out, tuple) else ' of length ' + str(len(out))} — "
            "return (x, ()) when f takes no extra arguments"
        )
    x, args = out
    return _to_device(x), tuple(_to_device(a) for a in args)


def _check_sizes(sizes: Any, where: str) -> None:
    """`sizes` is "small", "medium" or a non-empty tuple of positive ints."""
    if isinstance(sizes, str):
        if sizes not in ("small", "medium"):
            raise ValueError(f"{where}: sizes must be 'small', 'medium' or a tuple of ints; got {sizes!r}")
        return
    if not isinstance(sizes, (tuple, list)) or not sizes:
        raise TypeError(f"{where}: sizes must be 'small', 'medium' or a non-empty tuple of ints; got {sizes!r}")
    for s in sizes:
        check_int(s, where, "sizes", minimum=1)


def run_identity(
    identity: Identity, *, sizes: str | tuple[int, ...] = "small", seed: int = 0, draws: int = 2
) -> IdentityReport:
    """Check one identity at each of its sizes, `draws` random inputs each, in float64.

    **Arguments:** `sizes` is "small" (the row's `sizes`), "medium" (its `medium_sizes`) or an
    explicit tuple of sizes; `seed` seeds the row's numpy `Generator`; `draws` inputs per size.

    **Returns:** an `IdentityReport`. Never raises on a wrong formula or on an error in the row's
    own code (status "error", with the exception in the message).
    """
    require_x64("run_identity")
    _check_sizes(sizes, "run_identity")
    seed = check_int(seed, "run_identity", "seed", minimum=0)
    if isinstance(draws, (int, np.integer)) and not isinstance(draws, bool) and draws < 1:
        raise ValueError(f"run_identity: draws must be at least 1; got {draws}")
    draws = check_int(draws, "run_identity", "draws", minimum=1)
    size_list = identity.sizes if sizes == "small" else identity.medium_sizes if sizes == "medium" else tuple(sizes)
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    is_min = identity.minimiser is not None
    worst = (
        {"newton_step": 0.0, "min_eigenvalue": math.inf}
        if is_min
        else {"jacfwd": 0.0, "jacrev": 0.0, "finite_diff": 0.0, "taylor_order": math.inf}
    )
    shapes: list[tuple[int, ...]] = []
    checks = failed = 0
    first_msg = fail_msg = ""
    error = None
    f = identity.f
    program = None if is_min else _Compiled(witness_program(f, identity.derivative, identity.order))
    min_program = _Compiled(jax.jit(lambda t, a: (jax.grad(f)(t, *a), jax.hessian(f)(t, *a)))) if is_min else None
    spec = CheckSpec(identity.order, identity.layout, identity.rtol, identity.atol, identity.fd_rtol)
    try:
        for size in size_list:
            for d in range(draws):
                x, args = _draw(identity, rng, size)
                if is_min:
                    theta = jnp.asarray(identity.minimiser(*args))
                    g, H = min_program(theta, args)
                    r = minimiser_verdict(identity.name, jnp.ravel(theta), g, H, identity.rtol)
                    shape = tuple(np.shape(theta))
                    worst["newton_step"] = max(worst["newton_step"], r.relative_step)
                    worst["min_eigenvalue"] = min(worst["min_eigenvalue"], r.min_eigenvalue)
                else:
                    seed_d = int(rng.integers(2**31))
                    if is_array_point(x):
                        r = run_witnesses(program, f, identity.derivative, x, args, spec, identity.name, None, seed_d)
                        shape = tuple(np.shape(x))
                    else:  # a pytree point: the checker flattens it (one compilation per draw)
                        r = check_derivative(
                            lambda z, a=args: f(z, *a),
                            lambda z, a=args: identity.derivative(z, *a),
                            x,
                            order=identity.order,
                            layout=identity.layout,
                            rtol=identity.rtol,
                            atol=identity.atol,
                            fd_rtol=identity.fd_rtol,
                            name=identity.name,
                            seed=seed_d,
                        )
                        shape = (sum(int(np.size(leaf)) for leaf in jax.tree_util.tree_leaves(x)),)
                    for k, w in r.witnesses.items():
                        if k == "taylor":
                            if np.isfinite(w.max_rel):
                                worst["taylor_order"] = min(worst["taylor_order"], w.max_rel)
                        else:
                            worst[k] = max(worst[k], w.max_rel)
                    if not r.witnesses:  # the hand formula had the wrong shape or raised
                        worst["jacfwd"] = worst["jacrev"] = worst["finite_diff"] = math.inf
                shapes.append(shape)
                checks += 1
                where = f"[size {size}, draw {d + 1}, input shape {shape}] "
                first_msg = first_msg or where + r.message
                if not r.ok:
                    failed += 1
                    fail_msg = fail_msg or where + r.message
    except Exception as e:  # the row's own code failed: report it, do not stop the run
        error = f"{identity.name!r} raised {type(e).__name__} at check {checks + 1}: {e}"

    if error is not None:
        status = "error"
    elif identity.expect_fail:
        status = "known wrong" if failed else "unexpected pass"
    else:
        status = "fail" if failed else "pass"
    if status == "unexpected pass":
        first_msg = (
            f"'{identity.name}' is marked expect_fail but passed all {checks} checks — "
            "the checker no longer rejects it (or the row is not wrong)\n" + first_msg
        )
    if is_min:
        ad, fd, order = worst["newton_step"], math.nan, math.nan
    else:
        ad = max(worst["jacfwd"], worst["jacrev"])
        fd, order = worst["finite_diff"], worst["taylor_order"]
        if not math.isfinite(order):
            order = math.nan
            worst["taylor_order"] = math.nan
    return IdentityReport(
        name=identity.name,
        source=identity.source,
        domain=identity.domain,
        kind=identity.kind,
        status=status,
        autodiff_rel=ad,
        finite_diff_rel=fd,
        taylor_order=order,
        shapes=shapes,
        sizes=list(size_list),
        seconds=time.perf_counter() - t0,
        message=error or fail_msg or first_msg,
        witnesses=worst,
        checks=checks,
        failed=failed,
        expect_fail=identity.expect_fail,
        note=identity.note,
    )
