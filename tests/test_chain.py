"""mmljax.chain: the chain rule as checked Jacobian products, on the lectures' examples."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mmljax as mj

TOL64 = 1e-10


def rel_err(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def test_lecture_2_example_half_norm_of_y_minus_A_sin_x():
    """L = ½||e||², e = y − A c, c = sin x: dL/dx = eᵀ · (−A) · diag(cos x)."""
    rng = np.random.default_rng(0)
    A, y, x = (jnp.asarray(rng.standard_normal(s)) for s in ((5, 3), (5,), (3,)))
    e = y - A @ jnp.sin(x)
    dL_dx = mj.chain(e, -A, jnp.diag(jnp.cos(x)), names=("dL/de", "de/dc", "dc/dx"))
    assert dL_dx.shape == (3,)  # a gradient: the row 1 × 3 stored 1-D
    auto = mj.gradient(lambda x: 0.5 * jnp.sum((y - A @ jnp.sin(x)) ** 2))(x)
    assert rel_err(dL_dx, auto) <= TOL64
    # The stages themselves are the autodiff Jacobians of the stages.
    assert rel_err(mj.jacobian(lambda c: y - A @ c)(jnp.sin(x)), -A) <= TOL64
    assert rel_err(mj.jacobian(jnp.sin)(x), jnp.diag(jnp.cos(x))) <= TOL64
    # As a full Jacobian (rows kept) it is the 1 × 3 matrix of numerator layout.
    assert mj.chain(e[None, :], -A, jnp.diag(jnp.cos(x))).shape == (1, 3)


def one_layer():
    rng = np.random.default_rng(1)
    A, b, x = (jnp.asarray(rng.standard_normal(s)) for s in ((4, 3), (4,), (3,)))
    z = A @ x + b
    return A, b, x, jnp.diag(1 - jnp.tanh(z) ** 2)  # dσ/dz for σ = tanh


def test_one_layer_with_respect_to_x_and_b():
    A, b, x, dsig_dz = one_layer()
    layer = lambda A, b, x: jnp.tanh(A @ x + b)
    assert rel_err(mj.chain(dsig_dz, A, names=("dσ/dz", "dz/dx")), mj.jacobian(lambda x: layer(A, b, x))(x)) <= TOL64
    assert rel_err(mj.chain(dsig_dz, jnp.eye(4)), mj.jacobian(lambda b: layer(A, b, x))(b)) <= TOL64


def test_one_layer_with_respect_to_A_tensor_and_vec_form():
    A, b, x, dsig_dz = one_layer()
    f = lambda A: jnp.tanh(A @ x + b)
    # rank-3 tensor: dz_i/dA_ac = δ_ia x_c, shape (4, 4, 3); the chain rule contracts one axis
    dz_dA = jnp.einsum("ia,c->iac", jnp.eye(4), x)
    assert rel_err(jnp.tensordot(dsig_dz, dz_dA, axes=1), mj.jacobian(f)(A)) <= TOL64
    # vec form: dz/dvec(A) = xᵀ ⊗ I (4 × 12), and chain() multiplies matrices again
    dz_dvecA = jnp.kron(x[None, :], jnp.eye(4))
    assert rel_err(dz_dvecA, dz_dA.reshape(4, 12, order="F")) <= TOL64
    J = mj.chain(dsig_dz, dz_dvecA, names=("dσ/dz", "dz/dvec A"))
    assert J.shape == (4, 12) and rel_err(J, mj.jacobian_matrix(f)(A)) <= TOL64
    # with a loss on top, the gradient w.r.t. vec(A) is vec of the gradient w.r.t. A
    t = jnp.arange(4.0)
    g = mj.chain(jnp.tanh(A @ x + b) - t, dsig_dz, dz_dvecA)
    assert rel_err(mj.unvec(g, A.shape), jax.grad(lambda A: 0.5 * jnp.sum((f(A) - t) ** 2))(A)) <= TOL64
    with pytest.raises(ValueError, match=r"dz/dA has shape \(4, 4, 3\).*vec form"):
        mj.chain(dsig_dz, dz_dA, names=("dσ/dz", "dz/dA"))


def test_shape_mismatch_names_both_stages():
    with pytest.raises(ValueError, match=r"dL/de · de/dc do not compose: \(1×5\) · \(4×3\): 5 != 4"):
        mj.chain(jnp.ones(5), jnp.ones((4, 3)), names=("dL/de", "de/dc"))
    with pytest.raises(ValueError, match=r"stage 2 · stage 3 do not compose: \(3×2\) · \(3×1\): 2 != 3"):
        mj.chain(jnp.ones((2, 3)), jnp.ones((3, 2)), jnp.ones((3, 1)))
    with pytest.raises(ValueError, match="at least one"):
        mj.chain()
    with pytest.raises(ValueError, match="2 Jacobians but 1 names"):
        mj.chain(jnp.ones((2, 2)), jnp.ones((2, 2)), names=("a",))


def test_row_column_jit_and_vmap():
    u, M, v = jnp.array([1.0, 2.0]), jnp.array([[1.0, 0.0, 2.0], [0.0, 1.0, 1.0]]), jnp.array([1.0, 1.0, 1.0])
    assert mj.chain(u, M, v) == 7.0  # row · matrix · column: a scalar
    assert mj.chain(M, v).shape == (2,) and mj.chain(M).shape == (2, 3)
    np.testing.assert_allclose(jax.jit(mj.chain)(u, M), [1.0, 2.0, 4.0])
    batched = jax.vmap(lambda d: mj.chain(u, M, jnp.diag(d)))(jnp.stack([v, 2 * v]))
    np.testing.assert_allclose(batched, [[1.0, 2.0, 4.0], [2.0, 4.0, 8.0]])
    assert mj.chain(u.astype(jnp.float32), M.astype(jnp.float32)).dtype == jnp.float32
