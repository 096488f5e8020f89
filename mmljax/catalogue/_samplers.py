"""Input samplers with explicit domains: float64 numpy arrays from a `numpy.random.Generator`.

numpy draws cost nothing to compile, which keeps `mmljax check` fast; the runner converts the
arrays to JAX arrays. Every sampler names its domain, so a row says where its identity holds:
positive for `log` and real powers, symmetric positive definite for `log det`, well conditioned
for inverses.
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


def symmetric(rng: np.random.Generator, n: int) -> np.ndarray:
    """A symmetric `(n, n)` matrix `(M + Mᵀ) / 2` (indefinite in general)."""
    M = rng.standard_normal((n, n))
    return 0.5 * (M + M.T)


def one_hot(rng: np.random.Generator, k: int) -> np.ndarray:
    """A length-`k` one-hot vector with its 1 at a uniformly random place: picks a table entry
    inside a compiled program, so one program checks a different random choice at every draw."""
    e = np.zeros(k)
    e[rng.integers(k)] = 1.0
    return e


def full_column_rank(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """An `(n, d)` matrix (`n >= d`) with orthonormal-ish columns scaled into `[1, 2]`:
    `XᵀX` is well conditioned (condition number at most 4)."""
    Q, _ = np.linalg.qr(rng.standard_normal((n, d)))
    return Q * rng.uniform(1.0, 2.0, d)
