"""Helpers shared by the cases: random data on the device, host views, optional peers."""

from __future__ import annotations

import functools
import importlib.util
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["normal", "host", "torch_or_reason", "sklearn_or_reason", "itemsize", "gib"]


HOST_DRAW_LIMIT = 1 << 20  # elements; smaller arrays are drawn by numpy and copied to the device


@functools.partial(jax.jit, static_argnums=(1, 2))
def _normal(key, shape, dtype):
    return jax.random.normal(key, shape, dtype)


def normal(seed: int, shape: tuple[int, ...], dtype: str, *, stream: int = 0) -> jax.Array:
    """Standard normal array on the default device, the same for the same `(seed, stream, shape, dtype)`.

    Large arrays are drawn on the device (no host copy of large designs); arrays of at most
    `HOST_DRAW_LIMIT` elements are drawn by numpy and copied, since compiling a device generator for
    each new shape takes longer than the copy.
    """
    shape = tuple(int(s) for s in shape)
    if math.prod(shape) <= HOST_DRAW_LIMIT:
        draws = np.random.default_rng([seed, stream]).standard_normal(shape)
        return jnp.asarray(draws.astype(np.dtype(dtype)))
    key = jax.random.fold_in(jax.random.key(seed), stream)
    return _normal(key, shape, jnp.dtype(dtype))


def host(*arrays: Any) -> tuple[np.ndarray, ...]:
    """numpy views of device arrays (zero-copy on CPU)."""
    return tuple(np.asarray(a) for a in arrays)


def itemsize(dtype: str) -> int:
    return np.dtype(dtype).itemsize


def gib(nbytes: float) -> float:
    return nbytes / 2**30


def torch_or_reason(peers: bool):
    """`(torch, "")` when peers are requested and PyTorch is importable, else `(None, why)`."""
    if not peers:
        return None, "peers not requested (--peers)"
    if importlib.util.find_spec("torch") is None:
        return None, "torch is not installed"
    import torch
    import torch.func  # noqa: F401

    return torch, ""


def sklearn_or_reason():
    if importlib.util.find_spec("sklearn") is None:
        return None, "scikit-learn is not installed"
    from sklearn import linear_model

    return linear_model, ""


def torch_tensor(torch, a: Any):
    """A torch tensor of `a` on the device JAX uses when torch can use it too (else the CPU)."""
    t = torch.from_numpy(np.array(a))
    if jax.devices()[0].platform == "gpu" and torch.cuda.is_available():
        t = t.cuda()
    return t


def torch_to_numpy(out: Any) -> Any:
    return jax.tree_util.tree_map(lambda t: t.detach().cpu().numpy() if hasattr(t, "detach") else t, out)


def torch_sync(torch, out):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out
