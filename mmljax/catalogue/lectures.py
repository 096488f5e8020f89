"""Derivations from the lecture notes (`shared/reference/mml-lecture-notes.md`), in mmljax's layout,
with the errata of GUIDE.md §9 applied (the printed Lecture 1.2 minimiser is kept as a
known-wrong row that the checker must reject).

Numerator layout throughout: the Jacobian of `f: R^N -> R^M` is `M x N`; the gradient of a scalar
is stored in the shape of its argument; derivatives by a matrix are tensors `out_shape + in_shape`
or, through column-major `vec`, matrices `(out.size, in.size)`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..layout import unvec
from ..models.activations import ACTIVATIONS
from ._identity import Identity
from ._samplers import normal

L12 = "Lecture 1.2 (scalar differentiation)"
L13 = "Lecture 1.3 (scalar-by-vector differentiation)"
L14 = "Lecture 1.4 (vector-by-vector differentiation)"
L15 = "Lecture 1.5 (Hessians)"
L2 = "Lecture 2 (matrix derivatives and backpropagation)"

# Rows whose input shape does not depend on the size: three groups of draws, one compiled program.
FIXED = (1, 1, 1)
# Rows over N data points: the data size varies, the parameter shape does not.
DATA_SIZES = (5, 40)
DATA_MEDIUM = (100, 400, 1000)


# ---- Lecture 1.2: L(a) = Σ (a x_n − y_n)² --------------------------------------------------------


def _ax_data(rng, n):
    x, y = normal(rng, (n,)), normal(rng, (n,))
    return normal(rng), (x, y)


def _ls_scalar(a, x, y):
    return jnp.sum((a * x - y) ** 2)


# ---- Lecture 1.3-1.4: the polynomial model θᵀφ(x) and its least-squares loss --------------------


def _phi3(x):
    """The lecture's cubic features φ(x) = [x³, x², x, 1] (for a scalar x), or the N x 4 design
    matrix Φ whose rows are φ(x_n)ᵀ (for a vector x)."""
    return jnp.stack([x**3, x**2, x, jnp.ones_like(x)], axis=-1)


def _poly_theta_sample(rng, n):
    return normal(rng, (4,)), (rng.uniform(-1.5, 1.5),)


def _poly_x_sample(rng, n):
    return rng.uniform(-1.5, 1.5), (normal(rng, (4,)),)


def _cubic_data(rng, n):
    xs = rng.uniform(-1.0, 1.0, n)
    return xs, normal(rng, (n,))


def _cubic_loss(theta, xs, y):
    return jnp.sum((y - _phi3(xs) @ theta) ** 2)


def _cubic_grad(theta, xs, y):
    Phi = _phi3(xs)
    return -2 * (y - Phi @ theta) @ Phi


def _theta_data(rng, n):
    xs, y = _cubic_data(rng, n)
    return normal(rng, (4,)), (xs, y)


def _directional_sample(rng, n):
    xs, y = _cubic_data(rng, n)
    return 0.5 * normal(rng), (normal(rng, (4,)), normal(rng, (4,)), xs, y)


def _along(h, theta, v, xs, y):
    """L(θ + h v): the loss along the line through θ in direction v."""
    return _cubic_loss(theta + h * v, xs, y)


def _steepest_objective(v, theta, xs, y):
    """−∇_v̂ L(θ) (the directional derivative along v/||v||, by its definition as a jvp) plus a
    penalty ½(||v||² − 1)² that pins the length: minimised by v = ∇L/||∇L||."""
    _, dL = jax.jvp(lambda t: _cubic_loss(t, xs, y), (theta,), (v,))
    return -dL / jnp.linalg.norm(v) + 0.5 * (v @ v - 1.0) ** 2


def _steepest_minimiser(theta, xs, y):
    g = _cubic_grad(theta, xs, y)
    return g / jnp.linalg.norm(g)


def _steepest_sample(rng, n):
    xs, y = _cubic_data(rng, n)
    return normal(rng, (4,)), (normal(rng, (4,)), xs, y)


# ---- Lecture 1.4: chain rule, Ax, least squares -------------------------------------------------


def _t_sample(rng, n):
    """|t| ∈ [0.3, 2.8]: away from the zeros t = 0, ±π of df/dt (a relative error is ill-conditioned there)."""
    return rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 2.8), ()


def _chain_f(t):
    x1, x2 = jnp.sin(t), jnp.cos(t)
    return x1**2 + 2 * x2


def _Ax_sample(rng, n):
    return normal(rng, (n,)), (normal(rng, (n + 1, n)), normal(rng, (n + 1,)))


# ---- Lecture 1.5 / 2: L(x) = ½||y − A sin x||² and its factors ----------------------------------


def _sin_loss(x, A, y):
    return 0.5 * jnp.sum((y - A @ jnp.sin(x)) ** 2)


def _sin_hessian(x, A, y):
    """diag(cos x) AᵀA diag(cos x) + diag(sin x ⊙ Aᵀe), e = y − A sin x."""
    c, s = jnp.cos(x), jnp.sin(x)
    e = y - A @ s
    return c[:, None] * (A.T @ A) * c[None, :] + jnp.diag(s * (A.T @ e))


def _second_directional_sample(rng, n):
    return 0.5 * normal(rng), (normal(rng, (n,)), normal(rng, (n,)), normal(rng, (n + 1, n)), normal(rng, (n + 1,)))


def _sin_loss_along(h, x, v, A, y):
    return _sin_loss(x + h * v, A, y)


def _vHv(h, x, v, A, y):
    return v @ _sin_hessian(x + h * v, A, y) @ v


def _e_sample(rng, n):
    return normal(rng, (n,)), ()


def _c_sample(rng, n):
    return normal(rng, (n,)), (normal(rng, (n + 1, n)), normal(rng, (n + 1,)))


# ---- Lecture 2: linear regression with φ(x) = [1, x, x²] -----------------------------------------


def _phi2(xs):
    return jnp.stack([jnp.ones_like(xs), xs, xs**2], axis=-1)


def _lr_loss(theta, xs, y):
    return 0.5 * jnp.sum((y - _phi2(xs) @ theta) ** 2)


def _lr_sample(rng, n):
    xs = rng.uniform(-1.0, 1.0, n)
    return normal(rng, (3,)), (xs, 1.0 - 2.0 * xs + 0.5 * xs**2 + 0.3 * normal(rng, (n,)))


def _normal_equations(xs, y):
    Phi = _phi2(xs)
    return jnp.linalg.solve(Phi.T @ Phi, Phi.T @ y)


# ---- Lecture 2: learned features σ(Ax + b) and a deep composition --------------------------------

# σ and σ′ of the models' activation table (mmljax.models.activations), not a copy.
_sigmoid = ACTIVATIONS["sigmoid"].f
_dsigmoid = ACTIVATIONS["sigmoid"].df


def _layer_sample(rng, n):
    """x ∈ R^D, A (M x D), b ∈ R^M with D = n, M = n + 1."""
    return normal(rng, (n,)), (normal(rng, (n + 1, n)), normal(rng, (n + 1,)))


def _layer_b_sample(rng, n):
    x, (A, b) = _layer_sample(rng, n)
    return b, (A, x)


def _layer_A_sample(rng, n):
    x, (A, b) = _layer_sample(rng, n)
    return A, (x, b)


def _feature_model_sample(rng, n):
    x, (A, b) = _layer_sample(rng, n)
    return A, (x, b, normal(rng, (n + 1,)))


def _deep_sample(rng, n):
    """Three layers D -> M1 -> M2 -> M3 with D = n, M1 = n + 1, M2 = n + 2, M3 = 2."""
    dims = (n, n + 1, n + 2, 2)
    params = []
    for d_in, d_out in zip(dims[:-1], dims[1:]):
        params += [normal(rng, (d_out, d_in)) / np.sqrt(d_in), 0.5 * normal(rng, (d_out,))]
    return normal(rng, (n,)), tuple(params)


def _deep_A1_sample(rng, n):
    x, (A1, b1, A2, b2, A3, b3) = _deep_sample(rng, n)
    return A1, (x, b1, A2, b2, A3, b3)


def _deep_forward(x, A1, b1, A2, b2, A3, b3):
    h1 = _sigmoid(A1 @ x + b1)
    h2 = _sigmoid(A2 @ h1 + b2)
    return _sigmoid(A3 @ h2 + b3)


def _deep_jacobians(x, A1, b1, A2, b2, A3, b3):
    """Layer pre-activations z_l and the diagonal factors σ'(z_l)."""
    z1 = A1 @ x + b1
    z2 = A2 @ _sigmoid(z1) + b2
    z3 = A3 @ _sigmoid(z2) + b3
    return _dsigmoid(z1), _dsigmoid(z2), _dsigmoid(z3)


def _deep_dx(x, A1, b1, A2, b2, A3, b3):
    d1, d2, d3 = _deep_jacobians(x, A1, b1, A2, b2, A3, b3)
    return (d3[:, None] * A3) @ (d2[:, None] * A2) @ (d1[:, None] * A1)


def _deep_dA1(A1, x, b1, A2, b2, A3, b3):
    d1, d2, d3 = _deep_jacobians(x, A1, b1, A2, b2, A3, b3)
    back = (d3[:, None] * A3) @ (d2[:, None] * A2) @ jnp.diag(d1)
    return back @ jnp.kron(x[None, :], jnp.eye(A1.shape[0]))


# ---- Lecture 2: derivatives by a matrix ---------------------------------------------------------


def _Axy_sample(rng, n):
    """A (M x N), x ∈ R^N, y ∈ R^M with N = n, M = n + 1."""
    return normal(rng, (n + 1, n)), (normal(rng, (n,)), normal(rng, (n + 1,)))


def _xAx_sample(rng, n):
    return normal(rng, (n, n)), (normal(rng, (n,)),)


def _A_of_theta(theta, W, x):
    """A(θ) with vec A(θ) = tanh(Wθ): a nonlinear matrix-valued function of θ ∈ R^L."""
    return unvec(jnp.tanh(W @ theta), (x.size, x.size))


def _theta_sample(rng, n):
    L = n + 1
    return normal(rng, (L,)), (normal(rng, (n * n, L)) / np.sqrt(L), normal(rng, (n,)))


def _xA_theta_x(theta, W, x):
    return x @ _A_of_theta(theta, W, x) @ x


def _xA_theta_x_grad(theta, W, x):
    """df/dθ (1 x L) = df/dvec A (1 x N²) · dvec A/dθ (N² x L), with df/dvec A = vec(xxᵀ)ᵀ = (x ⊗ x)ᵀ
    and dvec A/dθ = diag(1 − tanh²(Wθ)) W."""
    df_dvecA = jnp.kron(x, x)
    dvecA_dtheta = (1.0 - jnp.tanh(W @ theta) ** 2)[:, None] * W
    return df_dvecA @ dvecA_dtheta


def _mat_to_mat_sample(rng, n):
    """X (M x N), A (P x M), B (N x Q) with M = n, N = n + 1, P = n + 2, Q = 2."""
    return normal(rng, (n, n + 1)), (normal(rng, (n + 2, n)), normal(rng, (n + 1, 2)))


IDENTITIES = (
    # ---- Lecture 1.2 ------------------------------------------------------------------------
    Identity(
        name="L(a) = Σ (a x_n − y_n)²: dL/da",
        source=L12 + ", worked example f(x) = a·x",
        domain="lectures",
        f=_ls_scalar,
        derivative=lambda a, x, y: jnp.sum(2 * (a * x - y) * x),
        sample=_ax_data,
        sizes=DATA_SIZES,
    ),
    Identity(
        name="L(a) = Σ (a x_n − y_n)²: d²L/da²",
        source=L12 + ", worked example f(x) = a·x",
        domain="lectures",
        f=_ls_scalar,
        derivative=lambda a, x, y: jnp.sum(2 * x**2),
        order=2,
        sample=_ax_data,
        sizes=DATA_SIZES,
    ),
    Identity(
        name="L(a) = Σ (a x_n − y_n)²: minimiser a = Σ x_n y_n / Σ x_n²",
        source=L12 + ", worked example, corrected (GUIDE.md §9)",
        domain="lectures",
        f=_ls_scalar,
        minimiser=lambda x, y: jnp.sum(x * y) / jnp.sum(x**2),
        sample=_ax_data,
        sizes=DATA_SIZES,
    ),
    Identity(
        name="L(a) = Σ (a x_n − y_n)²: printed minimiser a = Σ 2 x_n y_n / Σ x_n²",
        source=L12 + ", worked example as printed (erratum, GUIDE.md §9)",
        domain="lectures",
        f=_ls_scalar,
        minimiser=lambda x, y: jnp.sum(2 * x * y) / jnp.sum(x**2),
        sample=_ax_data,
        sizes=DATA_SIZES,
        expect_fail=True,
        note="the lecture's printed result; the checker must reject it",
    ),
    # ---- Lecture 1.3 ------------------------------------------------------------------------
    Identity(
        name="f(x) = θᵀφ(x), φ(x) = [x³, x², x, 1]: df/dθ = φ(x)ᵀ",
        source=L13 + ", polynomial model",
        domain="lectures",
        f=lambda theta, x: _phi3(x) @ theta,
        derivative=lambda theta, x: _phi3(x),
        sample=_poly_theta_sample,
        sizes=FIXED,
        medium_sizes=FIXED,
    ),
    Identity(
        name="f(x) = θᵀφ(x): df/dx = 3θ₃x² + 2θ₂x + θ₁",
        source=L13 + ", polynomial model",
        domain="lectures",
        f=lambda x, theta: _phi3(x) @ theta,
        derivative=lambda x, theta: 3 * theta[0] * x**2 + 2 * theta[1] * x + theta[2],
        sample=_poly_x_sample,
        sizes=FIXED,
        medium_sizes=FIXED,
    ),
    Identity(
        name="directional derivative ∇_v L(θ) = d/dh L(θ + hv) = (dL/dθ) v",
        source=L13 + ", directional derivative",
        domain="lectures",
        f=_along,
        derivative=lambda h, theta, v, xs, y: _cubic_grad(theta + h * v, xs, y) @ v,
        sample=_directional_sample,
        sizes=DATA_SIZES,
        medium_sizes=DATA_MEDIUM,
        note="L(θ) = ||y − Φθ||² with cubic features; the hand gradient is −2(y − Φθ)ᵀΦ",
    ),
    Identity(
        name="steepest ascent: v = ∇L/||∇L|| maximises ∇_v L over unit v",
        source=L13 + ", direction of steepest ascent",
        domain="lectures",
        f=_steepest_objective,
        minimiser=_steepest_minimiser,
        sample=_steepest_sample,
        sizes=DATA_SIZES,
        medium_sizes=DATA_MEDIUM,
        note="minimiser of −∇_v L/||v|| + ½(||v||² − 1)² (the penalty fixes the length; cos β = 1)",
    ),
    # ---- Lecture 1.4 ------------------------------------------------------------------------
    Identity(
        name="L(θ) = ||y − Φθ||²: dL/dθ = −2(y − Φθ)ᵀΦ (cubic features)",
        source=L14 + ", linear regression as a composition",
        domain="lectures",
        f=_cubic_loss,
        derivative=_cubic_grad,
        sample=_theta_data,
        sizes=DATA_SIZES,
        medium_sizes=DATA_MEDIUM,
    ),
    Identity(
        name="chain rule: f = x1² + 2 x2, x(t) = (sin t, cos t): df/dt = 2 sin t (cos t − 1)",
        source=L14 + ", chain-rule example",
        domain="lectures",
        f=_chain_f,
        derivative=lambda t: 2 * jnp.sin(t) * (jnp.cos(t) - 1),
        sample=_t_sample,
        sizes=FIXED,
        medium_sizes=FIXED,
    ),
    Identity(
        name="Jacobian of f: R^N → R^M, f(x) = A(x ⊙ x): J[m, n] = 2 A_mn x_n",
        source=L14 + ", Jacobian df[m, n] = ∂f_m/∂x_n",
        domain="lectures",
        f=lambda x, A, y: A @ (x * x),
        derivative=lambda x, A, y: 2 * A * x[None, :],
        sample=_Ax_sample,
    ),
    Identity(
        name="d(Ax)/dx = A",
        source=L14,
        domain="lectures",
        f=lambda x, A, y: A @ x,
        derivative=lambda x, A, y: A,
        sample=_Ax_sample,
    ),
    Identity(
        name="d ½||y − Ax||² / dx = −(y − Ax)ᵀ A",
        source=L14 + ", least squares by the chain rule",
        domain="lectures",
        f=lambda x, A, y: 0.5 * jnp.sum((y - A @ x) ** 2),
        derivative=lambda x, A, y: -(y - A @ x) @ A,
        sample=_Ax_sample,
    ),
    # ---- Lecture 1.5 ------------------------------------------------------------------------
    Identity(
        name="second directional derivative d²/dh² L(x + hv) = vᵀ H v, L = ½||y − A sin x||²",
        source=L15 + ", ∇_v[(dL/dθ) v] = vᵀHv",
        domain="lectures",
        f=_sin_loss_along,
        derivative=_vHv,
        order=2,
        sample=_second_directional_sample,
    ),
    # ---- Lecture 2: ½||y − A sin x||² and each factor ------------------------------------------
    Identity(
        name="L(e) = ½||e||²: dL/de = eᵀ",
        source=L2 + ", first factor",
        domain="lectures",
        f=lambda e: 0.5 * e @ e,
        derivative=lambda e: e,
        sample=_e_sample,
    ),
    Identity(
        name="e(c) = y − Ac: de/dc = −A",
        source=L2 + ", second factor",
        domain="lectures",
        f=lambda c, A, y: y - A @ c,
        derivative=lambda c, A, y: -A,
        sample=_c_sample,
    ),
    Identity(
        name="c(x) = sin x: dc/dx = diag(cos x)",
        source=L2 + ", third factor",
        domain="lectures",
        f=jnp.sin,
        derivative=lambda x: jnp.diag(jnp.cos(x)),
        sample=_e_sample,
    ),
    Identity(
        name="L(x) = ½||y − A sin x||²: dL/dx = (dL/de)(de/dc)(dc/dx) = eᵀ(−A) diag(cos x)",
        source=L2 + ", chain of the three factors",
        domain="lectures",
        f=_sin_loss,
        derivative=lambda x, A, y: (y - A @ jnp.sin(x)) @ (-A) @ jnp.diag(jnp.cos(x)),
        sample=_c_sample,
    ),
    Identity(
        name="Hessian of ½||y − A sin x||² = diag(cos x)AᵀA diag(cos x) + diag(sin x ⊙ Aᵀe)",
        source=L2 + " with " + L15,
        domain="lectures",
        f=_sin_loss,
        derivative=_sin_hessian,
        order=2,
        sample=_c_sample,
    ),
    # ---- Lecture 2: linear regression -------------------------------------------------------
    Identity(
        name="L(θ) = ½||y − Φθ||², φ(x) = [1, x, x²]: dL/dθ = −(y − Φθ)ᵀΦ",
        source=L2 + ", linear regression",
        domain="lectures",
        f=_lr_loss,
        derivative=lambda theta, xs, y: -(y - _phi2(xs) @ theta) @ _phi2(xs),
        sample=_lr_sample,
        sizes=DATA_SIZES,
        medium_sizes=DATA_MEDIUM,
    ),
    Identity(
        name="L(θ) = ½||y − Φθ||²: d²L/dθ² = ΦᵀΦ",
        source=L2 + " with " + L15,
        domain="lectures",
        f=_lr_loss,
        derivative=lambda theta, xs, y: _phi2(xs).T @ _phi2(xs),
        order=2,
        sample=_lr_sample,
        sizes=DATA_SIZES,
        medium_sizes=DATA_MEDIUM,
    ),
    Identity(
        name="normal equations: θ = (ΦᵀΦ)⁻¹Φᵀy minimises ½||y − Φθ||²",
        source=L2 + ", linear regression",
        domain="lectures",
        f=_lr_loss,
        minimiser=_normal_equations,
        sample=_lr_sample,
        sizes=DATA_SIZES,
        medium_sizes=DATA_MEDIUM,
    ),
    # ---- Lecture 2: learned features σ(Ax + b) -------------------------------------------------
    Identity(
        name="σ(Ax + b) w.r.t. x: diag(σ'(z)) A",
        source=L2 + ", learned features",
        domain="lectures",
        f=lambda x, A, b: _sigmoid(A @ x + b),
        derivative=lambda x, A, b: _dsigmoid(A @ x + b)[:, None] * A,
        sample=_layer_sample,
    ),
    Identity(
        name="σ(Ax + b) w.r.t. b: diag(σ'(z))",
        source=L2 + ", learned features",
        domain="lectures",
        f=lambda b, A, x: _sigmoid(A @ x + b),
        derivative=lambda b, A, x: jnp.diag(_dsigmoid(A @ x + b)),
        sample=_layer_b_sample,
    ),
    Identity(
        name="σ(Ax + b) w.r.t. A: rank-3 tensor J[i, j, k] = σ'(z_i) δ_ij x_k",
        source=L2 + ", derivative of a vector by a matrix",
        domain="lectures",
        f=lambda A, x, b: _sigmoid(A @ x + b),
        derivative=lambda A, x, b: jnp.einsum("i,ij,k->ijk", _dsigmoid(A @ x + b), jnp.eye(A.shape[0]), x),
        sample=_layer_A_sample,
    ),
    Identity(
        name="σ(Ax + b) w.r.t. vec A: diag(σ'(z)) (xᵀ ⊗ I_M)",
        source=L2 + ", the vec form (vec(Ax) = (xᵀ ⊗ I) vec A)",
        domain="lectures",
        f=lambda A, x, b: _sigmoid(A @ x + b),
        derivative=lambda A, x, b: _dsigmoid(A @ x + b)[:, None] * jnp.kron(x[None, :], jnp.eye(A.shape[0])),
        layout="vec",
        sample=_layer_A_sample,
    ),
    Identity(
        name="f(x) = θᵀσ(Ax + b): df/dA = (θ ⊙ σ'(z)) xᵀ",
        source=L2 + ", learned-feature model",
        domain="lectures",
        f=lambda A, x, b, theta: theta @ _sigmoid(A @ x + b),
        derivative=lambda A, x, b, theta: jnp.outer(theta * _dsigmoid(A @ x + b), x),
        sample=_feature_model_sample,
    ),
    Identity(
        name="deep composition f₃(f₂(f₁(x))), f_l = σ(A_l f_{l−1} + b_l): df/dx = D₃A₃ D₂A₂ D₁A₁",
        source=L2 + ", deep layer composition (backpropagation)",
        domain="lectures",
        f=_deep_forward,
        derivative=_deep_dx,
        sample=_deep_sample,
        note="D_l = diag(σ'(z_l)) at each layer's pre-activation z_l",
    ),
    Identity(
        name="deep composition w.r.t. vec A₁: D₃A₃ D₂A₂ D₁ (xᵀ ⊗ I)",
        source=L2 + ", deep layer composition (backpropagation)",
        domain="lectures",
        f=lambda A1, x, b1, A2, b2, A3, b3: _deep_forward(x, A1, b1, A2, b2, A3, b3),
        derivative=_deep_dA1,
        layout="vec",
        sample=_deep_A1_sample,
    ),
    # ---- Lecture 2: derivatives by a matrix -------------------------------------------------
    Identity(
        name="g(A) = Ax − y: dg/dA is rank 3, ∂g_k/∂A_ij = δ_ki x_j",
        source=L2 + ", chain rule through g(A) = Ax − y",
        domain="lectures",
        f=lambda A, x, y: A @ x - y,
        derivative=lambda A, x, y: jnp.einsum("ki,j->kij", jnp.eye(A.shape[0]), x),
        sample=_Axy_sample,
    ),
    Identity(
        name="d/dA ||Ax − y||² = 2(Ax − y)xᵀ",
        source=L2 + ", derivative by a matrix",
        domain="lectures",
        f=lambda A, x, y: jnp.sum((A @ x - y) ** 2),
        derivative=lambda A, x, y: 2 * jnp.outer(A @ x - y, x),
        sample=_Axy_sample,
    ),
    Identity(
        name="d/dA xᵀAx = xxᵀ",
        source=L2 + "; Matrix Cookbook eq. (72)",
        domain="lectures",
        f=lambda A, x: x @ A @ x,
        derivative=lambda A, x: jnp.outer(x, x),
        sample=_xAx_sample,
    ),
    Identity(
        name="d/dθ xᵀA(θ)x = df/dvec A · dvec A/dθ = (x ⊗ x)ᵀ diag(1 − tanh²(Wθ)) W",
        source=L2 + ", vec chain rule (shapes corrected, GUIDE.md §9)",
        domain="lectures",
        f=_xA_theta_x,
        derivative=_xA_theta_x_grad,
        sample=_theta_sample,
        note="vec A(θ) = tanh(Wθ); (1 x L) = (1 x N²)(N² x L), the lecture's garbled shapes corrected",
    ),
    Identity(
        name="matrix → matrix F(X) = A tanh(X) B: dF[p, q, m, n] = A_pm (1 − tanh² X_mn) B_nq",
        source=L2 + ", 4-index tensor df[p, q, m, n] = ∂f_pq/∂X_mn",
        domain="lectures",
        f=lambda X, A, B: A @ jnp.tanh(X) @ B,
        derivative=lambda X, A, B: jnp.einsum("pm,mn,nq->pqmn", A, 1 - jnp.tanh(X) ** 2, B),
        sample=_mat_to_mat_sample,
    ),
    Identity(
        name="matrix → matrix F(X) = A tanh(X) B as a (PQ x MN) vec matrix: (Bᵀ ⊗ A) diag(vec(1 − tanh² X))",
        source=L2 + ", the same derivative through vec",
        domain="lectures",
        f=lambda X, A, B: A @ jnp.tanh(X) @ B,
        derivative=lambda X, A, B: jnp.kron(B.T, A) * jnp.ravel(1 - jnp.tanh(X) ** 2, order="F")[None, :],
        layout="vec",
        sample=_mat_to_mat_sample,
    ),
)
