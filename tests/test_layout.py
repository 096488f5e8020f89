"""Layout identities: column-major vec, unvec, commutation matrix, ravel_vec, Kronecker."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mmljax as mj

dims = st.integers(1, 4)


def test_vec_is_column_major():
    X = jnp.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(mj.vec(X), X.T.ravel())
    np.testing.assert_array_equal(mj.vec(X), [0, 3, 1, 4, 2, 5])


def test_vec_nd_is_fortran_order():
    X = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(mj.vec(jnp.asarray(X)), X.ravel(order="F"))


@given(st.tuples(dims, dims, dims))
def test_vec_unvec_round_trip(shape):
    X = jnp.asarray(np.random.default_rng(0).standard_normal(shape))
    np.testing.assert_array_equal(mj.unvec(mj.vec(X), shape), X)


def test_unvec_rejects_wrong_size():
    with pytest.raises(
        ValueError, match=r"unvec: v must be 1-D with 6 elements to fill shape \(2, 3\); got shape \(5,\)"
    ):
        mj.unvec(jnp.ones(5), (2, 3))


@settings(max_examples=6)
@given(dims, dims)
def test_commutation_matrix(m, n):
    X = jnp.asarray(np.random.default_rng(1).standard_normal((m, n)))
    K = mj.commutation_matrix(m, n)
    np.testing.assert_array_equal(K @ mj.vec(X), mj.vec(X.T))


@given(dims, dims, dims, dims)
def test_vec_kronecker_identity(m, n, p, q):
    """vec(A X B) = (Bᵀ ⊗ A) vec X for random shapes."""
    rng = np.random.default_rng(m * 1000 + n * 100 + p * 10 + q)
    A, X, B = (jnp.asarray(rng.standard_normal(s)) for s in ((m, n), (n, p), (p, q)))
    lhs = mj.vec(A @ X @ B)
    rhs = jnp.kron(B.T, A) @ mj.vec(X)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12, atol=1e-12)


@settings(max_examples=6)
@given(dims, dims, dims, dims)
def test_jacobian_matrix_of_AXB_is_kron(m, n, p, q):
    rng = np.random.default_rng(7 + m + 10 * n + 100 * p + 1000 * q)
    A, X, B = (jnp.asarray(rng.standard_normal(s)) for s in ((m, n), (n, p), (p, q)))
    J = mj.jacobian_matrix(lambda X: A @ X @ B)(X)
    assert J.shape == (m * q, n * p)
    np.testing.assert_allclose(J, jnp.kron(B.T, A), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("mode", ["fwd", "rev"])
def test_jacobian_matrix_of_AXB_both_modes(mode):
    rng = np.random.default_rng(3)
    A, X, B = (jnp.asarray(rng.standard_normal(s)) for s in ((4, 3), (3, 5), (5, 2)))
    J = mj.jacobian_matrix(lambda X: A @ X @ B, mode=mode)(X)
    np.testing.assert_allclose(J, jnp.kron(B.T, A), rtol=1e-13, atol=1e-13)


def test_ravel_vec_pytree_order_and_inverse():
    tree = {"W": jnp.arange(6.0).reshape(2, 3), "b": jnp.array([10.0, 11.0])}
    flat, unravel = mj.ravel_vec(tree)
    # leaves in tree order (dict keys sorted: "W", "b"), each column-major
    np.testing.assert_array_equal(flat, [0, 3, 1, 4, 2, 5, 10, 11])
    back = unravel(flat)
    assert jax.tree_util.tree_structure(back) == jax.tree_util.tree_structure(tree)
    np.testing.assert_array_equal(back["W"], tree["W"])
    with pytest.raises(ValueError, match=r"expected a vector of shape \(8,\)"):
        unravel(jnp.ones(7))
