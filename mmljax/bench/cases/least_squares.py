"""Cases 1 and 2: the least-squares loss `½||y − Φθ||²` — gradient, Hessian, Hessian-vector product.

Each point's data `Φ (N, D)`, `y (N,)`, `θ (D,)` is drawn on the device; numpy peers see the same
buffers (zero-copy on CPU).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from ... import derivatives as mjd
from ... import kernels
from ..case import Case, Point, Settings, Variant
from ._common import host, itemsize, normal, torch_or_reason, torch_sync, torch_tensor, torch_to_numpy

# Variant names the targets refer to.
HAND_GRAD = "hand −(y−Φθ)ᵀΦ"
JAX_GRAD = "jax.grad"
MJ_GRAD = "mmljax.gradient"
KERNEL_GRAD = "mmljax.least_squares_gradient (1 pass)"
NUMPY_GRAD = "numpy −Φᵀ(y−Φθ)"
READ_ONCE = "one read of Φ (Φθ)"
HAND_HESS = "hand Φ.T @ Φ"
JAX_HESS = "jax.hessian"
JACREV2 = "jax.jacrev(jax.jacrev)"
MJ_HESS = "mmljax.hessian"
GN_PATH = "mmljax.gauss_newton_matrix (vmap J, gram)"
GRAM = "mmljax.gram(Φ) (one triangle)"
NUMPY_GRAM = "numpy Φ.T @ Φ (syrk)"
HAND_HVP = "hand (Φv)ᵀΦ"
NAIVE_HVP = "hand Φ.T @ (Φ @ v) (explicit transpose)"
JVP_GRAD = "jax.jvp(jax.grad)"
MJ_HVP = "mmljax.hvp"
KERNEL_HVP = "mmljax.least_squares_hvp (1 pass)"
NUMPY_HVP = "numpy Φ.T @ (Φ @ v)"

# Below this size Φ sits in the caches and "% of bandwidth" would be meaningless.
_MEMORY_BOUND_BYTES = 64 * 2**20


def _loss(theta, Phi, y):
    r = y - Phi @ theta
    return 0.5 * jnp.sum(r * r)


def _data(settings: Settings, N: int, D: int):
    dt = settings.dtype
    Phi = normal(settings.seed, (N, D), dt, stream=1)
    theta = normal(settings.seed, (D,), dt, stream=2)
    y = Phi @ normal(settings.seed, (D,), dt, stream=3) + normal(settings.seed, (N,), dt, stream=4)
    return Phi, y, theta


def _fits(settings: Settings, N: int, D: int, copies: float = 1.0) -> bool:
    return N * D * itemsize(settings.dtype) * copies <= settings.memory_limit_bytes / 2


def _grid(settings: Settings, full_N, full_D, quick_pairs, tiny_pairs) -> list[tuple[int, int]]:
    pairs = settings.pick(list(itertools.product(full_N, full_D)), quick_pairs, tiny_pairs)
    return [(N, D) for N, D in pairs if _fits(settings, N, D)]


def _torch_variants(settings: Settings, build) -> list[Variant]:
    torch, why = torch_or_reason(settings.peers)
    if torch is None:
        return [] if not settings.peers else [Variant(build(None)[0], lambda *a: None, "peer", jit=False, skip=why)]
    name, fn, args = build(torch)
    return [Variant(name, lambda: torch_sync(torch, fn()), "peer", jit=False, args=args, to_numpy=torch_to_numpy)]


# --------------------------------------------------------------------------------------------
# Case 1: gradient


def _gradient_points(settings: Settings) -> Iterator[Point]:
    pairs = _grid(
        settings, (10**3, 10**4, 10**5, 10**6), (10, 100, 500), [(10**4, 100), (10**6, 100)], [(1000, 8), (4001, 8)]
    )
    for N, D in pairs:
        Phi, y, theta = _data(settings, N, D)
        nbytes = N * D * itemsize(settings.dtype)
        hPhi, hy, htheta = host(Phi, y, theta)

        def torch_build(torch, hPhi=hPhi, hy=hy, htheta=htheta):
            if torch is None:
                return ("torch.func.grad",)
            tP, ty, tt = (torch_tensor(torch, a) for a in (hPhi, hy, htheta))
            g = torch.func.grad(lambda t: 0.5 * torch.sum((ty - tP @ t) ** 2))
            return "torch.func.grad", lambda: g(tt), ()

        variants = [
            Variant(HAND_GRAD, lambda P, y, t: -((y - P @ t) @ P), "hand", bytes=2 * nbytes),
            Variant(JAX_GRAD, lambda P, y, t: jax.grad(_loss)(t, P, y), "autodiff", bytes=2 * nbytes),
            Variant(MJ_GRAD, lambda P, y, t: mjd.gradient(_loss)(t, P, y), "mmljax", bytes=2 * nbytes),
            Variant(KERNEL_GRAD, lambda P, y, t: kernels.least_squares_gradient(P, y, t), "kernel", bytes=nbytes),
            Variant(
                NUMPY_GRAD,
                lambda P, y, t: -(P.T @ (y - P @ t)),
                "peer",
                jit=False,
                args=(hPhi, hy, htheta),
                bytes=2 * nbytes,
            ),
            *_torch_variants(settings, torch_build),
            Variant(
                READ_ONCE,
                lambda P, y, t: P @ t,
                "bound",
                check=False,
                bytes=nbytes,
                note="not a gradient: the time of one streaming read of Φ, the floor for any gradient",
            ),
        ]
        yield Point(
            sizes={"N": N, "D": D},
            args=(Phi, y, theta),
            variants=variants,
            flops=4.0 * N * D,
            bytes=2.0 * nbytes,
            bound="memory" if nbytes >= _MEMORY_BOUND_BYTES else None,
            label=f"N={N:.0e} D={D}",
        )


LS_GRADIENT = Case(
    name="ls-gradient",
    number=1,
    title="Least-squares gradient ∇½||y − Φθ||² = −Φᵀ(y − Φθ)",
    description=(
        "Jitted hand formula (written (y−Φθ)ᵀΦ: no materialised transpose) vs jax.grad vs mmljax.gradient vs the "
        "row-blocked one-pass kernel, with numpy's two-pass formula and one read of Φ (the memory floor) for scale. "
        "Memory-bound for large N: % is of the measured streaming bandwidth, counting the reads each variant must do."
    ),
    points=_gradient_points,
    x_key="N",
    series_keys=("D",),
)


# --------------------------------------------------------------------------------------------
# Case 2a: Hessian


def _residual(theta, phi, y):
    return y - phi @ theta


def _hessian_points(settings: Settings) -> Iterator[Point]:
    pairs = _grid(
        settings, (10**3, 10**4, 10**5), (10, 100, 500), [(10**4, 100), (10**4, 500)], [(200, 12), (200, 170)]
    )
    for N, D in pairs:
        Phi, y, theta = _data(settings, N, D)
        (hPhi,) = host(Phi)
        full = 2.0 * N * D * D

        def torch_build(torch, hPhi=hPhi, y=y, theta=theta):
            if torch is None:
                return ("torch.func.hessian",)
            tP, ty, tt = (torch_tensor(torch, a) for a in (hPhi, np.asarray(y), np.asarray(theta)))
            h = torch.func.hessian(lambda t: 0.5 * torch.sum((ty - tP @ t) ** 2))
            return "torch.func.hessian", lambda: h(tt), ()

        variants = [
            Variant(HAND_HESS, lambda P, y, t: P.T @ P, "hand"),
            Variant(JAX_HESS, lambda P, y, t: jax.hessian(_loss)(t, P, y), "autodiff"),
            Variant(JACREV2, lambda P, y, t: jax.jacrev(jax.jacrev(_loss))(t, P, y), "autodiff"),
            Variant(MJ_HESS, lambda P, y, t: mjd.hessian(_loss)(t, P, y), "mmljax"),
            Variant(
                GN_PATH,
                lambda P, y, t: kernels.gauss_newton_matrix(_residual, t, P, y),
                "kernel",
                flops=kernels._flops_gram(N, D),
            ),
            Variant(GRAM, lambda P, y, t: kernels.gram(P), "kernel", flops=kernels._flops_gram(N, D)),
            Variant(NUMPY_GRAM, lambda P: P.T @ P, "peer", jit=False, args=(hPhi,), flops=1.0 * N * D * (D + 1)),
            *_torch_variants(settings, torch_build),
        ]
        yield Point(
            sizes={"N": N, "D": D},
            args=(Phi, y, theta),
            variants=variants,
            flops=full,
            bound="compute" if D >= 100 else None,
            label=f"N={N:.0e} D={D}",
            note="flops: 2ND² for the full product; numpy's syrk and gram do about half (counted as executed)",
        )


LS_HESSIAN = Case(
    name="ls-hessian",
    number=2,
    title="Least-squares Hessian ∇²½||y − Φθ||² = ΦᵀΦ",
    description=(
        "Jitted hand Φ.T @ Φ vs jax.hessian vs jacrev(jacrev) vs mmljax.hessian vs the structure-aware paths "
        "(per-example residual Jacobian by vmap then one-triangle JᵀJ; gram(Φ) directly) vs numpy's symmetric "
        "rank-k update. Compute-bound for D ≥ 100: % is of the measured matmul peak, counting executed flops."
    ),
    points=_hessian_points,
    x_key="N",
    series_keys=("D",),
)


# --------------------------------------------------------------------------------------------
# Case 2b: Hessian-vector product


def _hvp_points(settings: Settings) -> Iterator[Point]:
    pairs = _grid(settings, (10**3, 10**4, 10**5, 10**6), (10, 100, 500), [(10**5, 100)], [(1000, 8), (4001, 8)])
    for N, D in pairs:
        Phi, y, theta = _data(settings, N, D)
        v = normal(settings.seed, (D,), settings.dtype, stream=5)
        nbytes = N * D * itemsize(settings.dtype)
        hPhi, hv = host(Phi, v)

        def torch_build(torch, hPhi=hPhi, y=y, theta=theta, hv=hv):
            if torch is None:
                return ("torch.func.jvp(grad)",)
            tP, ty, tt, tv = (torch_tensor(torch, a) for a in (hPhi, np.asarray(y), np.asarray(theta), hv))
            g = torch.func.grad(lambda t: 0.5 * torch.sum((ty - tP @ t) ** 2))
            return "torch.func.jvp(grad)", lambda: torch.func.jvp(g, (tt,), (tv,))[1], ()

        variants = [
            Variant(HAND_HVP, lambda P, y, t, v: (P @ v) @ P, "hand", bytes=2 * nbytes),
            Variant(NAIVE_HVP, lambda P, y, t, v: P.T @ (P @ v), "alt", bytes=2 * nbytes),
            Variant(
                JVP_GRAD,
                lambda P, y, t, v: jax.jvp(lambda s: jax.grad(_loss)(s, P, y), (t,), (v,))[1],
                "autodiff",
                bytes=2 * nbytes,
            ),
            Variant(MJ_HVP, lambda P, y, t, v: mjd.hvp(_loss, t, v, P, y), "mmljax", bytes=2 * nbytes),
            Variant(KERNEL_HVP, lambda P, y, t, v: kernels.least_squares_hvp(P, v), "kernel", bytes=nbytes),
            Variant(NUMPY_HVP, lambda P, v: P.T @ (P @ v), "peer", jit=False, args=(hPhi, hv), bytes=2 * nbytes),
            *_torch_variants(settings, torch_build),
        ]
        yield Point(
            sizes={"N": N, "D": D},
            args=(Phi, y, theta, v),
            variants=variants,
            flops=4.0 * N * D,
            bytes=2.0 * nbytes,
            bound="memory" if nbytes >= _MEMORY_BOUND_BYTES else None,
            label=f"N={N:.0e} D={D}",
        )


LS_HVP = Case(
    name="ls-hvp",
    number=2,
    title="Least-squares Hessian-vector product ΦᵀΦv",
    description=(
        "Hand (Φv)ᵀΦ vs the same with an explicit transpose vs jvp(grad) vs mmljax.hvp vs the one-pass kernel, "
        "and numpy. Memory-bound for large N (% of streaming bandwidth)."
    ),
    points=_hvp_points,
    x_key="N",
    series_keys=("D",),
)
