"""Case 5: matrix derivatives through column-major vec.

- `d vec(AXB) / d vec(X) = Bᵀ ⊗ A` (an `n² × n²` matrix): hand `kron(Bᵀ, A)` vs
  `mmljax.jacobian_matrix` in forward, reverse and automatic mode.
- `d||Ax − y||² / dA = 2(Ax − y)xᵀ`: hand vs `jax.grad` vs `mmljax.gradient`.
"""

from __future__ import annotations

from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from ... import derivatives as mjd
from ..case import Case, Point, Settings, Variant
from ._common import host, itemsize, normal

HAND_KRON = "hand kron(Bᵀ, A)"
JM_FWD = "jacobian_matrix(mode='fwd')"
JM_REV = "jacobian_matrix(mode='rev')"
JM_AUTO = "jacobian_matrix(mode='auto')"
NUMPY_KRON = "numpy kron(Bᵀ, A)"
HAND_GRAD = "hand 2(Ax − y)xᵀ"
JAX_GRAD = "jax.grad"
MJ_GRAD = "mmljax.gradient"
NUMPY_GRAD = "numpy 2 outer(Ax − y, x)"


def _kron_points(settings: Settings) -> Iterator[Point]:
    for n in settings.pick((16, 32, 64), (16, 32), (3, 5)):
        A, X, B = (normal(settings.seed, (n, n), settings.dtype, stream=s) for s in (10, 11, 12))
        hA, hB = host(A, B)

        def jm(mode):
            return lambda A, X, B: mjd.jacobian_matrix(lambda Z: A @ Z @ B, mode=mode)(X)

        out_bytes = n**4 * itemsize(settings.dtype)
        yield Point(
            sizes={"n": n},
            args=(A, X, B),
            label=f"n={n}",
            variants=[
                Variant(HAND_KRON, lambda A, X, B: jnp.kron(B.T, A), "hand"),
                Variant(JM_FWD, jm("fwd"), "mmljax"),
                Variant(JM_REV, jm("rev"), "mmljax"),
                Variant(JM_AUTO, jm("auto"), "mmljax"),
                Variant(NUMPY_KRON, lambda A, B: np.kron(B.T, A), "peer", jit=False, args=(hA, hB)),
            ],
            note=f"output n² × n² = {out_bytes / 2**20:.1f} MiB; forward and reverse both cost n² passes "
            "(square X), so 'auto' may take either",
        )


VEC_KRON = Case(
    name="vec-kron",
    number=5,
    title="d vec(AXB) / d vec X = Bᵀ ⊗ A",
    description="Hand Kronecker product vs mmljax.jacobian_matrix (fwd, rev, auto) vs numpy.kron; X, A, B are n × n.",
    points=_kron_points,
    x_key="n",
)


def _sq(A, x, y):
    r = A @ x - y
    return jnp.sum(r * r)


def _grad_points(settings: Settings) -> Iterator[Point]:
    for n in settings.pick((64, 256, 1024), (1024,), (4, 9)):
        A = normal(settings.seed, (n, n), settings.dtype, stream=20)
        x = normal(settings.seed, (n,), settings.dtype, stream=21)
        y = normal(settings.seed, (n,), settings.dtype, stream=22)
        hA, hx, hy = host(A, x, y)
        yield Point(
            sizes={"n": n},
            args=(A, x, y),
            label=f"n={n}",
            variants=[
                Variant(HAND_GRAD, lambda A, x, y: jnp.outer(2 * (A @ x - y), x), "hand"),
                Variant(JAX_GRAD, lambda A, x, y: jax.grad(_sq)(A, x, y), "autodiff"),
                Variant(MJ_GRAD, lambda A, x, y: mjd.gradient(_sq)(A, x, y), "mmljax"),
                Variant(NUMPY_GRAD, lambda A, x, y: 2 * np.outer(A @ x - y, x), "peer", jit=False, args=(hA, hx, hy)),
            ],
        )


MATRIX_GRAD = Case(
    name="matrix-grad",
    number=5,
    title="d||Ax − y||² / dA = 2(Ax − y)xᵀ",
    description="Hand outer product vs jax.grad vs mmljax.gradient vs numpy; A is n × n.",
    points=_grad_points,
    x_key="n",
)
