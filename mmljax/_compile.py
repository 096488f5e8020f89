"""The library's own compiled programs: `jax.jit` with the XLA options that suit them.

Programs the library compiles and calls itself (an eager `least_squares` or
`nonlinear_least_squares`) are built, on CPU, with XLA's loop emitters instead of its fusion
emitters: these programs consist of many small double-double kernels, which the loop emitters
compile in about 60% of the time and which then run at least as fast. The arithmetic is the same
(the least-squares results are tested bit for bit against the program a caller's `jax.jit` builds
around the solver). Inside a caller's transformation the plain program is used: options can only
be given to the outermost `jax.jit`.
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


def library_jit(fun: Callable, **jit_kwargs) -> Callable:
    """`jax.jit(fun, **jit_kwargs)`, compiled with `CPU_OPTIONS` when called outside a transformation on CPU.

    The returned function takes the arguments of `fun` (static ones by keyword: only the positional
    arguments are looked at for tracers) plus an optional keyword `devices_` (the devices the program
    will run on, e.g. a mesh's; default: the default backend's).
    """
    tuned = jax.jit(fun, compiler_options=CPU_OPTIONS, **jit_kwargs)
    plain = jax.jit(fun, **jit_kwargs)

    def call(*args, devices_: Any = None, **kwargs):  # keyword arguments are static: never traced
        leaves = jax.tree_util.tree_leaves(args)
        if any(isinstance(x, jax.core.Tracer) for x in leaves) or _platform(devices_) != "cpu":
            return plain(*args, **kwargs)
        return tuned(*args, **kwargs)

    call.plain = plain
    call.tuned = tuned
    call._cache_size = lambda: tuned._cache_size() + plain._cache_size()  # programs compiled so far
    return call
