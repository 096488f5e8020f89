"""Second-order analysis: critical-point kinds, Lanczos vs dense eigh, Hutchinson's trace."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from mmljax.analysis import classify_critical_point, hessian_eigenvalues, hessian_trace

A3 = jnp.asarray(np.diag([3.0, 1.0, 2.0]))

# (name, loss, point, expected kind): the second-order test at textbook points
CASES = [
    ("bowl", lambda x: 0.5 * x @ A3 @ x, jnp.zeros(3), "minimum"),
    ("cap", lambda x: -0.5 * x @ A3 @ x, jnp.zeros(3), "maximum"),
    ("saddle x²-y²", lambda x: x[0] ** 2 - x[1] ** 2, jnp.zeros(2), "saddle"),
    # a true minimum, but the Hessian is only semi-definite: the test is inconclusive (lecture erratum)
    ("x²+y⁴", lambda x: x[0] ** 2 + x[1] ** 4, jnp.zeros(2), "degenerate"),
    ("monkey saddle", lambda x: x[0] ** 3 - 3 * x[0] * x[1] ** 2, jnp.zeros(2), "degenerate"),
    ("x²-y²+y⁴ at its minimum", lambda x: x[0] ** 2 - x[1] ** 2 + x[1] ** 4, jnp.array([0.0, 2**-0.5]), "minimum"),
    ("slope", lambda x: jnp.sum(x**2) + x[0], jnp.zeros(2), "not_stationary"),
    (
        "pytree bowl",
        lambda p: jnp.sum(p["a"] ** 2) + jnp.sum((p["b"] - 1) ** 2),
        {"a": jnp.zeros((2, 2)), "b": jnp.ones(3)},
        "minimum",
    ),
]


LANCZOS = {"saddle x²-y²", "x²+y⁴", "pytree bowl"}  # the rest of the table with the slow tests


@pytest.mark.parametrize(
    "name, loss, point, kind, method",
    [
        pytest.param(*c, m, id=f"{c[0]}-{m}", marks=() if m == "dense" or c[0] in LANCZOS else pytest.mark.slow)
        for c in CASES
        for m in ("dense", "lanczos")
    ],
)
def test_classify_critical_point_table(name, loss, point, kind, method):
    res = classify_critical_point(loss, point, method=method, k=3)
    assert res.kind == kind, res.summary()
    assert res.method == method and res.dtype == np.float64
    assert res.n_positive + res.n_negative + res.n_zero == res.eigenvalues.size


def test_counts_extremes_and_tolerances():
    res = classify_critical_point(lambda x: 0.5 * x @ A3 @ x - 0.5 * x[2] ** 2 * 4, jnp.zeros(3))
    assert res.kind == "saddle" and (res.n_positive, res.n_negative, res.n_zero) == (2, 1, 0)
    np.testing.assert_allclose([res.min_eigenvalue, res.max_eigenvalue], [-2.0, 3.0], rtol=1e-14)
    assert res.tol == pytest.approx(np.sqrt(np.finfo(np.float64).eps))
    # a gradient of 1e-6 (a relative Newton step of 5e-7) is stationary only with a looser tolerance
    near = lambda x: jnp.sum(x**2) + 1e-6 * x[0]  # noqa: E731
    assert classify_critical_point(near, jnp.zeros(2)).kind == "not_stationary"
    assert classify_critical_point(near, jnp.zeros(2), tol=1e-5).kind == "minimum"
    # an explicit eigenvalue tolerance turns a tiny positive curvature into "zero"
    flat = lambda x: x[0] ** 2 + 1e-9 * x[1] ** 2  # noqa: E731
    assert classify_critical_point(flat, jnp.zeros(2)).kind == "minimum"
    assert classify_critical_point(flat, jnp.zeros(2), eig_tol=1e-6).kind == "degenerate"
    assert "minimum" in classify_critical_point(flat, jnp.zeros(2)).summary()


def test_float32_tolerances_come_from_the_dtype():
    res = classify_critical_point(lambda x: jnp.sum(x**2), jnp.zeros(3, jnp.float32))
    assert res.dtype == np.float32 and res.kind == "minimum"
    assert res.tol == pytest.approx(np.sqrt(np.finfo(np.float32).eps))


def _spectrum_problem(P=60, seed=0):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((P, P)))
    lam = np.concatenate([[10.0, 7.0, 6.5], np.linspace(-1, 5, P - 6), [-2.0, -3.0, -4.5]])
    H = jnp.asarray((Q * lam) @ Q.T)
    return (lambda x: 0.5 * x @ H @ x), np.sort(lam), H


def test_lanczos_extreme_eigenvalues_and_vectors_match_eigh():
    loss, lam, H = _spectrum_problem()
    top = hessian_eigenvalues(loss, jnp.ones(60), k=3, return_eigenvectors=True)
    np.testing.assert_allclose(top.eigenvalues, lam[::-1][:3], rtol=1e-10)
    for val, vec in zip(top.eigenvalues, top.eigenvectors):
        np.testing.assert_allclose(H @ vec, val * vec, atol=1e-8)
    bottom = hessian_eigenvalues(loss, jnp.ones(60), k=3, which="smallest")
    np.testing.assert_allclose(bottom.eigenvalues, lam[:3], rtol=1e-10)
    assert np.all(bottom.residual_norms < 1e-8) and bottom.iterations == 60


def test_lanczos_handles_an_invariant_subspace():
    # 3 distinct eigenvalues: the Krylov space is exhausted after 3 steps (breakdown, restart)
    d = jnp.asarray(np.repeat([1.0, 2.0, 5.0], 10))
    res = hessian_eigenvalues(lambda x: 0.5 * jnp.sum(d * x**2), jnp.ones(30), k=4, num_iterations=30)
    np.testing.assert_allclose(res.eigenvalues, [5.0, 5.0, 5.0, 5.0], rtol=1e-12)


def test_lanczos_warns_when_it_has_not_converged():
    loss, _, _ = _spectrum_problem(P=200, seed=1)
    with pytest.warns(RuntimeWarning, match="larger num_iterations"):
        hessian_eigenvalues(loss, jnp.ones(200), k=3, which="smallest", num_iterations=6)


def test_lanczos_argument_errors():
    loss = lambda x: jnp.sum(x**2)  # noqa: E731
    with pytest.raises(ValueError, match="which must be"):
        hessian_eigenvalues(loss, jnp.ones(3), 1, which="top")
    with pytest.raises(ValueError, match="k = 5 exceeds the number of parameters P = 3"):
        hessian_eigenvalues(loss, jnp.ones(3), 5)
    with pytest.raises(ValueError, match="not finite"):
        classify_critical_point(lambda x: jnp.sum(jnp.log(x)), -jnp.ones(2))
    with pytest.raises(ValueError, match="method must be"):
        classify_critical_point(loss, jnp.ones(2), method="power")


def test_hutchinson_trace_is_exact_for_a_diagonal_and_unbiased_otherwise():
    d = jnp.arange(1.0, 21.0)
    exact = hessian_trace(lambda x: 0.5 * jnp.sum(d * x**2), jnp.ones(20), num_samples=8)
    np.testing.assert_allclose(exact.estimate, 210.0, rtol=1e-13)
    assert float(exact.standard_error) < 1e-10
    loss, lam, _ = _spectrum_problem()
    est = hessian_trace(loss, jnp.ones(60), num_samples=400, key=jax.random.PRNGKey(3))
    assert abs(float(est.estimate) - lam.sum()) < 4 * float(est.standard_error)
    assert 0 < float(est.standard_error) < 0.2 * abs(lam.sum())


def _mlp_problem():
    from mmljax.models import mlp

    params = mlp.init(jax.random.PRNGKey(0), [4, 20, 16, 1], "tanh")  # 453 parameters
    X = jax.random.normal(jax.random.PRNGKey(1), (64, 4))
    y = jnp.sin(X[:, 0]) - 0.5 * X[:, 1]
    return params, (lambda p: 0.5 * jnp.mean((mlp.apply(p, X) - y) ** 2))


@pytest.mark.slow
def test_lanczos_top_eigenvalue_of_an_mlp_hessian_matches_dense_eigh():
    params, loss = _mlp_problem()
    flat, unravel = ravel_pytree(params)
    assert 400 <= flat.size <= 600
    H = jax.jit(jax.hessian(lambda v: loss(unravel(v))))(flat)
    dense = np.linalg.eigvalsh(np.asarray(H))
    top = hessian_eigenvalues(loss, params, k=2)
    np.testing.assert_allclose(top.eigenvalues, dense[::-1][:2], rtol=1e-8)
    bottom = hessian_eigenvalues(loss, params, k=1, which="smallest")
    np.testing.assert_allclose(bottom.eigenvalues, dense[:1], rtol=1e-8)
    res = classify_critical_point(loss, params, method="lanczos")
    assert res.kind == "not_stationary" and res.min_eigenvalue < 0 < res.max_eigenvalue


def test_results_are_modules_with_summary_and_to_dict():
    import json

    import equinox as eqx

    loss, lam, _ = _spectrum_problem(P=12, seed=2)
    cp = classify_critical_point(loss, jnp.zeros(12))
    top = hessian_eigenvalues(loss, jnp.zeros(12), k=2)
    tr = hessian_trace(loss, jnp.zeros(12), num_samples=4)
    for r in (cp, top, tr):
        assert isinstance(r, eqx.Module) and r.summary()
        json.dumps(r.to_dict())
    assert cp.to_dict()["kind"] == "saddle" and cp.to_dict()["n_negative"] == int(np.sum(lam < 0))
    np.testing.assert_allclose(top.to_dict()["eigenvalues"], np.sort(lam)[::-1][:2], rtol=1e-10)
