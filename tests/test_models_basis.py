"""mmljax.models.basis: design matrices, hand gradients/Hessians/Jacobians vs autodiff, RBF on a centre."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import rel_err
from hypothesis import given, settings
from hypothesis import strategies as st

import mmljax as mj
from mmljax.models import basis

TOL64 = 1e-10


def make_basis(kind, size, activation="tanh"):
    """One basis of each kind, its size set by `size` (degree, centres, frequencies, width)."""
    rng = np.random.default_rng(size)
    if kind == "poly-increasing":
        return basis.polynomial(size, ordering="increasing")
    if kind == "poly-decreasing":
        return basis.polynomial(size, ordering="decreasing")
    if kind == "rbf":
        return basis.rbf(np.linspace(-1, 1, size + 1), lengthscale=0.5)
    if kind == "rbf-2d":
        return basis.rbf(rng.standard_normal((size + 1, 2)), lengthscale=1.0)
    if kind == "fourier":
        return basis.fourier(np.arange(1.0, size + 1))
    return basis.learned(3, size + 1, activation)


def problem(b, seed, n, k, dtype=np.float64):
    """Params with random Θ (and A, b) and data, drawn with numpy."""
    rng = np.random.default_rng(seed)
    kshape = () if k == 1 else (k,)
    theta = jnp.asarray(rng.standard_normal((b.n_features,) + kshape), dtype)
    A = B = None
    if isinstance(b, basis.Learned):
        A = jnp.asarray(rng.standard_normal((b.width, b.in_features)), dtype)
        B = jnp.asarray(rng.standard_normal(b.width), dtype)
    d = b.in_features if isinstance(b, basis.Learned) else (b.input_dim if isinstance(b, basis.RBF) else 1)
    x = rng.uniform(-1.5, 1.5, (n, d) if d > 1 or isinstance(b, basis.Learned) else (n,))
    y = rng.standard_normal((n,) + kshape)
    return basis.BasisParams(theta, A, B, b), jnp.asarray(x, dtype), jnp.asarray(y, dtype)


def loss(params, x, y):
    return 0.5 * jnp.sum((y - basis.apply(params, x)) ** 2)


@jax.jit
def witnesses(params, x, y):
    flat, unravel = mj.ravel_vec(params)
    f = lambda v: basis.apply(unravel(v), x).reshape(-1)
    return dict(
        grad=(basis.hand_gradient(params, x, y), jax.grad(loss)(params, x, y)),
        hess=(basis.hand_hessian(params, x, y), mj.hessian_matrix(loss)(params, x, y)),
        jac=(basis.hand_jacobian(params, x), jax.jacfwd(f)(flat), jax.jacrev(f)(flat)),
    )


def assert_all_match(params, x, y):
    w = witnesses(params, x, y)
    assert rel_err(*w["grad"]) <= TOL64
    assert rel_err(*w["hess"]) <= TOL64
    J, J_fwd, J_rev = w["jac"]
    assert rel_err(J, J_fwd) <= TOL64 and rel_err(J, J_rev) <= TOL64
    return w


# (kind, size, k): few distinct shapes (each compiles once); hypothesis varies the numbers.
FIXED = [("poly-increasing", 2, 1), ("poly-decreasing", 3, 2), ("rbf", 3, 1), ("rbf-2d", 2, 2), ("fourier", 2, 2)]


@settings(max_examples=10, deadline=None)
@given(case=st.sampled_from(FIXED), seed=st.integers(0, 2**16))
def test_fixed_bases_match_autodiff(case, seed):
    kind, size, k = case
    params, x, y = problem(make_basis(kind, size), seed, 6, k)
    w = assert_all_match(params, x, y)
    J = w["jac"][0]  # linear in Θ: the Hessian is the Gauss-Newton matrix ΦᵀΦ (⊗ I_k)
    assert rel_err(w["hess"][0], J.T @ J) <= TOL64


@pytest.mark.parametrize("activation,k", [("tanh", 1), ("sigmoid", 2), ("relu", 2), ("softplus", 1), ("identity", 2)])
def test_learned_basis_every_activation(activation, k):
    params, x, y = problem(make_basis("learned", 3, activation), 7, 5, k)
    assert_all_match(params, x, y)


def test_design_matrices_by_hand():
    x = jnp.array([2.0, -1.0])
    inc = basis.design_matrix(basis.polynomial(2, ordering="increasing"), x)
    np.testing.assert_array_equal(inc, [[1, 2, 4], [1, -1, 1]])  # [1, x, x²] (Lecture 2)
    dec = basis.design_matrix(basis.polynomial(3, ordering="decreasing"), x)
    np.testing.assert_array_equal(dec, [[8, 4, 2, 1], [-1, 1, -1, 1]])  # [x³, x², x, 1] (Lecture 1.3)
    four = basis.design_matrix(basis.fourier([1.0, 3.0]), jnp.array([0.0, np.pi / 2]))
    np.testing.assert_allclose(four, [[1, 1, 1, 0, 0], [1, 0, 0, 1, -1]], atol=1e-15)
    r = basis.design_matrix(basis.rbf([0.0, 1.0], lengthscale=2.0), jnp.array([[0.0], [3.0]]))
    np.testing.assert_allclose(r, np.exp(-np.array([[0, 1], [9, 4]]) / 8.0), rtol=1e-15)
    assert r.shape == (2, 2)
    b = make_basis("learned", 2, "tanh")
    params, X, _ = problem(b, 0, 4, 1)
    np.testing.assert_allclose(basis.design_matrix(params, X), np.tanh(X @ params.A.T + params.b), rtol=1e-14)


def test_rbf_on_a_centre_has_finite_derivatives():
    """Inputs exactly on the centres: every derivative finite, under jax_debug_nans."""
    centres = np.array([[0.0, 0.0], [1.0, -1.0], [0.5, 0.5]])
    b = basis.rbf(centres, lengthscale=0.7)
    params, _, y = problem(b, 3, 3, 1)
    x = jnp.asarray(centres)

    @jax.jit
    def derivatives(params, x):
        return dict(
            hand_grad=basis.hand_gradient(params, x, y).theta,
            hand_hess=basis.hand_hessian(params, x, y),
            grad=jax.grad(loss)(params, x, y).theta,
            hess=mj.hessian_matrix(loss)(params, x, y),
            grad_x=jax.grad(loss, argnums=1)(params, x, y),
            hess_x=jax.hessian(lambda x: jnp.sum(basis.design_matrix(b, x)))(x),
        )

    with jax.debug_nans(True):
        w = derivatives(params, x)
    assert all(np.all(np.isfinite(a)) for a in w.values())
    assert rel_err(w["hand_grad"], w["grad"]) <= TOL64 and rel_err(w["hand_hess"], w["hess"]) <= TOL64
    np.testing.assert_allclose(np.diag(basis.design_matrix(b, x)), 1.0)
    # At its centre φ_j has zero slope and curvature −I/ℓ²: d²φ_0/dx_0² = −I/0.49 + (terms of φ_1, φ_2).
    others = sum(
        np.exp(-np.sum((centres[0] - c) ** 2) / 0.98)
        * (np.outer(c - centres[0], c - centres[0]) / 0.49**2 - np.eye(2) / 0.49)
        for c in centres[1:]
    )
    np.testing.assert_allclose(w["hess_x"][0, :, 0, :], -np.eye(2) / 0.49 + others, rtol=1e-12)


def test_check_derivative_with_finite_differences():
    for b in (make_basis("learned", 2, "softplus"),):
        params, x, y = problem(b, 11, 6, 2)
        flat, unravel = mj.ravel_vec(params)
        L = lambda v: loss(unravel(v), x, y)
        g = mj.check_derivative(L, lambda v: mj.ravel_vec(basis.hand_gradient(unravel(v), x, y))[0], flat)
        assert g.ok and g.finite_diff_rel < 1e-6, g.message


def test_checker_rejects_learned_basis_gradient_without_activation_derivative():
    """δ = r θᵀ without ⊙ σ'(Z): wrong dL/dA and dL/db; the checker must reject it."""
    params, x, y = problem(make_basis("learned", 2), 5, 6, 1)
    flat, unravel = mj.ravel_vec(params)

    def wrong(v):
        p = unravel(v)
        g = basis.hand_gradient(p, x, y)
        delta = jnp.outer(basis.apply(p, x) - y, p.theta)  # missing σ'(Z)
        return mj.ravel_vec(basis.BasisParams(g.theta, delta.T @ x, delta.sum(0), p.basis))[0]

    result = mj.check_derivative(lambda v: loss(unravel(v), x, y), wrong, flat, name="learned basis without σ'")
    assert not result.ok and result.autodiff_rel > 1e-2 and "FAILED" in result.message


@jax.jit
def hand_values(params, x, y):
    return basis.apply(params, x), basis.hand_gradient(params, x, y), basis.hand_hessian(params, x, y)


def test_float32():
    b = make_basis("learned", 3)
    p32, x32, y32 = problem(b, 2, 30, 2, np.float32)
    f32, g32, H32 = hand_values(p32, x32, y32)
    assert all(a.dtype == jnp.float32 for a in jax.tree_util.tree_leaves((f32, g32, H32)))
    _, g64, H64 = hand_values(*problem(b, 2, 30, 2))
    assert rel_err(g32, g64) <= 1e-4 and rel_err(H32, H64) <= 1e-4
    r32 = basis.design_matrix(make_basis("rbf", 3), x32[:, 0])
    assert r32.dtype == jnp.float32


def test_init_jit_vmap():
    b = basis.learned(2, 4, "tanh")
    params = basis.init(jax.random.key(0), b, out_features=3)
    assert params.theta.shape == (4, 3) and params.A.shape == (4, 2) and params.b.shape == (4,)
    x = jnp.linspace(-1, 1, 10).reshape(5, 2)
    # vmap over an ensemble of parameters (stacked leaves; the basis stays static)
    ens = jax.tree_util.tree_map(lambda a: jnp.stack([a, 2 * a]), params)
    out, out_1 = jax.jit(lambda e, p: (jax.vmap(basis.apply, in_axes=(0, None))(e, x), basis.apply(p, x)))(
        ens, jax.tree_util.tree_map(lambda a: 2 * a, params)
    )
    assert out.shape == (2, 5, 3)
    np.testing.assert_allclose(out[1], out_1, rtol=1e-14)
    # the basis is part of the tree structure: a jitted function retraces for a new basis only
    inc, dec = basis.polynomial(2, "increasing"), basis.polynomial(2, "decreasing")
    p_inc, p_dec = (basis.BasisParams(jnp.ones(3), None, None, bb) for bb in (inc, dec))
    assert jax.tree_util.tree_structure(p_inc) != jax.tree_util.tree_structure(p_dec)
    assert basis.polynomial(2, "increasing") == inc and hash(basis.rbf([0.0, 1.0], 1.0))
    assert jax.tree_util.tree_leaves(p_inc) == [p_inc.theta]  # only Θ is a parameter


def test_errors_name_expected_and_received():
    poly = basis.polynomial(2, ordering="increasing")
    p = basis.init(jax.random.key(0), poly)
    with pytest.raises(ValueError, match=r"scalar inputs, x of shape \(n,\).*got shape \(4, 2\)"):
        basis.apply(p, jnp.ones((4, 2)))
    with pytest.raises(ValueError, match=r"y must have the shape of the predictions, \(4,\); got \(4, 1\)"):
        basis.hand_gradient(p, jnp.ones(4), jnp.ones((4, 1)))
    with pytest.raises(ValueError, match="ordering must be 'increasing'.*'decreasing'.*got 'ascending'"):
        basis.polynomial(2, ordering="ascending")
    other = basis.init(jax.random.key(0), basis.polynomial(4, ordering="increasing"))
    with pytest.raises(ValueError, match=r"theta must have shape \(3,\) or \(3, k\).*got \(5,\)"):
        basis.apply(basis.BasisParams(other.theta, None, None, poly), jnp.ones(4))
    lb = basis.learned(3, 4)
    pl = basis.init(jax.random.key(0), lb)
    with pytest.raises(ValueError, match=r"\(n, d\) = \(n, 3\).*got shape \(4,\)"):
        basis.apply(pl, jnp.ones(4))
    with pytest.raises(ValueError, match=r"params.A must have shape \(4, 3\).*got \(4, 2\)"):
        basis.apply(basis.BasisParams(pl.theta, jnp.ones((4, 2)), pl.b, lb), jnp.ones((4, 3)))
    with pytest.raises(TypeError, match="learned basis needs its parameters"):
        basis.design_matrix(lb, jnp.ones((4, 3)))
    r2 = basis.rbf(np.zeros((3, 2)), 1.0)
    with pytest.raises(ValueError, match=r"x has shape \(5, 3\).*\(n, 2\).*centres have shape \(3, 2\)"):
        basis.design_matrix(r2, jnp.ones((5, 3)))
    with pytest.raises(ValueError, match="lengthscale must be > 0; got 0"):
        basis.rbf([0.0], 0.0)
    with pytest.raises(TypeError, match="params must be a BasisParams"):
        basis.apply(mj.models.linear.init(jax.random.key(0), 3), jnp.ones(4))
