"""Iterative solvers: a consistency table against the closed form, divergence errors, Newton's
guarantees, and the optax loop's mini-batches, progress bar and checkpoint/resume."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mmljax.analysis import hessian_eigenvalues
from mmljax.solvers import (
    DivergenceError,
    gradient_descent,
    least_squares,
    linear_regression,
    minimize,
    newton,
    polyfit,
)

# ------------------------------------------------------------------ shared table of problems


def _linear():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = 0.5 + X @ np.array([1.0, -2.0, 0.25]) + 0.1 * rng.standard_normal(40)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)

    def loss(p):  # pytree parameters
        return 0.5 * jnp.sum((yj - Xj @ p["w"] - p["b"]) ** 2)

    ref = linear_regression(X, y).coefficients
    return loss, {"b": jnp.zeros(()), "w": jnp.zeros(3)}, lambda p: np.concatenate([[p["b"]], p["w"]]), ref


def _polynomial():
    rng = np.random.default_rng(1)
    x = np.linspace(-1, 1, 30)
    y = 1 - x + 0.5 * x**3 + 0.05 * rng.standard_normal(30)
    V = jnp.asarray(np.vander(x, 4, increasing=True))
    yj = jnp.asarray(y)
    return (lambda t: 0.5 * jnp.sum((yj - V @ t) ** 2)), jnp.zeros(4), np.asarray, polyfit(x, y, 3).coefficients


def _ridge():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((25, 4))
    y = rng.standard_normal(25)
    Xj, yj, lam = jnp.asarray(X), jnp.asarray(y), 2.0
    loss = lambda t: 0.5 * jnp.sum((yj - Xj @ t) ** 2) + 0.5 * lam * jnp.sum(t**2)  # noqa: E731
    return loss, jnp.zeros(4), np.asarray, least_squares(X, y, ridge=lam).coefficients


PROBLEMS = {"linear": _linear, "polynomial": _polynomial, "ridge": _ridge}
FAST = {("linear", "gradient_descent"), ("linear", "newton-dense"), ("ridge", "newton-cg")}
SOLVERS = {
    "gradient_descent": (lambda loss, p0: gradient_descent(loss, p0, max_steps=5000, tol=1e-12), 1e-8),
    "newton-dense": (lambda loss, p0: newton(loss, p0, method="dense"), 1e-10),
    "newton-cg": (lambda loss, p0: newton(loss, p0, method="cg"), 1e-10),
    "minimize-lbfgs": (lambda loss, p0: minimize(loss, p0, optax.lbfgs(), max_steps=100, tol=1e-12), 1e-9),
}


@pytest.mark.parametrize(
    "problem, solver",
    [pytest.param(p, s, marks=() if (p, s) in FAST else pytest.mark.slow) for p in PROBLEMS for s in SOLVERS],
)
def test_every_solver_reaches_the_closed_form(problem, solver):
    """The consistency table (a few cells run by default, all of them with the slow tests)."""
    loss, p0, to_vec, ref = PROBLEMS[problem]()
    run, rtol = SOLVERS[solver]
    res = run(loss, p0)
    assert res.converged, (problem, solver, res.grad_norm, res.steps)
    np.testing.assert_allclose(to_vec(res.params), ref, rtol=rtol, atol=rtol)
    assert jax.tree_util.tree_structure(res.params) == jax.tree_util.tree_structure(p0)


# ------------------------------------------------------------------ gradient descent


def test_gradient_descent_step_is_one_over_the_largest_curvature():
    A = jnp.asarray(np.diag([5.0, 2.0, 0.5]))
    loss = lambda x: 0.5 * x @ A @ x  # noqa: E731
    np.testing.assert_allclose(hessian_eigenvalues(loss, jnp.ones(3), k=1).eigenvalues, [5.0], rtol=1e-10)
    res = gradient_descent(loss, jnp.ones(3), max_steps=20, tol=0.0, trajectory=True)
    np.testing.assert_allclose(res.step_size, 0.2, rtol=1e-10)
    assert res.steps == 20 and not res.converged
    assert res.history.shape == (21,) and res.trajectory.shape == (21, 3)
    assert np.all(np.diff(np.asarray(res.history)) < 0)
    # with step 1/λmax the stiffest direction is solved in one step
    np.testing.assert_allclose(res.trajectory[1, 0], 0.0, atol=1e-12)
    np.testing.assert_allclose(res.trajectory[5, 2], 0.9**5, rtol=1e-10)
    assert res.history[0] == loss(jnp.ones(3))


def test_gradient_descent_divergence_names_step_and_last_finite_loss():
    msg = r"diverged at step \d+: .*last finite loss .* at step \d+.*step_size"
    with pytest.raises(DivergenceError, match=msg) as e:
        gradient_descent(lambda x: jnp.sum(x**2), jnp.ones(2), step_size=10.0, max_steps=1000)
    err = e.value
    assert err.step == err.last_finite_step + 1 and np.isfinite(err.last_finite_loss) and err.last_finite_loss > 1e300
    assert np.all(np.isfinite(err.params))


def test_flat_curvature_needs_an_explicit_step():
    with pytest.raises(ValueError, match="pass step_size="):
        gradient_descent(lambda x: jnp.sum(x), jnp.ones(2))


# ------------------------------------------------------------------ Newton


@pytest.mark.parametrize("method", ["dense", "cg"])
def test_newton_takes_one_step_on_a_quadratic(method):
    rng = np.random.default_rng(3)
    M = rng.standard_normal((6, 6))
    A, b = jnp.asarray(M @ M.T + 6 * np.eye(6)), jnp.asarray(rng.standard_normal(6))
    res = newton(lambda x: 0.5 * x @ A @ x - b @ x, jnp.zeros(6), method=method, cg_tol=1e-14)
    assert res.steps == 1 and res.converged and res.method == method
    np.testing.assert_allclose(res.params, np.linalg.solve(A, b), rtol=1e-12)


@pytest.mark.parametrize("method", ["dense", "cg"])
def test_newton_never_steps_uphill_and_escapes_a_saddle(method):
    rosen = lambda x: jnp.sum((1 - x[:-1]) ** 2 + 100 * (x[1:] - x[:-1] ** 2) ** 2)  # noqa: E731
    res = newton(rosen, jnp.array([-1.2, 1.0]), method=method, max_steps=200)
    assert res.converged
    np.testing.assert_allclose(res.params, [1.0, 1.0], rtol=1e-10)
    assert np.all(np.diff(np.asarray(res.history)) <= 0)
    # from next to the saddle of x² - y² + y⁴ it goes down to a minimum (|y| = 1/√2), not to the saddle
    res = newton(lambda x: x[0] ** 2 - x[1] ** 2 + x[1] ** 4, jnp.array([0.5, 1e-3]), method=method)
    np.testing.assert_allclose(jnp.abs(res.params), [0.0, 2**-0.5], atol=1e-9)


def test_newton_reports_a_non_finite_start():
    with pytest.raises(DivergenceError, match="diverged at step 0.*no finite loss before it"):
        newton(lambda x: jnp.sum(jnp.log(x)), -jnp.ones(2))
    with pytest.raises(ValueError, match="method must be one of"):
        newton(lambda x: jnp.sum(x**2), jnp.ones(2), method="bfgs")


# ------------------------------------------------------------------ optax loop


@pytest.fixture(scope="module")
def regression_data():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((96, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.05 * rng.standard_normal(96)
    data = {"X": jnp.asarray(X), "y": jnp.asarray(y)}

    def loss(p, batch):
        return 0.5 * jnp.mean((batch["y"] - batch["X"] @ p["w"] - p["b"]) ** 2)

    return loss, data, linear_regression(X, y).coefficients


def test_minibatch_adam_approaches_the_closed_form(regression_data):
    loss, data, ref = regression_data
    p0 = {"b": jnp.zeros(()), "w": jnp.zeros(3)}
    res = minimize(loss, p0, optax.adam(0.03), max_steps=1500, args=data, batch_size=16, progress=False)
    assert res.steps == 1500 and res.history.shape == (1500,) and not res.converged
    got = np.concatenate([[res.params["b"]], res.params["w"]])
    np.testing.assert_allclose(got, ref, atol=2e-2)  # mini-batch noise keeps it near, not at, the optimum
    assert float(res.history[-100:].mean()) < 0.01 * float(res.history[:10].mean())


def test_checkpoint_resume_is_identical_to_an_uninterrupted_run(regression_data, tmp_path, capsys):
    loss, data, _ = regression_data
    p0 = {"b": jnp.zeros(()), "w": jnp.zeros(3)}
    kw = dict(optimizer=optax.adam(0.05), max_steps=100, args=data, batch_size=16, checkpoint_every=20)
    whole = minimize(loss, p0, checkpoint=tmp_path / "whole.ckpt", progress=True, **kw)
    assert "minimize" in capsys.readouterr().err  # the progress bar went to stderr

    def crash(step, value):
        if step == 60:
            raise KeyboardInterrupt("simulated crash")

    path = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):
        minimize(loss, p0, checkpoint=path, callback=crash, progress=False, **kw)
    assert path.exists() and sorted(os.listdir(tmp_path)) == ["run.ckpt", "whole.ckpt"]  # no temp files left
    seen = []
    resumed = minimize(loss, p0, checkpoint=path, callback=lambda s, v: seen.append(s), progress=False, **kw)
    assert seen == [80, 100]  # continued from step 60
    for a, b in zip(jax.tree_util.tree_leaves(whole.params), jax.tree_util.tree_leaves(resumed.params)):
        assert np.array_equal(a, b)
    assert np.array_equal(whole.history, resumed.history)
    fresh = minimize(loss, p0, checkpoint=path, resume=False, progress=False, **{**kw, "max_steps": 20})
    assert fresh.steps == 20


def test_bad_checkpoints_are_clear_errors(regression_data, tmp_path):
    loss, data, _ = regression_data
    p0 = {"b": jnp.zeros(()), "w": jnp.zeros(3)}
    path = tmp_path / "c.ckpt"
    minimize(loss, p0, optax.sgd(0.1), max_steps=10, args=data, batch_size=16, checkpoint=path, checkpoint_every=5)
    differ = r"belongs to a different run — max_steps differ \(max_steps: saved 10 vs now 12\).*resume=False"
    with pytest.raises(ValueError, match=differ):
        minimize(loss, p0, optax.sgd(0.1), max_steps=12, args=data, batch_size=16, checkpoint=path, checkpoint_every=5)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ValueError, match="is corrupt: the payload's checksum"):
        minimize(loss, p0, optax.sgd(0.1), max_steps=10, args=data, batch_size=16, checkpoint=path, checkpoint_every=5)
    path.write_bytes(b"hello")
    with pytest.raises(ValueError, match="is not an mmljax checkpoint; refusing to overwrite"):
        minimize(loss, p0, optax.sgd(0.1), max_steps=10, args=data, batch_size=16, checkpoint=path)


def test_minimize_divergence_and_argument_errors(regression_data):
    with pytest.raises(DivergenceError, match=r"minimize: diverged at step (\d+).*last finite loss .* at step") as e:
        minimize(lambda p: jnp.sum(p**2), jnp.ones(2), optax.sgd(10.0), max_steps=1000)
    assert e.value.step == e.value.last_finite_step + 1
    loss, data, _ = regression_data
    p0 = {"b": jnp.zeros(()), "w": jnp.zeros(3)}
    with pytest.raises(ValueError, match="batch_size 500 is larger than the data"):
        minimize(loss, p0, max_steps=1, args=data, batch_size=500)
    with pytest.raises(ValueError, match="batch_size needs args="):
        minimize(lambda p: jnp.sum(p**2), jnp.ones(2), max_steps=1, batch_size=4)
    with pytest.raises(TypeError, match="optax GradientTransformation"):
        minimize(lambda p: jnp.sum(p**2), jnp.ones(2), "adam", max_steps=1)
    with pytest.raises(ValueError, match="loss must return a scalar"):
        gradient_descent(lambda p: p**2, jnp.ones(2))
    with pytest.raises(TypeError, match="floating"):
        newton(lambda p: jnp.sum(p**2), jnp.ones(2, int))
