"""The chain rule as a product of Jacobian matrices, with the shape bookkeeping spelled out.

`chain(dL/de, de/dc, dc/dx)` multiplies the stages `df/dg · dg/dh · dh/dx` (numerator layout:
stage `i` is `(outputs_i × inputs_i)`) after checking that each stage's inputs are the next
stage's outputs. A mismatch names the two stages and their shapes: `(M×L) · (L'×N): L != L'`.

Matrix-valued stages enter in their `vec` form (Lecture 2): the Jacobian of `z` w.r.t. a matrix
`A` is the rank-3 tensor `dz/dA`, and `d z / d vec(A)` (from `mmljax.jacobian_matrix`) is the
matrix the chain rule multiplies.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ._validate import reject_complex

__all__ = ["chain"]


def _fmt(shape: tuple[int, ...]) -> str:
    return "(" + "×".join(str(s) for s in shape) + ")"


def chain(
    *jacobians: ArrayLike, names: Sequence[str] | None = None
) -> Float[Array, "M N"] | Float[Array, " N"] | Float[Array, " M"] | Float[Array, ""]:
    """The product `J_1 · J_2 ⋯ J_m` of per-stage Jacobians, checked stage by stage.

    **Arguments:**

    - `jacobians`: 2-D arrays `(M_i, N_i)` in numerator layout, outermost stage first, with
      `N_i == M_{i+1}`. A 1-D first stage is the gradient of a scalar (the row `1 × N`); a 1-D
      last stage is the derivative w.r.t. a scalar (the column `M × 1`).
    - `names`: optional labels for the stages (e.g. `("dL/de", "de/dc", "dc/dx")`) used in errors.

    **Returns:** the `(M_1, N_m)` product; its row (column) axis is dropped when the first (last)
    stage was 1-D, so `chain(grad, J)` is shaped like a gradient.

    **Raises:** `ValueError` naming both stages and shapes, `(M×L) · (L'×N): L != L'`, when
    consecutive stages do not fit; `ValueError` for a stage that is not a matrix (for a matrix
    variable use its `vec` form, `(out.size, in.size)`).
    """
    if not jacobians:
        raise ValueError("chain: give at least one Jacobian")
    m = len(jacobians)
    if names is None:
        names = [f"stage {i + 1}" for i in range(m)]
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"chain: names must be a sequence of strings, one per Jacobian; got {names!r}")
    names = list(names)
    if len(names) != m:
        raise ValueError(f"chain: got {m} Jacobians but {len(names)} names")
    mats, row, col = [], False, False
    for i, (J, name) in enumerate(zip(jacobians, names)):
        reject_complex(J, "chain", name)
        try:
            J = jnp.asarray(J)
        except TypeError:
            raise TypeError(f"chain: {name} must be a numeric array; got {type(J).__name__}") from None
        if J.ndim == 1 and i == 0 and m > 1:
            J, row = J[None, :], True
        elif J.ndim == 1 and i == m - 1 and m > 1:
            J, col = J[:, None], True
        elif J.ndim != 2:
            raise ValueError(
                f"chain: {name} has shape {J.shape}; chain multiplies Jacobian matrices (2-D, or 1-D "
                "as the first or last stage) — for a derivative w.r.t. a matrix use its vec form "
                "(out.size, in.size), e.g. mmljax.jacobian_matrix"
            )
        mats.append(J)
    for i in range(m - 1):
        a, b = mats[i].shape, mats[i + 1].shape
        if a[1] != b[0]:
            raise ValueError(
                f"chain: {names[i]} · {names[i + 1]} do not compose: {_fmt(a)} · {_fmt(b)}: "
                f"{a[1]} != {b[0]} — {names[i]} takes {a[1]} inputs but {names[i + 1]} gives {b[0]} outputs"
            )
    out = mats[0] if m == 1 else (mats[0] @ mats[1] if m == 2 else jnp.linalg.multi_dot(mats))
    if row:
        out = out[0]
    if col:
        out = out[..., 0]
    return out
