"""A scoped float64 switch: compute in float64 without changing the global `jax_enable_x64`."""

from __future__ import annotations

import contextlib

import jax

__all__ = ["float64_scope"]


def float64_scope():
    """A context in which JAX creates float64 arrays, restoring the caller's setting afterwards.

    The closed-form solvers called eagerly promise float64 whatever the configuration; they keep
    that promise on the devices without ever changing the global `jax_enable_x64`.
    """
    if jax.config.read("jax_enable_x64"):
        return contextlib.nullcontext()
    scoped = getattr(jax, "enable_x64", None)
    if scoped is not None:
        return scoped(True)
    from jax.experimental import enable_x64  # pragma: no cover (older JAX)

    return enable_x64()
