"""The library's own compiled programs: `jax.jit` with the XLA options that suit them.

Programs the library compiles and calls itself (an eager `least_squares` or
`nonlinear_least_squares`, also under an eager `jax.vmap`) are built, on CPU, with XLA's loop
emitters instead of its fusion emitters: these programs consist of many small double-double
kernels, which the loop emitters compile in about 60% of the time and which then run at least as
fast. The arithmetic is the same (the least-squares results are tested bit for bit against the
program a caller's `jax.jit` builds around the solver). Inside a caller's `jax.jit`, `jax.grad`
and the like the plain program is used: options can only be given to the outermost `jax.jit`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

__all__ = ["CPU_OPTIONS", "library_jit"]

CPU_OPTIONS = {"xla_cpu_use_fusion_emitters": False}


def _platform(devices: Any) -> str:
    if devices is not None:
        return next(iter(devices)).platform
    return jax.default_backend()


def _outside_any_trace(x: Any) -> bool:
    """A concrete value, or one batched by eager `jax.vmap`s only (their batched program runs at the top
    level, so it can carry compiler options); False inside `jax.jit`, `jax.grad` and the like."""
    while isinstance(x, jax.core.Tracer):
        if type(x).__name__ != "BatchTracer" or not hasattr(x, "val"):
            return False
        x = x.val
    return True


def library_jit(fun: Callable, **jit_kwargs) -> Callable:
    """`jax.jit(fun, **jit_kwargs)`, compiled with `CPU_OPTIONS` when called on CPU outside any transformation
    but eager `jax.vmap`.

    The returned function takes the arguments of `fun` (static ones by keyword: only the positional
    arguments are looked at for tracers) plus an optional keyword `devices_` (the devices the program
    will run on, e.g. a mesh's; default: the default backend's).
    """
    tuned = jax.jit(fun, compiler_options=CPU_OPTIONS, **jit_kwargs)
    plain = jax.jit(fun, **jit_kwargs)

    def call(*args, devices_: Any = None, **kwargs):  # keyword arguments are static: never traced
        leaves = jax.tree_util.tree_leaves(args)
        if _platform(devices_) != "cpu" or not all(_outside_any_trace(x) for x in leaves):
            return plain(*args, **kwargs)
        return tuned(*args, **kwargs)

    call.plain = plain
    call.tuned = tuned
    call._cache_size = lambda: tuned._cache_size() + plain._cache_size()  # programs compiled so far
    return call
