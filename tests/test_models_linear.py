"""mmljax.models.linear: hand gradient, Hessian and per-example Jacobian vs autodiff and finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import rel_err
from hypothesis import given, settings
from hypothesis import strategies as st

import mmljax as mj
from mmljax.models import linear

TOL64 = 1e-10


def problem(seed, n, d, k, bias, dtype=np.float64):
    """Random params (non-zero bias) and data, drawn with numpy: nothing to compile per shape."""
    rng = np.random.default_rng(seed)
    kshape = () if k == 1 else (k,)
    params = linear.LinearParams(
        jnp.asarray(rng.standard_normal((d,) + kshape), dtype),
        jnp.asarray(rng.standard_normal(kshape), dtype) if bias else None,
    )
    x = jnp.asarray(rng.standard_normal((n, d)), dtype)
    y = jnp.asarray(rng.standard_normal((n,) + kshape), dtype)
    return params, x, y


def loss(params, x, y):
    return 0.5 * jnp.sum((y - linear.apply(params, x)) ** 2)


@jax.jit
def witnesses(params, x, y):
    """Hand values and their autodiff references, compiled once per shape."""
    flat, unravel = mj.ravel_vec(params)
    f = lambda v: linear.apply(unravel(v), x).reshape(-1)  # example-major rows
    return dict(
        grad=(linear.hand_gradient(params, x, y), jax.grad(loss)(params, x, y)),
        hess=(linear.hand_hessian(params, x, y), mj.hessian_matrix(loss)(params, x, y)),
        jac=(linear.hand_jacobian(params, x), jax.jacfwd(f)(flat), jax.jacrev(f)(flat)),
    )


# (d, k, bias): few distinct shapes (each compiles once); hypothesis varies the numbers.
SHAPES = [(1, 1, True), (3, 2, True), (3, 1, False), (1, 2, False)]


@settings(max_examples=10, deadline=None)
@given(shape=st.sampled_from(SHAPES), seed=st.integers(0, 2**16))
def test_hand_gradient_hessian_jacobian_match_autodiff(shape, seed):
    (d, k, bias), n = shape, 5
    params, x, y = problem(seed, n, d, k, bias)
    w = witnesses(params, x, y)
    assert rel_err(*w["grad"]) <= TOL64
    H, H_ad = w["hess"]
    assert rel_err(H, H_ad) <= TOL64
    J, J_fwd, J_rev = w["jac"]
    assert J.shape == (n * k, mj.ravel_vec(params)[0].size)
    assert rel_err(J, J_fwd) <= TOL64 and rel_err(J, J_rev) <= TOL64
    assert rel_err(H, J.T @ J) <= TOL64  # linear in the parameters: Gauss-Newton is exact


def test_flat_order_is_vec_theta_then_bias():
    """The documented order: [vec(Θ); b], Θ column-major."""
    params = linear.LinearParams(jnp.arange(6.0).reshape(3, 2), jnp.array([10.0, 20.0]))
    flat, _ = mj.ravel_vec(params)
    np.testing.assert_array_equal(flat, [0, 2, 4, 1, 3, 5, 10, 20])
    x = jnp.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    H = linear.hand_hessian(params, x, jnp.zeros((2, 2)))
    # d²L/dΘ[0,0] db_0 = Σ_n x_n0 = 5, d²L/db_0² = n = 2, and no coupling between the two outputs.
    assert H[0, 6] == 5.0 and H[6, 6] == 2.0 and H[0, 7] == 0.0 and H[0, 3] == 0.0


def test_check_derivative_gradient_and_hessian():
    params, x, y = problem(1, 6, 3, 2, True)
    flat, unravel = mj.ravel_vec(params)
    L = lambda v: loss(unravel(v), x, y)
    g = mj.check_derivative(
        L, lambda v: mj.ravel_vec(linear.hand_gradient(unravel(v), x, y))[0], flat, name="linear gradient"
    )
    assert g.ok, g.message
    assert g.finite_diff_rel < 1e-6
    h = mj.check_derivative(L, lambda v: linear.hand_hessian(unravel(v), x, y), flat, order=2, name="linear Hessian")
    assert h.ok, h.message


def test_checker_rejects_wrong_gradient():
    params, x, y = problem(2, 6, 3, 1, True)
    flat, unravel = mj.ravel_vec(params)
    L = lambda v: loss(unravel(v), x, y)

    def wrong(v):  # forgets the bias column: dL/db = 0
        g = linear.hand_gradient(unravel(v), x, y)
        return mj.ravel_vec(g._replace(bias=jnp.zeros_like(g.bias)))[0]

    result = mj.check_derivative(L, wrong, flat, name="linear gradient without dL/db")
    assert not result.ok
    assert result.autodiff_rel > 1e-3 and "FAILED" in result.message


@jax.jit
def hand_values(params, x, y):
    return dict(
        grad=linear.hand_gradient(params, x, y),
        auto=jax.grad(loss)(params, x, y),
        pred=linear.apply(params, x),
        hess=linear.hand_hessian(params, x, y),
        jac=linear.hand_jacobian(params, x),
    )


def test_float32_agrees_within_float32_tolerance():
    w32 = hand_values(*problem(3, 20, 4, 2, True, np.float32))
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(w32))
    w64 = hand_values(*problem(3, 20, 4, 2, True))
    assert rel_err(w32["grad"], w32["auto"]) <= 1e-5
    assert rel_err(w32["grad"], w64["grad"]) <= 1e-5 and rel_err(w32["hess"], w64["hess"]) <= 1e-5
    assert jnp.zeros(()).dtype == jnp.float64  # the library did not touch x64


def test_init_shapes_and_dtype():
    p = linear.init(jax.random.key(0), 4)
    assert p.theta.shape == (4,) and p.bias.shape == ()
    p = linear.init(jax.random.key(0), 4, 3, bias=False, dtype=jnp.float32)
    assert p.theta.shape == (4, 3) and p.bias is None and p.theta.dtype == jnp.float32
    with pytest.raises(ValueError, match="in_features must be >= 1; got 0"):
        linear.init(jax.random.key(0), 0)


def test_jit_and_vmap():
    params, x, y = problem(4, 5, 3, 2, True)
    ens = jax.tree_util.tree_map(lambda a: jnp.stack([a, -a]), params)  # an ensemble of two models
    xb, yb = jnp.stack([x, 2 * x]), jnp.stack([y, -y])

    @jax.jit
    def run(ens, xb, yb):
        return (
            jax.vmap(linear.apply, in_axes=(0, None))(ens, x),
            jax.vmap(linear.hand_hessian, in_axes=(None, 0, 0))(params, xb, yb),
            linear.hand_gradient(params, x, y),
        )

    out, Hb, g = run(ens, xb, yb)
    assert out.shape == (2, 5, 2)
    np.testing.assert_allclose(out[1], -(x @ params.theta) - params.bias, rtol=1e-14)
    np.testing.assert_allclose(Hb[1][:6, :6], 4 * Hb[0][:6, :6], rtol=1e-14)  # XᵀX scales with 2²
    np.testing.assert_allclose(g.theta, x.T @ (x @ params.theta + params.bias - y), rtol=1e-13)


def test_scalar_model_lecture_1_2():
    x, y = jnp.array([1.0, 2.0, 3.0]), jnp.array([2.1, 3.9, 6.2])
    L = lambda a: 0.5 * jnp.sum((y - linear.scalar_apply(a, x)) ** 2)
    a = jnp.asarray(1.7)
    hand = jax.jit(lambda a: (linear.scalar_hand_gradient(a, x, y), linear.scalar_hand_hessian(a, x, y)))(a)
    auto = jax.jit(lambda a: (jax.grad(L)(a), jax.hessian(L)(a)))(a)
    assert abs(hand[0] - auto[0]) <= 1e-12 and abs(hand[1] - auto[1]) <= 1e-12
    assert hand[1] == 14.0  # Σ x² ≥ 0: convex
    a_star = linear.scalar_minimiser(x, y)
    assert abs(a_star - 28.5 / 14.0) < 1e-14  # Σxy / Σx² = (2.1 + 7.8 + 18.6) / 14
    assert abs(linear.scalar_hand_gradient(a_star, x, y)) < 1e-12
    with pytest.raises(ValueError, match=r"a must be a scalar"):
        linear.scalar_apply(jnp.ones(2), x)
    with pytest.raises(ValueError, match=r"shape \(n,\).*got \(3, 1\)"):
        linear.scalar_apply(a, x[:, None])


def test_shape_errors_name_expected_and_received():
    params, x, y = problem(5, 7, 1, 1, True)
    with pytest.raises(ValueError, match=r"\(n, 1\).*got shape \(7,\).*x\[:, None\]"):
        linear.apply(params, x[:, 0])
    other = linear.LinearParams(jnp.ones(3), jnp.zeros(()))  # another architecture: 3 inputs
    with pytest.raises(ValueError, match=r"x has shape \(7, 1\).*expects 3 input feature.*theta has shape \(3,\)"):
        linear.apply(other, x)
    with pytest.raises(ValueError, match=r"y must have the shape of the predictions, \(7,\); got \(7, 1\)"):
        linear.hand_gradient(params, x, y[:, None])
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\).*got \(\)"):
        linear.apply(linear.LinearParams(jnp.ones((1, 2)), jnp.zeros(())), x)
    from mmljax.models import mlp

    with pytest.raises(TypeError, match="params must be a LinearParams.*got MLPParams"):
        linear.apply(mlp.MLPParams((mlp.Layer(jnp.ones((1, 1)), jnp.ones(1)),), "tanh"), x)
    with pytest.raises(TypeError, match="floating"):
        linear.apply(params, jnp.ones((7, 1), jnp.int32))
