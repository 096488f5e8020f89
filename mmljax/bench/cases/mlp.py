"""Cases 3 and 4: the MLP of `mmljax.models` (`mlp`, tanh hidden layers).

- gradient of `½ Σ_n (y_n − f(x_n))²`: hand backprop (`mlp.hand_gradient`) vs `jax.grad` vs
  `mmljax.gradient`;
- per-example Jacobian `(n, P)` of the outputs w.r.t. all parameters (`ravel_vec` order): hand
  (`mlp.hand_jacobian`) vs `vmap(grad)` vs `jacrev`/`jacfwd` of the batched function vs
  `mmljax.jacobian(mode="auto")` vs `mmljax.per_example_jacobian`;
- Gauss-Newton matrix `JᵀJ` and, for a small MLP, the full Hessian.
"""

from __future__ import annotations

from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from ... import derivatives as mjd
from ... import kernels
from ...layout import ravel_vec
from ...models import mlp
from ..case import Case, Point, Settings, Variant
from ._common import torch_or_reason, torch_sync, torch_tensor, torch_to_numpy

HAND_GRAD = "hand backprop (mlp.hand_gradient)"
JAX_GRAD = "jax.grad"
MJ_GRAD = "mmljax.gradient"
TORCH_GRAD = "torch.func.grad"
HAND_JAC = "hand (mlp.hand_jacobian)"
VMAP_GRAD = "jax.vmap(jax.grad)"
JACREV = "jax.jacrev (batched f)"
JACFWD = "jax.jacfwd (batched f)"
MJ_JAC = "mmljax.jacobian(mode='auto')"
PER_EXAMPLE = "mmljax.per_example_jacobian"
TORCH_JAC = "torch.func.vmap(grad)"
HAND_GN = "hand (mlp.hand_gauss_newton)"
JACREV_GN = "jax.jacrev J, then J.T @ J"
VMAP_GN = "jax.vmap(jax.grad) J, then J.T @ J"
MJ_GN = "mmljax.gauss_newton_matrix"
HESS_REF = "jax.jacfwd(hand_gradient)"
JAX_HESS = "jax.hessian"
MJ_HESS = "mmljax.hessian_matrix"
JACREV2 = "jax.jacrev(jax.jacrev)"

TINY, SMALL, MEDIUM, LARGE_JAC = [3, 5, 4, 1], [8, 32, 32, 1], [16, 64, 64, 1], [32, 128, 128, 1]
GRAD_ARCHS = ([64, 128, 128, 1], [64, 512, 512, 512, 1])


def _setup(settings: Settings, sizes: list[int], n: int):
    dt = jnp.dtype(settings.dtype)
    key = jax.random.fold_in(jax.random.key(settings.seed), len(sizes) * 1000 + sizes[1])
    kp, kx, ky = jax.random.split(key, 3)
    params = mlp.init(kp, sizes, "tanh", dtype=dt)
    X = jax.random.normal(kx, (n, sizes[0]), dt)
    y = jax.random.normal(ky, (n,), dt)
    return mlp, params, X, y


def _gradient_flops(sizes: list[int], n: int) -> float:
    pairs = list(zip(sizes[:-1], sizes[1:]))
    forward = sum(a * b for a, b in pairs)
    backward_inputs = sum(a * b for a, b in pairs[1:])  # δ_{l−1} = δ_l A_l, not needed for layer 1
    return 2.0 * n * (2 * forward + backward_inputs)


def _arch(sizes: list[int]) -> str:
    return "[" + ",".join(map(str, sizes)) + "]"


def _torch_params(torch, params):
    return tuple(torch_tensor(torch, np.asarray(a)) for a in jax.tree_util.tree_leaves(params))


def _torch_apply(torch, flat_params, X):
    F = X
    L = len(flat_params) // 2
    for l in range(L):
        A, b = flat_params[2 * l], flat_params[2 * l + 1]
        F = F @ A.T + b
        if l < L - 1:
            F = torch.tanh(F)
    return F[..., 0]


# --------------------------------------------------------------------------------------------
# Case 3: gradient


def _gradient_points(settings: Settings) -> Iterator[Point]:
    batches = settings.pick((512, 4096, 16384), (4096,), (64,))
    archs = settings.pick(GRAD_ARCHS, GRAD_ARCHS, (TINY,))
    torch, why = torch_or_reason(settings.peers)
    for sizes in archs:
        for n in batches:
            mlp, params, X, y = _setup(settings, sizes, n)

            def loss(p, X, y, mlp=mlp):
                r = y - mlp.apply(p, X)
                return 0.5 * jnp.sum(r * r)

            variants = [
                Variant(HAND_GRAD, lambda p, X, y, mlp=mlp: mlp.hand_gradient(p, X, y), "hand"),
                Variant(JAX_GRAD, lambda p, X, y, loss=loss: jax.grad(loss)(p, X, y), "autodiff"),
                Variant(MJ_GRAD, lambda p, X, y, loss=loss: mjd.gradient(loss)(p, X, y), "mmljax"),
            ]
            if torch is not None:
                tp, tX, ty = (
                    _torch_params(torch, params),
                    torch_tensor(torch, np.asarray(X)),
                    torch_tensor(torch, np.asarray(y)),
                )
                g = torch.func.grad(lambda ps: 0.5 * torch.sum((ty - _torch_apply(torch, ps, tX)) ** 2))
                variants.append(
                    Variant(
                        TORCH_GRAD,
                        lambda g=g, tp=tp: torch_sync(torch, g(tp)),
                        "peer",
                        jit=False,
                        args=(),
                        to_numpy=lambda out: list(torch_to_numpy(out)),
                    )
                )
            elif settings.peers:
                variants.append(Variant(TORCH_GRAD, lambda: None, "peer", jit=False, skip=why))
            yield Point(
                sizes={"batch": n, "width": sizes[1], "depth": len(sizes) - 1},
                args=(params, X, y),
                variants=variants,
                flops=_gradient_flops(sizes, n),
                bound="compute" if sizes[1] >= 256 else None,
                label=f"{_arch(sizes)} batch {n}",
                note="flops: forward + weight gradients + input gradients of layers ≥ 2 (matrix products only)",
            )


MLP_GRADIENT = Case(
    name="mlp-gradient",
    number=3,
    title="MLP loss gradient (tanh), hand backprop vs autodiff",
    description=(
        "Hand backpropagation (mlp.hand_gradient) vs jax.grad vs mmljax.gradient (and torch.func.grad "
        "with --peers). Compute-bound for width ≥ 256: % of the measured matmul peak."
    ),
    points=_gradient_points,
    x_key="batch",
    series_keys=("width", "depth"),
)


# --------------------------------------------------------------------------------------------
# Case 4: per-example Jacobian, Gauss-Newton matrix, Hessian


def _flat_model(mlp, params):
    flat, unravel = ravel_vec(params)

    def f_batch(theta, X):
        return mlp.apply(unravel(theta), X)

    def f_one(theta, x):
        return mlp.apply(unravel(theta), x[None])[0]

    return flat, unravel, f_batch, f_one


def _torch_jacobian_to_flat(out):
    """torch per-example grads `(n, out, in)` / `(n, out)` per leaf -> `(n, P)` in vec order."""
    cols = []
    for t in torch_to_numpy(out):
        n = t.shape[0]
        cols.append(np.swapaxes(t, 1, 2).reshape(n, -1) if t.ndim == 3 else t.reshape(n, -1))
    return np.concatenate(cols, axis=1)


def _jacobian_points(settings: Settings) -> Iterator[Point]:
    shapes = settings.pick([(SMALL, 256), (MEDIUM, 512), (LARGE_JAC, 512)], [(SMALL, 128), (MEDIUM, 128)], [(TINY, 16)])
    torch, why = torch_or_reason(settings.peers)
    for sizes, n in shapes:
        mlp, params, X, _ = _setup(settings, sizes, n)
        flat, unravel, f_batch, f_one = _flat_model(mlp, params)
        P = flat.shape[0]
        variants = [
            Variant(HAND_JAC, lambda p, X, th, mlp=mlp: mlp.hand_jacobian(p, X), "hand"),
            Variant(VMAP_GRAD, lambda p, X, th, f=f_one: jax.vmap(jax.grad(f), (None, 0))(th, X), "autodiff"),
            Variant(JACREV, lambda p, X, th, f=f_batch: jax.jacrev(f)(th, X), "autodiff"),
            Variant(JACFWD, lambda p, X, th, f=f_batch: jax.jacfwd(f)(th, X), "autodiff"),
            Variant(MJ_JAC, lambda p, X, th, f=f_batch: mjd.jacobian(f, mode="auto")(th, X), "mmljax"),
            Variant(PER_EXAMPLE, lambda p, X, th, f=f_one: kernels.per_example_jacobian(f)(th, X), "mmljax"),
        ]
        if torch is not None:
            tp, tX = _torch_params(torch, params), torch_tensor(torch, np.asarray(X))
            one = lambda ps, x: _torch_apply(torch, ps, x[None])[0]  # noqa: E731
            pe = torch.func.vmap(torch.func.grad(one), in_dims=(None, 0))
            variants.append(
                Variant(
                    TORCH_JAC,
                    lambda pe=pe, tp=tp, tX=tX: torch_sync(torch, pe(tp, tX)),
                    "peer",
                    jit=False,
                    args=(),
                    to_numpy=_torch_jacobian_to_flat,
                )
            )
        elif settings.peers:
            variants.append(Variant(TORCH_JAC, lambda: None, "peer", jit=False, skip=why))
        yield Point(
            sizes={"n": n, "P": P},
            args=(params, X, flat),
            variants=variants,
            label=f"{_arch(sizes)} n={n} P={P}",
            note=f"J is n × P = {n} × {P}; jacrev/jacfwd of the batched function carry n × n × P intermediates",
        )


MLP_JACOBIAN = Case(
    name="mlp-jacobian",
    number=4,
    title="Per-example Jacobian of an MLP w.r.t. all parameters",
    description=(
        "Hand per-example Jacobian vs vmap(grad) vs jacrev/jacfwd of the batched function vs "
        "mmljax.jacobian(mode='auto') vs mmljax.per_example_jacobian. Variants whose compiled temporaries "
        "exceed the memory limit are skipped before they run (memory_analysis)."
    ),
    points=_jacobian_points,
    x_key="P",
)


def _gn_points(settings: Settings) -> Iterator[Point]:
    shapes = settings.pick([(SMALL, 256), (MEDIUM, 512)], [(SMALL, 256)], [(TINY, 16)])
    for sizes, n in shapes:
        mlp, params, X, _ = _setup(settings, sizes, n)
        flat, unravel, f_batch, f_one = _flat_model(mlp, params)
        P = flat.shape[0]

        def gram_full(J):
            return J.T @ J

        yield Point(
            sizes={"n": n, "P": P},
            args=(params, X, flat),
            label=f"{_arch(sizes)} n={n} P={P}",
            variants=[
                Variant(HAND_GN, lambda p, X, th, mlp=mlp: mlp.hand_gauss_newton(p, X), "hand"),
                Variant(JACREV_GN, lambda p, X, th, f=f_batch: gram_full(jax.jacrev(f)(th, X)), "autodiff"),
                Variant(
                    VMAP_GN, lambda p, X, th, f=f_one: gram_full(jax.vmap(jax.grad(f), (None, 0))(th, X)), "autodiff"
                ),
                Variant(
                    MJ_GN,
                    lambda p, X, th, f=f_one: kernels.gauss_newton_matrix(f, th, X),
                    "kernel",
                    flops=kernels._flops_gram(n, P),
                ),
            ],
            flops=2.0 * n * P * P,
            bound="compute",
            note="flops: 2nP² for JᵀJ (the Jacobian itself is cheap); gram computes one triangle",
        )


MLP_GAUSS_NEWTON = Case(
    name="mlp-gauss-newton",
    number=4,
    title="Gauss-Newton matrix JᵀJ of an MLP",
    description=(
        "Hand JᵀJ (hand Jacobian, full product) vs autodiff Jacobians then J.T @ J vs "
        "mmljax.gauss_newton_matrix (vmap Jacobian, one-triangle gram)."
    ),
    points=_gn_points,
    x_key="P",
)


def _hessian_points(settings: Settings) -> Iterator[Point]:
    sizes, n = settings.pick((SMALL, 256), ([4, 16, 16, 1], 128), (TINY, 16))
    mlp, params, X, y = _setup(settings, sizes, n)
    flat, unravel, f_batch, _ = _flat_model(mlp, params)
    P = flat.shape[0]

    def loss(theta, X, y):
        r = y - f_batch(theta, X)
        return 0.5 * jnp.sum(r * r)

    def hand_grad_flat(theta, X, y):
        return ravel_vec(mlp.hand_gradient(unravel(theta), X, y))[0]

    yield Point(
        sizes={"n": n, "P": P},
        args=(flat, X, y),
        label=f"{_arch(sizes)} n={n} P={P}",
        variants=[
            Variant(
                HESS_REF,
                lambda th, X, y: jax.jacfwd(hand_grad_flat)(th, X, y),
                "hand",
                note="no hand-written MLP Hessian exists: the reference is forward mode over the hand backprop",
            ),
            Variant(JAX_HESS, lambda th, X, y: jax.hessian(loss)(th, X, y), "autodiff"),
            Variant(JACREV2, lambda th, X, y: jax.jacrev(jax.jacrev(loss))(th, X, y), "autodiff"),
            Variant(MJ_HESS, lambda th, X, y: mjd.hessian_matrix(loss)(th, X, y), "mmljax"),
        ],
    )


MLP_HESSIAN = Case(
    name="mlp-hessian",
    number=4,
    title="Full Hessian of a small MLP's loss",
    description=(
        "jax.hessian vs jacrev(jacrev) vs mmljax.hessian_matrix, checked against forward mode over the "
        "hand backprop (there is no hand-written MLP Hessian)."
    ),
    points=_hessian_points,
    x_key="P",
)
