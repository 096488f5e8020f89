"""mmljax.losses: values, hand gradients w.r.t. predictions (and penalty gradients) vs autodiff."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import rel_err
from hypothesis import given, settings
from hypothesis import strategies as st

import mmljax as mj
from mmljax import losses

TOL64 = 1e-10
PLAIN = [
    (losses.sse, losses.sse_gradient),
    (losses.half_sse, losses.half_sse_gradient),
    (losses.mse, losses.mse_gradient),
]
RIDGE = [
    (losses.ridge_sse, losses.ridge_sse_gradient),
    (losses.ridge_half_sse, losses.ridge_half_sse_gradient),
    (losses.ridge_mse, losses.ridge_mse_gradient),
]


@jax.jit
def all_gradients(pred, y, params, lam):
    plain = [(g(pred, y), jax.grad(f)(pred, y)) for f, g in PLAIN]
    ridge = [(g(pred, y, params, lam), jax.grad(f, argnums=(0, 2))(pred, y, params, lam)) for f, g in RIDGE]
    return plain, ridge


@settings(max_examples=10, deadline=None)
@given(shape=st.sampled_from([(7,), (5, 3)]), seed=st.integers(0, 2**16))
def test_hand_gradients_match_autodiff(shape, seed):
    rng = np.random.default_rng(seed)
    pred, y = rng.standard_normal(shape), rng.standard_normal(shape)
    params = {"A": jnp.asarray(rng.standard_normal((2, 3))), "b": jnp.asarray(rng.standard_normal(2))}
    plain, ridge = all_gradients(jnp.asarray(pred), jnp.asarray(y), params, 0.3)
    for hand, ad in plain:
        assert hand.shape == shape and rel_err(hand, ad) <= TOL64
    for hand, (ad_pred, ad_params) in ridge:
        assert rel_err(hand.pred, ad_pred) <= TOL64 and rel_err(hand.params, ad_params) <= TOL64


def test_values_by_hand():
    pred, y = jnp.array([1.0, 2.0, 4.0]), jnp.array([0.0, 2.0, 1.0])
    assert losses.sse(pred, y) == 10.0 and losses.half_sse(pred, y) == 5.0
    assert abs(losses.mse(pred, y) - 10.0 / 3) < 1e-15
    theta = {"w": jnp.array([1.0, -2.0])}
    assert losses.l2_penalty(theta) == 5.0
    assert losses.ridge_sse(pred, y, theta, 0.5) == 12.5
    assert losses.ridge_half_sse(pred, y, theta, 0.5) == 6.25
    assert abs(losses.ridge_mse(pred, y, theta, 0.5) - (10.0 / 3 + 2.5)) < 1e-15


def test_check_derivative_with_finite_differences():
    """All three losses at once: f(p) = [sse, half_sse, mse], its Jacobian the stacked gradients."""
    rng = np.random.default_rng(1)
    pred, y = jnp.asarray(rng.standard_normal((4, 2))), jnp.asarray(rng.standard_normal((4, 2)))
    r = mj.check_derivative(
        lambda p: jnp.stack([f(p, y) for f, _ in PLAIN]),
        lambda p: jnp.stack([g(p, y) for _, g in PLAIN]),
        pred,
        name="sse, half_sse, mse",
    )
    assert r.ok and r.finite_diff_rel < 1e-6, r.message


def test_checker_rejects_sse_gradient_without_the_2():
    pred, y = jnp.array([1.0, 2.0, 4.0]), jnp.array([0.0, 2.0, 1.0])
    r = mj.check_derivative(lambda p: losses.sse(p, y), lambda p: p - y, pred, name="d sse / d pred = pred − y")
    assert not r.ok and abs(r.autodiff_rel - 0.5) < 1e-12


def test_ridge_minimiser_of_the_linear_model():
    """(ΦᵀΦ + λI)⁻¹Φᵀy minimises ridge_half_sse (and ridge_sse, twice it) of Φθ."""
    rng = np.random.default_rng(2)
    Phi, y, lam = jnp.asarray(rng.standard_normal((12, 3))), jnp.asarray(rng.standard_normal(12)), 0.7
    theta = jnp.linalg.solve(Phi.T @ Phi + lam * jnp.eye(3), Phi.T @ y)
    assert mj.check_minimiser(lambda t: losses.ridge_half_sse(Phi @ t, y, t, lam), theta).ok
    # the hand gradients assemble to zero there: Φᵀ dL/dpred + dPenalty/dθ
    g = losses.ridge_sse_gradient(Phi @ theta, y, theta, lam)
    assert np.max(np.abs(g.pred @ Phi + g.params)) < 1e-12


def test_float32_jit_vmap():
    pred, y = jnp.ones((4, 2), jnp.float32), jnp.zeros((4, 2), jnp.float32)
    for f, g in PLAIN:
        assert f(pred, y).dtype == jnp.float32 and g(pred, y).dtype == jnp.float32
    batched = jax.jit(jax.vmap(losses.mse))(jnp.stack([pred, 2 * pred]), jnp.stack([y, y]))
    np.testing.assert_allclose(batched, [1.0, 4.0])
    assert losses.ridge_half_sse(pred, y, {"w": jnp.ones(2, jnp.float32)}, 0.1).dtype == jnp.float32


def test_errors_name_both_shapes():
    with pytest.raises(ValueError, match=r"same shape; got pred \(5,\) and y \(5, 1\).*trailing axis"):
        losses.sse(jnp.ones(5), jnp.ones((5, 1)))
    with pytest.raises(ValueError, match=r"half_sse_gradient: .*got pred \(5, 2\) and y \(2, 5\)"):
        losses.half_sse_gradient(jnp.ones((5, 2)), jnp.ones((2, 5)))
    with pytest.raises(ValueError, match="lam must be >= 0"):
        losses.ridge_sse(jnp.ones(2), jnp.ones(2), jnp.ones(2), -1.0)
    with pytest.raises(ValueError, match="lam must be a scalar"):
        losses.ridge_mse_gradient(jnp.ones(2), jnp.ones(2), jnp.ones(2), jnp.ones(2))
    with pytest.raises(TypeError, match="pred must be a floating array"):
        losses.mse(jnp.ones(2, jnp.int32), jnp.ones(2))
