"""One catalogue entry (`Identity`) and the runner that checks it at several sizes and draws.

An identity is data: the function, its hand-derived derivative (or closed-form minimiser), a
sampler that draws valid inputs, its source. `run_identity` feeds it to `check_derivative` /
`check_minimiser` at each size and draw and keeps the worst errors.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import jax
import jax.numpy as jnp
import numpy as np

from ..checking import _minimiser_result, _program, _run_check, _Spec

__all__ = ["Identity", "IdentityReport", "run_identity", "require_x64"]

Sample = Callable[[np.random.Generator, int], tuple[Any, tuple]]


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
      `Generator` `rng` (float64 arrays; explicit domains:
      positive for `log`, SPD for `log det`, well-conditioned for inverses).
    - `sizes`, `medium_sizes`: sizes tried by `--sizes small` / `--sizes medium`.
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
    sizes: tuple[int, ...] = (2, 3, 5)
    medium_sizes: tuple[int, ...] = (8, 16, 24)
    expect_fail: bool = False
    rtol: float | None = None
    atol: float | None = None
    fd_rtol: float | None = None
    note: str = ""

    def __post_init__(self):
        if (self.derivative is None) == (self.minimiser is None):
            raise ValueError(f"Identity {self.name!r}: give exactly one of derivative= or minimiser=")
        if not callable(self.f) or not callable(self.sample):
            raise TypeError(f"Identity {self.name!r}: f and sample must be callables")

    @property
    def kind(self) -> str:
        return "minimiser" if self.minimiser is not None else ("hessian" if self.order == 2 else "jacobian")


@dataclass
class IdentityReport:
    """Worst-case outcome of one identity over its sizes and draws.

    `status` is "pass", "fail", "known wrong" (an expected failure that failed: good) or
    "unexpected pass" (an expected failure that passed: bad). `passed` says whether the run
    counts it as a success.
    """

    name: str
    source: str
    domain: str
    kind: str
    status: str
    checker_ok: bool
    autodiff_rel: float
    finite_diff_rel: float
    taylor_order: float
    shapes: list[tuple[int, ...]] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    seconds: float = 0.0
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.status in ("pass", "known wrong")

    def to_dict(self) -> dict[str, Any]:
        fin = lambda v: float(v) if np.isfinite(v) else None
        return {
            "name": self.name,
            "source": self.source,
            "domain": self.domain,
            "kind": self.kind,
            "status": self.status,
            "passed": self.passed,
            "autodiff_rel": fin(self.autodiff_rel),
            "finite_diff_rel": fin(self.finite_diff_rel),
            "taylor_order": fin(self.taylor_order),
            "shapes": [list(s) for s in self.shapes],
            "sizes": list(self.sizes),
            "seconds": self.seconds,
            "message": self.message,
        }


def _as_jax(a):
    return jax.tree_util.tree_map(jnp.asarray, a)


def require_x64(where: str) -> None:
    if not jax.config.read("jax_enable_x64"):
        raise RuntimeError(
            f"{where} checks in float64; enable it first with "
            "jax.config.update('jax_enable_x64', True) (the mmljax CLI does this for you)"
        )


def run_identity(identity: Identity, *, sizes: str | tuple[int, ...] = "small", seed: int = 0, draws: int = 2) -> IdentityReport:
    """Check one identity at each of its sizes, `draws` random inputs each, in float64."""
    require_x64("run_identity")
    size_list = identity.sizes if sizes == "small" else identity.medium_sizes if sizes == "medium" else tuple(sizes)
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    ok_all, ad, fd, order = True, 0.0, 0.0, float("inf")
    shapes, worst_msg, first_msg = [], "", ""
    # One compiled witness program per identity, reused across draws of the same size.
    program = None if identity.derivative is None else _program(identity.f, identity.derivative, identity.order)
    min_program = jax.jit(lambda t, a: (jax.grad(identity.f)(t, *a), jax.hessian(identity.f)(t, *a)))
    for size in size_list:
        for _ in range(draws):
            x, args = identity.sample(rng, size)
            x, args = _as_jax(x), tuple(_as_jax(a) for a in args)
            if identity.minimiser is not None:
                theta = jnp.asarray(identity.minimiser(*args))
                g, H = min_program(theta, args)
                r = _minimiser_result(identity.name, jnp.ravel(theta), g, H, identity.rtol)
                shapes.append(tuple(np.shape(theta)))
                ad = max(ad, r.relative_step)
            else:
                r = _run_check(
                    program, identity.f, identity.derivative, x, tuple(args),
                    _Spec(identity.order, identity.layout, identity.rtol, identity.atol, identity.fd_rtol),
                    identity.name, None, int(rng.integers(2**31)),
                )
                shapes.append(tuple(np.shape(x)))
                if r.witnesses:
                    ad = max(ad, r.autodiff_rel)
                    fd = max(fd, r.finite_diff_rel) if "finite_diff" in r.witnesses else fd
                    tw = r.witnesses.get("taylor")
                    if tw is not None and np.isfinite(tw.max_rel):
                        order = min(order, tw.max_rel)
                else:
                    ad = float("inf")
            first_msg = first_msg or r.message
            if not r.ok and ok_all:
                worst_msg = r.message
            ok_all = ok_all and r.ok
    if identity.expect_fail:
        status = "known wrong" if not ok_all else "unexpected pass"
    else:
        status = "pass" if ok_all else "fail"
    return IdentityReport(
        name=identity.name,
        source=identity.source,
        domain=identity.domain,
        kind=identity.kind,
        status=status,
        checker_ok=ok_all,
        autodiff_rel=ad,
        finite_diff_rel=fd if identity.minimiser is None else float("nan"),
        taylor_order=order if np.isfinite(order) else float("nan"),
        shapes=shapes,
        sizes=list(size_list),
        seconds=time.perf_counter() - t0,
        message=worst_msg or first_msg,
    )
