"""Model-family checks (linear, feature-basis, MLP): hand gradients, Hessians and per-example
Jacobians against autodiff and finite differences.

Each row differentiates with respect to the flat parameter vector `ravel_vec(params)` (leaves in
tree order, each column-major); the architecture is fixed per row and the size sets the number
of examples `n`. The loss is `L = ½ Σ_n ||y_n − f(x_n)||²` throughout.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..layout import ravel_vec
from ..models import basis, linear, mlp
from ..models.activations import ACTIVATIONS
from ._identity import Identity
from ._samplers import normal

L14 = "Lecture 1.4 (linear regression by the chain rule)"
L2 = "Lecture 2 (matrix derivatives and backpropagation)"


def _unravel(template):
    """The inverse of `ravel_vec` for parameters shaped like `template` (numpy leaves: no compile)."""
    return ravel_vec(template)[1]


def _flat(params) -> np.ndarray:
    """`ravel_vec` in numpy (the samplers stay free of compilation)."""
    return np.concatenate([np.ravel(np.asarray(leaf), order="F") for leaf in jax.tree_util.tree_leaves(params)])


def _half_sse(pred, y):
    return 0.5 * jnp.sum((y - pred) ** 2)


# ---- linear: f(x) = Θᵀx + b, d = 3 inputs, k = 2 outputs ---------------------------------------

_LIN = linear.LinearParams(np.zeros((3, 2)), np.zeros(2))


def _lin_sample(rng, n):
    return normal(rng, (3 * 2 + 2,)), (normal(rng, (n, 3)), normal(rng, (n, 2)))


def _lin_loss(v, X, Y):
    return _half_sse(linear.apply(_unravel(_LIN)(v), X), Y)


# ---- feature bases -------------------------------------------------------------------------------

_POLY = basis.polynomial(3, ordering="decreasing")  # [x³, x², x, 1], Lecture 1.3
_RBF_CENTRES = np.array([-1.0, -0.25, 0.5, 1.0])
_RBF = basis.rbf(_RBF_CENTRES, lengthscale=0.6)
_FOURIER = basis.fourier([1.0, 2.0])
_LEARNED = basis.learned(2, 3, "tanh")


def _fixed(b, k=1):
    shape = (b.n_features,) if k == 1 else (b.n_features, k)
    return basis.BasisParams(np.zeros(shape), None, None, b)


def _basis_loss(template):
    def f(v, x, y):
        return _half_sse(basis.apply(_unravel(template)(v), x), y)

    return f


def _scalar_sample(n_params, k=1, on_centre=False):
    def sample(rng, n):
        x = rng.uniform(-1.5, 1.5, n)
        if on_centre:  # an input exactly on a centre: the derivatives must stay finite there
            x[0] = _RBF_CENTRES[1]
        return normal(rng, (n_params,)), (x, normal(rng, (n,) if k == 1 else (n, k)))

    return sample


_LEARNED_T = basis.BasisParams(np.zeros(3), np.zeros((3, 2)), np.zeros(3), _LEARNED)


def _learned_sample(rng, n):
    return normal(rng, (3 + 6 + 3,)), (normal(rng, (n, 2)), normal(rng, (n,)))


# ---- MLP -----------------------------------------------------------------------------------------


def _mlp_template(sizes, activation):
    return mlp.MLPParams(
        tuple(mlp.Layer(np.zeros((m, k)), np.zeros(m)) for k, m in zip(sizes[:-1], sizes[1:])), activation
    )


_MLP_TANH = _mlp_template([3, 4, 3, 2], "tanh")
_TANH = ACTIVATIONS["tanh"].f
_MLP_SOFTPLUS = _mlp_template([2, 5, 1], "softplus")
_MLP_GN = _mlp_template([2, 3, 2], "sigmoid")


def _mlp_sample(template):
    sizes = mlp.sizes(template)

    def sample(rng, n):
        params = mlp.MLPParams(
            tuple(
                mlp.Layer(normal(rng, (m, k)) / np.sqrt(k), 0.5 * normal(rng, (m,)))
                for k, m in zip(sizes[:-1], sizes[1:])
            ),
            template.activation,
        )
        y = normal(rng, (n,) if sizes[-1] == 1 else (n, sizes[-1]))
        return _flat(params), (normal(rng, (n, sizes[0])), y)

    return sample


def _mlp_loss(template):
    def f(v, X, Y):
        return _half_sse(mlp.apply(_unravel(template)(v), X), Y)

    return f


def _mlp_grad(template):
    def g(v, X, Y):
        return ravel_vec(mlp.hand_gradient(_unravel(template)(v), X, Y))[0]

    return g


def _backprop_without_sigma_prime(v, X, Y):
    """The classic slip: δ_{l−1} = δ_l A_l, forgetting ⊙ σ'(z_{l−1})."""
    params = _unravel(_MLP_TANH)(v)
    Fs = [X]
    for l, (A, b) in enumerate(params.layers):
        Z = Fs[-1] @ A.T + b
        Fs.append(Z if l == len(params.layers) - 1 else _TANH(Z))
    delta, grads = Fs[-1] - Y, []
    for l in range(len(params.layers) - 1, -1, -1):
        grads.append(mlp.Layer(delta.T @ Fs[l], delta.sum(0)))
        delta = delta @ params.layers[l].A
    return ravel_vec(mlp.MLPParams(tuple(reversed(grads)), "tanh"))[0]


def _gn_sample(rng, n):
    theta0, (X, _) = _mlp_sample(_MLP_GN)(rng, n)
    return theta0, (X, theta0.copy())


def _gn_f(v, X, theta0):
    unravel = _unravel(_MLP_GN)
    return _half_sse(mlp.apply(unravel(v), X), mlp.apply(unravel(theta0), X))


_SIZES = (5,)  # one compile per row keeps `mmljax check` fast; --sizes medium tries 8, 16, 24

IDENTITIES = (
    Identity(
        name="linear f(x) = Θᵀx + b (d=3, k=2): dL/d[vec Θ; b] = [vec(Xᵀ R); Σ_n r_n], R = XΘ + 1bᵀ − Y",
        source=L14 + ", multi-output with bias",
        domain="models",
        f=_lin_loss,
        derivative=lambda v, X, Y: ravel_vec(linear.hand_gradient(_unravel(_LIN)(v), X, Y))[0],
        sample=_lin_sample,
        sizes=_SIZES,
    ),
    Identity(
        name="linear f(x) = Θᵀx + b (d=3, k=2): Hessian = I_k ⊗ [X 1]ᵀ[X 1], permuted to [vec Θ; b]",
        source=L14 + " (Hessian ΦᵀΦ)",
        domain="models",
        f=_lin_loss,
        derivative=lambda v, X, Y: linear.hand_hessian(_unravel(_LIN)(v), X, Y),
        order=2,
        sample=_lin_sample,
        sizes=_SIZES,
    ),
    Identity(
        name="polynomial basis φ(x) = [x³, x², x, 1]: dL/dθ = Φᵀ(Φθ − y)",
        source="Lecture 1.3 (cubic, decreasing powers); " + L14,
        domain="models",
        f=_basis_loss(_fixed(_POLY)),
        derivative=lambda v, x, y: basis.hand_gradient(_unravel(_fixed(_POLY))(v), x, y).theta,
        sample=_scalar_sample(4),
        sizes=_SIZES,
    ),
    Identity(
        name="Gaussian RBF basis, an input on a centre: Hessian ΦᵀΦ",
        source=L14 + "; squared distance, no square root: finite at a centre",
        domain="models",
        f=_basis_loss(_fixed(_RBF)),
        derivative=lambda v, x, y: basis.hand_hessian(_unravel(_fixed(_RBF))(v), x, y),
        order=2,
        sample=_scalar_sample(4, on_centre=True),
        sizes=_SIZES,
    ),
    Identity(
        name="Fourier basis [1, cos ωx, sin ωx], k=2: per-example Jacobian row i·k+j = e_jᵀ ⊗ φ(x_i)ᵀ",
        source="Lecture 1.5 (Jacobians); rows example-major, columns vec(Θ)",
        domain="models",
        f=lambda v, x, y: basis.apply(_unravel(_fixed(_FOURIER, 2))(v), x).reshape(-1),
        derivative=lambda v, x, y: basis.hand_jacobian(_unravel(_fixed(_FOURIER, 2))(v), x),
        sample=_scalar_sample(10, k=2),
        sizes=_SIZES,
    ),
    Identity(
        name="learned basis φ(x) = tanh(Ax + b): dL/d[θ; vec A; b] with δ = r θᵀ ⊙ σ'(Z)",
        source=L2 + ", learned features",
        domain="models",
        f=_basis_loss(_LEARNED_T),
        derivative=lambda v, x, y: ravel_vec(basis.hand_gradient(_unravel(_LEARNED_T)(v), x, y))[0],
        sample=_learned_sample,
        sizes=_SIZES,
    ),
    Identity(
        name="learned basis φ(x) = tanh(Ax + b): Hessian JᵀJ + Σ r_n ∇²f(x_n)",
        source=L2 + ", learned features (second derivatives through σ'')",
        domain="models",
        f=_basis_loss(_LEARNED_T),
        derivative=lambda v, x, y: basis.hand_hessian(_unravel(_LEARNED_T)(v), x, y),
        order=2,
        sample=_learned_sample,
        sizes=_SIZES,
    ),
    Identity(
        name="MLP [3, 4, 3, 2] tanh: backpropagation dL/dA_l = δ_lᵀ F_{l−1}, δ_{l−1} = (δ_l A_l) ⊙ σ'(Z_{l−1})",
        source=L2 + " (backpropagation)",
        domain="models",
        f=_mlp_loss(_MLP_TANH),
        derivative=_mlp_grad(_MLP_TANH),
        sample=_mlp_sample(_MLP_TANH),
        sizes=_SIZES,
    ),
    Identity(
        name="MLP [3, 4, 3, 2] tanh: backpropagation without σ'(z) (known wrong)",
        source=L2 + " (a common slip)",
        domain="models",
        f=_mlp_loss(_MLP_TANH),
        derivative=_backprop_without_sigma_prime,
        sample=_mlp_sample(_MLP_TANH),
        sizes=_SIZES,
        expect_fail=True,
        note="drops the activation derivative; the checker must reject it",
    ),
    Identity(
        name="MLP [2, 5, 1] softplus: backpropagation (σ' = logistic sigmoid)",
        source=L2 + " (backpropagation)",
        domain="models",
        f=_mlp_loss(_MLP_SOFTPLUS),
        derivative=_mlp_grad(_MLP_SOFTPLUS),
        sample=_mlp_sample(_MLP_SOFTPLUS),
        sizes=_SIZES,
    ),
    Identity(
        name="MLP [3, 4, 3, 2] tanh: per-example Jacobian d f(x_i) / d ravel_vec(θ), (n·k, P)",
        source=L2 + " (backpropagation per output)",
        domain="models",
        f=lambda v, X, Y: mlp.apply(_unravel(_MLP_TANH)(v), X).reshape(-1),
        derivative=lambda v, X, Y: mlp.hand_jacobian(_unravel(_MLP_TANH)(v), X),
        sample=_mlp_sample(_MLP_TANH),
        sizes=_SIZES,
    ),
    Identity(
        name="MLP [2, 3, 2] sigmoid: Gauss-Newton JᵀJ = Hessian of ½||f(θ) − f(θ₀)||² at θ₀",
        source=L2 + "; zero residual removes the curvature term",
        domain="models",
        f=_gn_f,
        derivative=lambda v, X, theta0: mlp.hand_gauss_newton(_unravel(_MLP_GN)(v), X),
        order=2,
        sample=_gn_sample,
        sizes=_SIZES,
    ),
)
