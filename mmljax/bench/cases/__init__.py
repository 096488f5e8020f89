"""The benchmark cases, numbered, selectable by name or number."""

from __future__ import annotations

import fnmatch

from ..case import Case
from .batched_fits import LS_BOOTSTRAP, LS_EAGER
from .fits import LS_FIT
from .least_squares import LS_GRADIENT, LS_HESSIAN, LS_HVP
from .matrix import MATRIX_GRAD, VEC_KRON
from .mlp import MLP_GAUSS_NEWTON, MLP_GRADIENT, MLP_HESSIAN, MLP_JACOBIAN
from .nonlinear import NLS_STRD

CASES: tuple[Case, ...] = (
    LS_GRADIENT,
    LS_HESSIAN,
    LS_HVP,
    MLP_GRADIENT,
    MLP_JACOBIAN,
    MLP_GAUSS_NEWTON,
    MLP_HESSIAN,
    VEC_KRON,
    MATRIX_GRAD,
    LS_FIT,
    NLS_STRD,
    LS_BOOTSTRAP,
    LS_EAGER,
)


def select(patterns: list[str] | None) -> list[Case]:
    """Cases whose name matches a pattern (exact, substring or glob) or whose number is given."""
    if not patterns:
        return list(CASES)
    chosen = []
    for pat in patterns:
        hits = [
            c for c in CASES if pat == str(c.number) or pat == c.name or pat in c.name or fnmatch.fnmatch(c.name, pat)
        ]
        if not hits:
            names = ", ".join(f"{c.name} ({c.number})" for c in CASES)
            raise ValueError(f"--case {pat!r} matches no benchmark case; choose from: {names}")
        chosen += [c for c in hits if c not in chosen]
    return [c for c in CASES if c in chosen]
