"""Structure-aware kernels: one-pass least-squares gradient/HVP, one-triangle gram, per-example
Jacobians and the Gauss-Newton matrix, against autodiff (float64 relative error ≤ 1e-12)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mmljax as mj
from mmljax import kernels


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def ls_loss(theta, Phi, y):
    r = y - Phi @ theta
    return 0.5 * jnp.sum(r * r)


def data(rng, N, D, dtype=np.float64):
    return (
        rng.standard_normal((N, D)).astype(dtype),
        rng.standard_normal(N).astype(dtype),
        rng.standard_normal(D).astype(dtype),
    )


@pytest.mark.parametrize(
    "N,D,block",
    [
        (1, 1, None),
        (37, 3, None),
        (37, 3, 1),
        (37, 3, 7),
        (4001, 8, None),
        (1000, 8, 1000),
        (1000, 8, 5000),
        (64, 130, 16),
    ],
)
def test_least_squares_gradient_matches_autodiff(rng, N, D, block):
    Phi, y, theta = data(rng, N, D)
    got = mj.least_squares_gradient(Phi, y, theta, block_rows=block)
    want = jax.grad(ls_loss)(theta, Phi, y)
    assert got.shape == (D,)
    assert rel(got, want) <= 1e-12
    assert rel(got, -(Phi.T @ (y - Phi @ theta))) <= 1e-12


def test_least_squares_gradient_float32_jit_and_differentiable(rng):
    Phi, y, theta = data(rng, 3001, 5, np.float32)
    got = jax.jit(mj.least_squares_gradient)(Phi, y, theta)
    assert got.dtype == jnp.float32
    want = -(Phi.astype(np.float64).T @ (y - Phi.astype(np.float64) @ theta))
    assert rel(got, want) <= 1e-4
    # Differentiating the one-pass gradient gives the Hessian ΦᵀΦ.
    P64, y64, t64 = (a.astype(np.float64) for a in (Phi, y, theta))
    H = jax.jacfwd(lambda t: mj.least_squares_gradient(P64, y64, t, block_rows=1000))(t64)
    assert rel(H, P64.T @ P64) <= 1e-12


def test_least_squares_gradient_catches_a_wrong_sign(rng):
    # The comparison used throughout must be able to fail: the lecture-style sign slip Φᵀ(y − Φθ).
    Phi, y, theta = data(rng, 50, 4)
    wrong = Phi.T @ (y - Phi @ theta)
    assert rel(mj.least_squares_gradient(Phi, y, theta), wrong) > 1.0


@pytest.mark.parametrize("N,D,block", [(37, 3, None), (4001, 8, None), (500, 20, 64)])
def test_least_squares_hvp(rng, N, D, block):
    Phi, y, theta = data(rng, N, D)
    v = rng.standard_normal(D)
    got = mj.least_squares_hvp(Phi, v, block_rows=block)
    assert rel(got, Phi.T @ (Phi @ v)) <= 1e-12
    assert rel(got, mj.hvp(ls_loss, theta, v, Phi, y)) <= 1e-12


@pytest.mark.parametrize("D,block", [(1, None), (5, None), (170, None), (400, None), (40, 7), (40, 40), (40, 100)])
def test_gram_matches_full_product_and_is_symmetric(rng, D, block):
    A = rng.standard_normal((60, D))
    G = np.asarray(mj.gram(A, block=block))
    assert G.shape == (D, D)
    assert rel(G, A.T @ A) <= 1e-12
    assert np.array_equal(G, G.T)


def test_gram_float32(rng):
    A = rng.standard_normal((200, 170)).astype(np.float32)
    G = jax.jit(mj.gram)(A)
    assert G.dtype == jnp.float32
    assert rel(G, A.astype(np.float64).T @ A.astype(np.float64)) <= 1e-5


def test_gram_flop_count_is_about_half():
    n, d = 1000, 1024
    assert kernels._flops_gram(n, 100) == 2.0 * n * 100 * 100  # small d: one full product
    assert kernels._flops_gram(n, d) < 0.7 * 2.0 * n * d * d


def test_per_example_jacobian_scalar_and_vector_outputs(rng):
    params = {"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(3)}
    X = rng.standard_normal((6, 4))

    def f_vec(p, x):  # (3,)
        return jnp.tanh(p["W"] @ x + p["b"])

    def f_scalar(p, x):
        return jnp.sum(f_vec(p, x) ** 2)

    J = jax.jit(mj.per_example_jacobian(f_vec))(params, X)
    assert J["W"].shape == (6, 3, 3, 4) and J["b"].shape == (6, 3, 3)
    # Parameters are shared, so the Jacobian of the batched function is the per-example one.
    want = jax.jit(jax.jacrev(lambda p: jax.vmap(f_vec, (None, 0))(p, X)))(params)
    assert rel(J["W"], want["W"]) <= 1e-12 and rel(J["b"], want["b"]) <= 1e-12
    g = jax.jit(mj.per_example_jacobian(f_scalar))(params, X)
    assert g["W"].shape == (6, 3, 4)
    want = jax.jit(jax.vmap(jax.grad(f_scalar), (None, 0)))(params, X)
    assert rel(g["W"], want["W"]) <= 1e-12
    fwd = jax.jit(mj.per_example_jacobian(f_scalar, mode="fwd"))(params, X)
    assert rel(fwd["b"], want["b"]) <= 1e-12


def test_gauss_newton_matrix_of_linear_residual_is_gram(rng):
    Phi, y, theta = data(rng, 80, 6)
    G = mj.gauss_newton_matrix(lambda t, phi, yi: yi - phi @ t, theta, Phi, y)
    assert rel(G, Phi.T @ Phi) <= 1e-12


def test_gauss_newton_matrix_pytree_order_matches_ravel_vec(rng):
    params = {"A": rng.standard_normal((2, 3)), "c": rng.standard_normal(2)}
    X = rng.standard_normal((5, 3))

    def resid(p, x):  # (2,) residuals per example
        return jnp.sin(p["A"] @ x) + p["c"]

    flat, unravel = mj.ravel_vec(params)
    # Rows example-major: vec of the (2, 5) matrix of residuals stacked column by column.
    J = jax.jit(mj.jacobian_matrix(lambda v: jax.vmap(resid, (None, 0), 1)(unravel(v), X)))(flat)
    G = jax.jit(lambda p, X: mj.gauss_newton_matrix(resid, p, X))(params, X)
    assert rel(G, J.T @ J) <= 1e-12


@pytest.mark.parametrize(
    "call,exc,words",
    [
        (lambda: mj.least_squares_gradient(np.ones(5), np.ones(5), np.ones(1)), ValueError, "Phi[:, None]"),
        (
            lambda: mj.least_squares_gradient(np.ones((5, 2)), np.ones(4), np.ones(2)),
            ValueError,
            "y must have shape (5,)",
        ),
        (
            lambda: mj.least_squares_gradient(np.ones((5, 2)), np.ones(5), np.ones(3)),
            ValueError,
            "theta must have shape (2,)",
        ),
        (
            lambda: mj.least_squares_gradient(np.ones((5, 2)), np.ones(5), np.ones(2), block_rows=0),
            ValueError,
            "block_rows",
        ),
        (lambda: mj.least_squares_hvp(np.ones((5, 2), int), np.ones(2)), TypeError, "astype(float)"),
        (lambda: mj.gram(np.ones((4, 3)), block=0), ValueError, "block"),
        (
            lambda: mj.per_example_jacobian(lambda p, x: p @ x)(np.ones(2), np.ones((3, 2)), np.ones((4, 2))),
            ValueError,
            "same leading batch axis",
        ),
        (lambda: mj.per_example_jacobian(3), TypeError, "callable"),
    ],
)
def test_kernel_errors_say_what_to_do(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    assert words in str(info.value)
