"""Helpers shared by the tests: one definition of the relative error used in assertions."""

from __future__ import annotations

import numpy as np

import mmljax as mj


def rel_err(a, b) -> float:
    """Normwise relative error `max|a − b| / max|b|` of two arrays or pytrees of arrays.

    Pytrees are flattened with `mj.ravel_vec` (so any two structures with the same leaves in the
    same order compare); an all-zero `b` gives the absolute error.
    """
    a = np.asarray(mj.ravel_vec(a)[0], np.float64)
    b = np.asarray(mj.ravel_vec(b)[0], np.float64)
    assert a.shape == b.shape, f"rel_err: sizes differ, {a.shape} vs {b.shape}"
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))
