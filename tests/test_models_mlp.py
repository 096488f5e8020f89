"""mmljax.models.mlp: backpropagation, per-example Jacobian and Gauss-Newton by hand vs autodiff."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import rel_err
from hypothesis import example, given, settings
from hypothesis import strategies as st

import mmljax as mj
from mmljax.models import mlp

TOL64 = 1e-10
ACTS = ["tanh", "sigmoid", "relu", "softplus", "identity"]


def problem(sizes, activation, seed, n=5, dtype=np.float64):
    """Random weights and (non-zero) biases, inputs and targets, drawn with numpy."""
    rng = np.random.default_rng(seed)
    layers = tuple(
        mlp.Layer(
            jnp.asarray(rng.standard_normal((m, k)) / np.sqrt(k), dtype),
            jnp.asarray(0.5 * rng.standard_normal(m), dtype),
        )
        for k, m in zip(sizes[:-1], sizes[1:])
    )
    x = jnp.asarray(rng.standard_normal((n, sizes[0])), dtype)
    y = jnp.asarray(rng.standard_normal((n,) if sizes[-1] == 1 else (n, sizes[-1])), dtype)
    return mlp.MLPParams(layers, activation), x, y


def loss(params, x, y):
    return 0.5 * jnp.sum((y - mlp.apply(params, x)) ** 2)


@jax.jit
def witnesses(params, x, y):
    flat, unravel = mj.ravel_vec(params)
    J_ad = jax.jacrev(lambda v: mlp.apply(unravel(v), x).reshape(-1))(flat)
    return dict(
        grad=(mlp.hand_gradient(params, x, y), jax.grad(loss)(params, x, y)),
        jac=(mlp.hand_jacobian(params, x), J_ad),
        gn=(mlp.hand_gauss_newton(params, x), J_ad.T @ J_ad),
    )


def assert_all_match(params, x, y):
    w = witnesses(params, x, y)
    assert rel_err(*w["grad"]) <= TOL64
    J, J_ad = w["jac"]
    n, k = x.shape[0], mlp.sizes(params)[-1]
    assert J.shape == (n * k, mj.ravel_vec(params)[0].size)
    assert rel_err(J, J_ad) <= TOL64
    assert rel_err(*w["gn"]) <= TOL64


# Every activation, depths 1-4 and one or two outputs appear among the explicit examples.
@settings(max_examples=4, deadline=None)
@given(
    depth=st.integers(1, 4),
    width=st.sampled_from([2, 4]),
    k=st.sampled_from([1, 2]),
    activation=st.sampled_from(ACTS),
    seed=st.integers(0, 2**16),
)
@example(depth=1, width=2, k=2, activation="identity", seed=0)
@example(depth=2, width=4, k=1, activation="relu", seed=1)
@example(depth=3, width=2, k=2, activation="tanh", seed=2)
@example(depth=4, width=4, k=1, activation="sigmoid", seed=3)
@example(depth=3, width=4, k=2, activation="softplus", seed=4)
def test_backprop_jacobian_gauss_newton_match_autodiff(depth, width, k, activation, seed):
    sizes = [3] + [width + (l % 2) for l in range(depth - 1)] + [k]  # uneven widths
    assert_all_match(*problem(sizes, activation, seed))


@jax.jit
def jacobian_fwd_rev(params, x):
    flat, unravel = mj.ravel_vec(params)
    f = lambda v: mlp.apply(unravel(v), x).reshape(-1)
    return mlp.hand_jacobian(params, x), jax.jacfwd(f)(flat), jax.jacrev(f)(flat)


def test_per_example_jacobian_rows_example_major_fwd_and_rev():
    params, x, _ = problem([2, 3, 2], "tanh", 10, n=3)
    J, J_fwd, J_rev = jacobian_fwd_rev(params, x)
    assert rel_err(J, J_fwd) <= TOL64 and rel_err(J, J_rev) <= TOL64
    # row i·k + j is output j of example i; the last two columns are d/db_2 = I for each example
    np.testing.assert_array_equal(J[:, -2:], np.tile(np.eye(2), (3, 1)))


def test_gauss_newton_is_hessian_at_zero_residual():
    """JᵀJ = Hessian of ½||f(θ) − f(θ₀)||² at θ₀ (the residual term vanishes)."""
    params, x, _ = problem([2, 3, 2], "tanh", 4)
    flat, unravel = mj.ravel_vec(params)
    y0 = mlp.apply(params, x)
    H = jax.jit(jax.hessian(lambda v: loss(unravel(v), x, y0)))(flat)
    assert rel_err(mlp.hand_gauss_newton(params, x), H) <= 1e-12


def test_check_derivative_with_finite_differences():
    params, x, y = problem([3, 4, 3, 2], "softplus", 2)
    flat, unravel = mj.ravel_vec(params)
    r = mj.check_derivative(
        lambda v: loss(unravel(v), x, y),
        lambda v: mj.ravel_vec(mlp.hand_gradient(unravel(v), x, y))[0],
        flat,
        name="backprop",
    )
    assert r.ok and r.finite_diff_rel < 1e-6, r.message


def wrong_backprop(params, x, y):
    """Backprop that forgets σ'(z): δ_{l−1} = δ_l A_l."""
    _, Fs, _ = mlp._forward(params, x, "test")
    delta = Fs[-1] - y.reshape(Fs[-1].shape)
    grads = []
    for l in range(len(params.layers) - 1, -1, -1):
        grads.append(mlp.Layer(delta.T @ Fs[l], delta.sum(0)))
        delta = delta @ params.layers[l].A
    return mlp.MLPParams(tuple(reversed(grads)), params.activation)


def test_checker_rejects_backprop_without_activation_derivative():
    params, x, y = problem([3, 4, 1], "tanh", 3)
    flat, unravel = mj.ravel_vec(params)
    r = mj.check_derivative(
        lambda v: loss(unravel(v), x, y),
        lambda v: mj.ravel_vec(wrong_backprop(unravel(v), x, y))[0],
        flat,
        name="backprop without σ'",
    )
    assert not r.ok and r.autodiff_rel > 1e-2 and "FAILED" in r.message


def test_relu_at_a_kink_matches_autodiff():
    """z = 0 exactly: the hand σ'(0) = 0 is the value jax.nn.relu's derivative uses."""
    params, x, y = problem([2, 3, 1], "relu", 5)
    layers = (mlp.Layer(params.layers[0].A, jnp.zeros(3)), params.layers[1])
    params = mlp.MLPParams(layers, "relu")
    x = x.at[0].set(0.0)  # first example: all pre-activations of layer 1 are exactly 0
    assert_all_match(params, x, y)


def test_equinox_view_shares_params_and_function():
    params, x, y = problem([3, 4, 2], "tanh", 6)
    model = mlp.MLP(params)
    assert model.params is params and model.sizes == [3, 4, 2] and model.activation == "tanh"
    np.testing.assert_array_equal(model(x), mlp.apply(params, x))
    g = eqx.filter_jit(eqx.filter_grad(lambda m, x, y: 0.5 * jnp.sum((y - m(x)) ** 2)))(model, x, y)
    assert isinstance(g, mlp.MLP)
    assert rel_err(g.params, mlp.hand_gradient(params, x, y)) <= TOL64
    m2 = mlp.MLP.init(jax.random.key(0), [3, 5, 1], activation="relu")
    assert m2(x).shape == (5,) and m2.sizes == [3, 5, 1]


def test_float32():
    p32, x32, y32 = problem([3, 4, 2], "sigmoid", 7, n=20, dtype=np.float32)
    p64, x64, y64 = problem([3, 4, 2], "sigmoid", 7, n=20)
    fn = jax.jit(lambda p, x, y: (mlp.apply(p, x), mlp.hand_gradient(p, x, y), mlp.hand_jacobian(p, x)))
    out32 = fn(p32, x32, y32)
    assert all(a.dtype == jnp.float32 for a in jax.tree_util.tree_leaves(out32))
    out64 = fn(p64, x64, y64)
    assert rel_err(out32[1], out64[1]) <= 1e-4 and rel_err(out32[2], out64[2]) <= 1e-4


def test_init_jit_vmap():
    params = mlp.init(jax.random.key(0), [3, 8, 2], activation="softplus")
    assert [l.A.shape for l in params.layers] == [(8, 3), (2, 8)] and not jnp.any(params.layers[0].b)
    assert mlp.sizes(params) == [3, 8, 2] and params.activation == "softplus"
    params, x, y = problem([3, 4, 2], "softplus", 9)
    ens = jax.tree_util.tree_map(lambda a: jnp.stack([a, -a]), params)
    xb, yb = jnp.stack([x, 2 * x]), jnp.stack([y, -y])

    @jax.jit
    def run(ens, xb, yb):
        return (
            jax.vmap(mlp.apply, in_axes=(0, None))(ens, x),
            jax.vmap(mlp.hand_gradient, in_axes=(None, 0, 0))(params, xb, yb),
            mlp.apply(jax.tree_util.tree_map(lambda a: -a, params), x),
            mlp.hand_gradient(params, 2 * x, -y),
        )

    out, gb, out_1, g_1 = run(ens, xb, yb)
    assert out.shape == (2, 5, 2)
    np.testing.assert_allclose(out[1], out_1, rtol=1e-14)
    assert rel_err(jax.tree_util.tree_map(lambda a: a[1], gb), g_1) <= 1e-13


def test_errors_name_expected_and_received():
    params, x, y = problem([3, 4, 1], "tanh", 8)
    with pytest.raises(ValueError, match=r"\(n, 3\).*got shape \(5,\)"):
        mlp.apply(params, x[:, 0])
    with pytest.raises(ValueError, match=r"x has shape \(5, 2\).*expects 3 input feature.*A of shape \(4, 3\)"):
        mlp.apply(params, x[:, :2])
    other, _, _ = problem([3, 6, 1], "tanh", 8)  # a layer from another architecture
    mixed = mlp.MLPParams((params.layers[0], other.layers[1]), "tanh")
    with pytest.raises(ValueError, match=r"layer 2 has A of shape \(1, 6\) but layer 1 outputs 4.*\(1, 4\)"):
        mlp.apply(mixed, x)
    with pytest.raises(ValueError, match=r"y must have the shape of the predictions, \(5,\); got \(5, 1\)"):
        mlp.hand_gradient(params, x, y[:, None])
    with pytest.raises(ValueError, match="activation must be one of"):
        mlp.init(jax.random.key(0), [2, 3, 1], activation="gelu")
    with pytest.raises(ValueError, match="sizes must be"):
        mlp.init(jax.random.key(0), [3])
    with pytest.raises(TypeError, match="params must be a MLPParams.*got LinearParams"):
        mlp.apply(mj.models.linear.init(jax.random.key(0), 3), x)
