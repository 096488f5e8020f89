"""Input samplers with explicit domains: float64 numpy arrays from a `numpy.random.Generator`.

numpy draws cost nothing to compile, which keeps `mmljax check` fast; the runner converts the
arrays to JAX arrays.
"""

from __future__ import annotations

import numpy as np


def normal(rng: np.random.Generator, shape=()) -> np.ndarray:
    """Standard normal entries."""
    return rng.standard_normal(tuple(np.atleast_1d(shape)) if shape != () else ())


def positive(rng: np.random.Generator, shape=(), low: float = 0.5, high: float = 2.0) -> np.ndarray:
    """Uniform on `[low, high]`: the domain of `log`, `sqrt`, `x^p`."""
    return rng.uniform(low, high, shape)


def well_conditioned(rng: np.random.Generator, n: int) -> np.ndarray:
    """An `(n, n)` matrix `2 I + 0.5 N / sqrt(n)`: invertible, condition number below ~10."""
    return 2.0 * np.eye(n) + 0.5 * rng.standard_normal((n, n)) / np.sqrt(n)


def spd(rng: np.random.Generator, n: int) -> np.ndarray:
    """A symmetric positive-definite `(n, n)` matrix `M Mᵀ / n + I`."""
    M = rng.standard_normal((n, n))
    return M @ M.T / n + np.eye(n)
