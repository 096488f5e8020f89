"""The closed-form fits as JAX functions: jit, vmap, implicit derivatives, status and runtime checks.

Shapes are shared between tests where possible (each new shape or option compiles one program).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmljax import Status
from mmljax.data import load_strd, strd_scores
from mmljax.solvers import LeastSquaresResult, least_squares, linear_regression, polyfit

N, D = 24, 2


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((N, D))
    y = 0.5 + X @ np.array([1.5, -2.0]) + 0.1 * rng.standard_normal(N)
    return X, y


def _closed_form(X, y, lam):
    A = np.column_stack([np.ones(len(y)), X])
    P = np.diag([0.0] + [1.0] * X.shape[1])
    G = A.T @ A + lam * P
    beta = np.linalg.solve(G, A.T @ y)
    return A, P, G, beta


def test_jit_gives_the_eager_bits_and_a_pytree_result():
    ds = load_strd("Longley")
    eager = ds.fit()
    jitted = jax.jit(lambda X, y: linear_regression(X, y))(ds.X, ds.y)
    assert isinstance(jitted, LeastSquaresResult) and jitted.method == "auto"
    assert int(jitted.status) == Status.CONVERGED and bool(jitted.converged)
    for field in ("coefficients", "standard_errors", "residual_sd", "r_squared", "rss"):
        a, b = np.asarray(getattr(jitted, field)), np.asarray(getattr(eager, field))
        np.testing.assert_array_max_ulp(a, b, maxulp=1)
    s = strd_scores(ds, jitted)
    assert s["coefficients"] >= 12 and s["standard_errors"] >= 10
    assert "estimate" in eager.summary() and eager.to_dict()["status"] == "CONVERGED"


def test_vmap_bootstrap_matches_separate_fits(data):
    X, y = data
    rng = np.random.default_rng(0)
    idx = rng.integers(0, N, (16, N))
    fit = jax.jit(jax.vmap(lambda X, y: linear_regression(X, y)))
    res = fit(X[idx], y[idx])
    assert res.coefficients.shape == (16, D + 1) and res.status.shape == (16,)
    for b in (0, 7):
        want = np.linalg.lstsq(np.column_stack([np.ones(N), X[idx[b]]]), y[idx[b]], rcond=None)[0]
        np.testing.assert_allclose(res.coefficients[b], want, rtol=1e-12)
    # batched targets only (the design shared)
    Y = np.stack([y, 2 * y, -y])
    coef = jax.vmap(lambda t: linear_regression(X, t).coefficients)(Y)
    np.testing.assert_allclose(coef[1], 2 * coef[0], rtol=1e-13)


def test_rank_deficiency_under_vmap_gives_minimum_norm_and_rank_per_element(data):
    X, y = data
    good = np.column_stack([np.ones(N), X])
    bad = np.column_stack([np.ones(N), X[:, 0], X[:, 0]])  # a repeated column
    res = jax.vmap(lambda A: least_squares(A, y))(jnp.stack([good, bad]))
    assert res.rank.tolist() == [3, 2]
    assert [Status(int(s)) for s in res.status] == [Status.CONVERGED, Status.RANK_DEFICIENT]
    np.testing.assert_allclose(res.coefficients[1], np.linalg.pinv(bad) @ y, rtol=1e-10)
    assert np.all(np.isinf(res.standard_errors[1, 1:])) and np.isfinite(res.standard_errors[1, 0])


def test_nonfinite_data_under_jit_report_a_status_and_check_raises(data):
    X, y = data
    ybad = y.copy()
    ybad[3] = np.nan
    fit = jax.jit(lambda X, y: linear_regression(X, y))
    res = fit(X, ybad)
    assert int(res.status) == Status.NONFINITE_INPUT and np.all(np.isnan(res.coefficients))
    checked = jax.jit(lambda X, y: linear_regression(X, y, check=True).coefficients)
    np.testing.assert_allclose(checked(X, y), fit(X, y).coefficients)
    with pytest.raises(Exception, match="NaN or Inf"):
        jax.block_until_ready(checked(X, ybad))
    with pytest.raises(ValueError, match=r"y contains 1 NaN/Inf value\(s\) in row\(s\) \[3\]"):
        linear_regression(X, ybad)


def test_grad_with_respect_to_ridge_matches_the_closed_form_and_finite_differences(data):
    X, y = data
    lam = 0.7
    A, P, G, beta = _closed_form(X, y, lam)
    want = -np.linalg.solve(G, P @ beta)  # d beta / d lambda
    jac = jax.jacfwd(lambda l: linear_regression(X, y, ridge=l).coefficients)(lam)
    np.testing.assert_allclose(jac, want, rtol=1e-10)
    loss = lambda l: jnp.sum(linear_regression(X, y, ridge=l).coefficients ** 2)  # noqa: E731
    g = jax.grad(loss)(lam)
    np.testing.assert_allclose(g, 2 * beta @ want, rtol=1e-10)
    h = 1e-5
    value = jax.jit(loss)  # one program for both evaluations
    fd = (value(lam + h) - value(lam - h)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-7)


def test_jvp_and_vjp_with_respect_to_design_and_targets(data):
    X, y = data
    lam = 0.7
    A, P, G, beta = _closed_form(X, y, lam)
    rng = np.random.default_rng(1)
    dX, dy = rng.standard_normal(X.shape), rng.standard_normal(y.shape)
    dA = np.column_stack([np.zeros(N), dX])
    r = y - A @ beta
    want = np.linalg.solve(G, dA.T @ r - A.T @ dA @ beta + A.T @ dy)
    fit = lambda X, y: linear_regression(X, y, ridge=lam).coefficients  # noqa: E731
    _, got = jax.jvp(fit, (X, y), (dX, dy))
    np.testing.assert_allclose(got, want, rtol=1e-9)
    # reverse mode is the transpose: <vjp(c), (dX, dy)> == <c, jvp(dX, dy)>
    c = rng.standard_normal(D + 1)
    _, pull = jax.vjp(fit, X, y)
    gX, gy = pull(c)
    np.testing.assert_allclose(np.sum(gX * dX) + gy @ dy, c @ want, rtol=1e-9)


def test_statistics_are_differentiable_and_agree_with_finite_differences(data):
    X, y = data

    def stats(y):
        res = linear_regression(X, y)
        return jnp.stack([res.rss, res.residual_sd, res.r_squared, res.standard_errors[1]])

    rng = np.random.default_rng(2)
    v = rng.standard_normal(N)
    _, got = jax.jvp(stats, (y,), (v,))
    h = 1e-6
    value = jax.jit(stats)
    fd = (value(y + h * v) - value(y - h * v)) / (2 * h)
    np.testing.assert_allclose(got, fd, rtol=1e-6)


def test_polyfit_derivative_with_respect_to_x():
    x = np.linspace(-1.0, 2.0, 12)
    y = 1.0 + 0.5 * x - 0.25 * x**2 + 0.01 * np.cos(7 * x)
    fit = lambda x: polyfit(x, y, 2).coefficients  # noqa: E731
    v = np.sin(np.arange(12.0))
    _, got = jax.jvp(fit, (x,), (v,))
    h = 1e-6
    value = jax.jit(fit)
    fd = (value(x + h * v) - value(x - h * v)) / (2 * h)
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-9)


def test_float32_under_jit_without_x64_is_float32_accurate(data):
    X, y = data
    want = linear_regression(X, y).coefficients
    jax.config.update("jax_enable_x64", False)
    try:
        got = jax.jit(lambda X, y: linear_regression(X, y).coefficients)(X.astype(np.float32), y.astype(np.float32))
        assert got.dtype == jnp.float32
    finally:
        jax.config.update("jax_enable_x64", True)
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=2e-5)


def test_issue_statistics_edge_cases():
    """Constant y with an intercept: R² NaN (not -inf); a zero column: standard error inf (not 0);
    y of size 1e200 and columns scaled by 1e±300: finite statistics, scaled exactly."""
    x = np.linspace(0.0, 1.0, 10)
    const = linear_regression(x, np.full(10, 3.0))
    assert np.isnan(const.r_squared) and const.coefficients[0] == pytest.approx(3.0)
    A = np.column_stack([np.ones(10), x, np.zeros(10)])
    with pytest.warns(Warning):
        zero = least_squares(A, x**2)
    assert np.isinf(zero.standard_errors[2]) and np.all(np.isfinite(zero.standard_errors[:2]))
    y = 1 + x + 0.01 * np.sin(20 * x)
    base = linear_regression(x, y)
    big = linear_regression(x, y * 1e200)
    np.testing.assert_allclose(big.residual_sd, base.residual_sd * 1e200, rtol=1e-12)
    np.testing.assert_allclose(big.standard_errors, base.standard_errors * 1e200, rtol=1e-12)
    np.testing.assert_allclose(big.r_squared, base.r_squared, rtol=1e-14)
    S = np.column_stack([np.ones(10), x * 1e300, x**2 * 1e-300])
    wide = least_squares(S, y)
    ref = least_squares(np.column_stack([np.ones(10), x, x**2]), y)
    np.testing.assert_allclose(wide.coefficients * [1, 1e300, 1e-300], ref.coefficients, rtol=1e-12)
    np.testing.assert_allclose(wide.standard_errors * [1, 1e300, 1e-300], ref.standard_errors, rtol=1e-12)


def test_normal_equations_warn_when_the_condition_number_leaves_no_digits():
    x = np.linspace(0.5, 1.0, 30)
    V = np.vander(x, 8, increasing=True)  # cond ~1e7 → cond² eps ~ 1e-2
    y = np.sin(x)
    with pytest.warns(Warning, match="correct significant digits"):
        res = least_squares(V, y, method="cholesky")
    assert int(res.status) == Status.ILL_CONDITIONED and float(res.expected_digits) < 3


def test_an_eager_call_compiles_once_per_shape_and_options(data):
    """The compiled program is cached at module level: new data of the same shapes reuse it."""
    import importlib

    program = importlib.import_module("mmljax.solvers.least_squares")._packed_program
    programs = program._cache_size
    X, y = data
    linear_regression(X, y)
    before = programs()
    for scale in (2.0, 3.0, 5.0):
        linear_regression(X * scale, y + scale)
    assert programs() == before
    linear_regression(X[:-1], y[:-1])  # a new shape: one new program
    assert programs() == before + 1
