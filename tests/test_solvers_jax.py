"""Iterative solvers and analysis as JAX functions: compiled once per loss function (data as args=),
inside jax.jit and jax.vmap, newton's optimum differentiated implicitly, and the hardening of newton."""

import contextlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mmljax as mj
from mmljax import Status
from mmljax.analysis import KINDS, classify_critical_point, hessian_eigenvalues, hessian_trace
from mmljax.errors import DivergenceError
from mmljax.solvers import gradient_descent, minimize, newton


@contextlib.contextmanager
def count_compilations():
    """Counts XLA backend compilations (a `jax.monitoring` listener), not time."""
    seen = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            seen.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def quadratic(p, args):
    return 0.5 * p @ args["A"] @ p - args["b"] @ p


def ridge(beta, args):
    X, y, lam = args
    return 0.5 * jnp.sum((y - X @ beta) ** 2) + 0.5 * lam * jnp.sum(beta**2)


def _data(seed=0, n=12, d=3):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.standard_normal((n, d))), jnp.asarray(rng.standard_normal(n))


def _spd(seed):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((3, 3))
    return {"A": jnp.asarray(M @ M.T + 3 * np.eye(3)), "b": jnp.asarray(rng.standard_normal(3))}


# ------------------------------------------------------------------ compiled once


def test_newton_and_gradient_descent_compile_once_per_loss_function():
    newton(quadratic, jnp.zeros(3), args=_spd(0))  # warm-up: the one compilation
    gradient_descent(quadratic, jnp.zeros(3), args=_spd(0), max_steps=50)
    with count_compilations() as compiled:
        for seed in range(1, 4):
            args = _spd(seed)
            res = newton(quadratic, jnp.asarray(np.full(3, float(seed))), args=args)
            np.testing.assert_allclose(res.params, np.linalg.solve(args["A"], args["b"]), rtol=1e-12)
            gradient_descent(quadratic, jnp.zeros(3), args=args, max_steps=50, tol=1e-3)
    assert compiled == [], f"{len(compiled)} compilations on new data of the same shapes"


def test_analysis_compiles_once_per_loss_function():
    classify_critical_point(quadratic, jnp.zeros(3), args=_spd(0))
    hessian_eigenvalues(quadratic, jnp.zeros(3), k=1, args=_spd(0))
    hessian_trace(quadratic, jnp.zeros(3), args=_spd(0), num_samples=4)
    with count_compilations() as compiled:
        for seed in range(1, 3):
            args = _spd(seed)
            x = jnp.asarray(np.linalg.solve(args["A"], args["b"]))
            assert classify_critical_point(quadratic, x, args=args).kind == "minimum"
            top = hessian_eigenvalues(quadratic, x, k=1, args=args)
            np.testing.assert_allclose(top.eigenvalues, np.linalg.eigvalsh(args["A"])[-1:], rtol=1e-10)
            hessian_trace(quadratic, x, args=args, num_samples=4)
    assert compiled == []


def test_a_closure_without_args_still_works():
    A = _spd(1)
    res = newton(lambda p: quadratic(p, A), jnp.zeros(3))
    assert res.converged and res.status is Status.CONVERGED and res.steps == 1
    assert "CONVERGED" in res.summary() and res.to_dict()["status"] == "CONVERGED"


# ------------------------------------------------------------------ jit and vmap


def test_newton_multi_start_under_vmap_and_jit():
    f = lambda x: x[0] ** 2 - x[1] ** 2 + x[1] ** 4  # noqa: E731  minima at y = ±1/√2
    starts = jnp.array([[0.3, 0.2], [0.3, -0.2], [1.0, 2.0], [-1.0, -3.0]])
    res = jax.jit(jax.vmap(lambda p0: newton(f, p0)))(starts)
    assert isinstance(res, mj.solvers.OptimizeResult)
    assert res.status.shape == (4,) and np.all(np.asarray(res.status) == Status.CONVERGED)
    np.testing.assert_allclose(np.asarray(res.params)[:, 1], [2**-0.5, -(2**-0.5), 2**-0.5, -(2**-0.5)], rtol=1e-10)
    assert res.history.shape[0] == 4 and np.all(np.asarray(res.converged))


def test_newton_over_datasets_under_vmap():
    Xs, ys = zip(*[_data(s) for s in range(3)])
    Xs, ys = jnp.stack(Xs), jnp.stack(ys)
    got = jax.vmap(lambda X, y: newton(ridge, jnp.zeros(3), args=(X, y, 0.5)).params)(Xs, ys)
    for X, y, b in zip(Xs, ys, got):
        np.testing.assert_allclose(b, np.linalg.solve(X.T @ X + 0.5 * np.eye(3), X.T @ y), rtol=1e-12)


def test_divergence_inside_jit_is_a_status_not_an_exception():
    res = jax.jit(lambda p0: gradient_descent(lambda x: jnp.sum(x**2), p0, step_size=10.0, max_steps=2000))(jnp.ones(2))
    assert int(res.status) == Status.DIVERGED and not bool(res.converged)
    assert np.all(np.isfinite(res.params))
    res = jax.jit(lambda p0: newton(lambda x: -jnp.sum(x**2), p0))(jnp.ones(2))
    assert int(res.status) == Status.DIVERGED


def test_classify_under_vmap_gives_kind_indices():
    f = lambda x: x[0] ** 2 - x[1] ** 2 + x[1] ** 4  # noqa: E731
    points = jnp.array([[0.0, 0.0], [0.0, 2**-0.5], [1.0, 0.0]])
    res = jax.vmap(lambda p: classify_critical_point(f, p))(points)
    assert [KINDS[i] for i in np.asarray(res.kind_index)] == ["saddle", "minimum", "not_stationary"]
    assert list(res.kind) == ["saddle", "minimum", "not_stationary"]


# ------------------------------------------------------------------ implicit differentiation


def test_newton_optimum_is_differentiated_implicitly_against_the_ridge_closed_form():
    X, y = _data(3, n=15, d=4)

    def closed(lam, y):
        return jnp.linalg.solve(X.T @ X + lam * jnp.eye(4), X.T @ y)

    def solved(lam, y):
        return newton(ridge, jnp.zeros(4), args=(X, y, lam)).params

    lam = 0.7
    np.testing.assert_allclose(solved(lam, y), closed(lam, y), rtol=1e-12)
    # d/dλ = −(XᵀX + λI)⁻¹ β, forward and reverse
    want = -np.linalg.solve(X.T @ X + lam * np.eye(4), closed(lam, y))
    np.testing.assert_allclose(jax.jacfwd(solved)(lam, y), want, rtol=1e-10)
    np.testing.assert_allclose(jax.jacrev(solved)(lam, y), want, rtol=1e-10)
    # d/dy = (XᵀX + λI)⁻¹ Xᵀ
    np.testing.assert_allclose(
        jax.jacrev(solved, argnums=1)(lam, y), jax.jacfwd(closed, argnums=1)(lam, y), rtol=1e-10, atol=1e-13
    )
    # a hypergradient through the fit, compiled
    val = lambda lam: jnp.sum((solved(lam, y) - 1.0) ** 2)  # noqa: E731
    np.testing.assert_allclose(
        jax.jit(jax.grad(val))(lam), jax.grad(lambda t: jnp.sum((closed(t, y) - 1) ** 2))(lam), rtol=1e-10
    )


def test_implicit_derivative_with_newton_cg():
    X, y = _data(4, n=10, d=3)
    solved = lambda lam: newton(ridge, jnp.zeros(3), args=(X, y, lam), method="cg", cg_tol=1e-14).params  # noqa: E731
    want = -np.linalg.solve(X.T @ X + 2.0 * np.eye(3), np.linalg.solve(X.T @ X + 2.0 * np.eye(3), X.T @ y))
    np.testing.assert_allclose(jax.grad(lambda t: solved(t)[0])(2.0), want[0], rtol=1e-8)


# ------------------------------------------------------------------ hardening


def test_newton_escapes_a_saddle_it_starts_at():
    res = newton(lambda x: x[0] ** 2 - x[1] ** 2 + x[1] ** 4, jnp.zeros(2))
    assert res.converged and res.steps > 0
    np.testing.assert_allclose(jnp.abs(res.params), [0.0, 2**-0.5], atol=1e-10)
    # a maximum: leaves along the curvature to a minimum of -x² + x⁴ per coordinate
    res = newton(lambda x: -jnp.sum(x**2) + jnp.sum(x**4), jnp.zeros(3), method="cg")
    assert res.converged
    np.testing.assert_allclose(jnp.abs(res.params), 2**-0.5 * np.ones(3), rtol=1e-8)


@pytest.mark.parametrize(
    "loss, what",
    [
        (lambda x: -jnp.sum(x**2), "running to -inf"),
        (lambda x: -jnp.sum(x), "running to -inf"),
    ],
)
def test_newton_raises_when_the_loss_is_unbounded_below(loss, what):
    with pytest.raises(DivergenceError, match=f"newton: diverged at step \\d+: the loss \\({what}\\)") as e:
        newton(loss, jnp.ones(2))
    assert np.isfinite(e.value.last_finite_loss) and np.all(np.isfinite(e.value.params))


def test_history_is_bounded_whatever_max_steps():
    A = jnp.asarray(np.diag([4.0, 1.0]))
    res = gradient_descent(
        lambda x: 0.5 * x @ A @ x, jnp.ones(2), max_steps=10**12, history_size=8, tol=1e-6, trajectory=True
    )
    assert res.converged and res.steps > 8
    assert res.history.shape == (9,) and res.trajectory.shape == (9, 2)
    np.testing.assert_allclose(res.history[1], 0.5 * 0.75**2, rtol=1e-10)  # step 1/4: x = (0, 3/4)
    traced = jax.jit(lambda p: newton(lambda x: 0.5 * x @ A @ x, p, max_steps=10**12, history_size=3))(jnp.ones(2))
    assert traced.history.shape == (4,) and int(traced.steps) == 1 and np.isnan(traced.history[2])


def test_equinox_module_parameters_and_ravel_vec_order():
    model = eqx.nn.Linear(3, 2, key=jax.random.PRNGKey(0))
    X, y = _data(5, n=20, d=3)
    Y = jnp.stack([y, -y], axis=1)

    def loss(m, args):
        X, Y = args
        return 0.5 * jnp.sum((jax.vmap(m)(X) - Y) ** 2)

    res = newton(loss, model, args=(X, Y))
    assert isinstance(res.params, eqx.nn.Linear) and res.converged
    Xa = np.hstack([np.asarray(X), np.ones((20, 1))])
    coef = np.linalg.lstsq(Xa, np.asarray(Y), rcond=None)[0]
    np.testing.assert_allclose(res.params.weight, coef[:3].T, rtol=1e-10)
    # eigenvectors of a matrix-shaped parameter are in ravel_vec order, like hessian_matrix
    W0 = jnp.asarray(np.random.default_rng(6).standard_normal((3, 2)))
    C = jnp.asarray(np.random.default_rng(7).standard_normal((3, 3)))
    f = lambda W: jnp.sum((C @ W) ** 2 * jnp.array([1.0, 3.0])) + jnp.sum(W[0] ** 4)  # noqa: E731
    H = np.asarray(mj.hessian_matrix(f)(W0))
    lam, V = np.linalg.eigh(H)
    top = hessian_eigenvalues(f, W0, k=1, return_eigenvectors=True)
    v = np.asarray(top.eigenvectors[0])
    np.testing.assert_allclose(top.eigenvalues[0], lam[-1], rtol=1e-10)
    np.testing.assert_allclose(abs(v @ V[:, -1]), 1.0, rtol=1e-8)
    np.testing.assert_allclose(H @ v, lam[-1] * v, atol=1e-8 * lam[-1])


@pytest.mark.parametrize(
    "call, exc, fragment",
    [
        (lambda: newton(quadratic, jnp.zeros(3)), TypeError, r"newton: loss has the signature quadratic\(p, args\)"),
        (lambda: newton(lambda p: jnp.sum(p**2), jnp.zeros(3), args=1.0), TypeError, "define loss\\(params, args\\)"),
        (lambda: newton(lambda p: jnp.sum(jnp.abs(p) ** 2), jnp.ones(2, jnp.complex128)), TypeError, "complex"),
        (lambda: newton(lambda p: jnp.sum(p**2), jnp.ones(2), tol=-1.0), ValueError, "newton: tol must be >= 0"),
        (
            lambda: newton(lambda p: jnp.sum(p**2), jnp.ones(2), max_steps=2.5),
            TypeError,
            "max_steps must be an integer",
        ),
        (lambda: newton(lambda p: jnp.sum(p**2), jnp.ones(2), method="bfgs"), ValueError, "method must be one of"),
        (
            lambda: gradient_descent(lambda p: jnp.sum(p**2), jnp.ones(2), step_size=-1.0),
            ValueError,
            "step_size must be > 0",
        ),
        (lambda: gradient_descent(lambda p: jnp.sum(p**2), jnp.ones(2), history_size=0), ValueError, "history_size"),
        (
            lambda: classify_critical_point(lambda p: jnp.sum(p**2), jnp.zeros(2), eig_tol=-1),
            ValueError,
            "classify_critical_point: eig_tol must be >= 0",
        ),
        (
            lambda: classify_critical_point(lambda p: jnp.sum(p**2), jnp.zeros(2), tol=float("nan")),
            ValueError,
            "tol must be a finite number",
        ),
        (lambda: classify_critical_point(lambda p: jnp.sum(p**2), jnp.zeros(2), k=0), ValueError, "k must be >= 1"),
        (
            lambda: hessian_eigenvalues(lambda p: jnp.sum(jnp.log(p)), -jnp.ones(3)),
            ValueError,
            "hessian_eigenvalues: the loss or its gradient is not finite",
        ),
        (
            lambda: hessian_trace(lambda p: jnp.sum(jnp.sqrt(p)), -jnp.ones(3)),
            ValueError,
            "hessian_trace: the loss or its gradient is not finite",
        ),
        (lambda: hessian_trace(lambda p: jnp.sum(p**2), jnp.ones(3), key=3), TypeError, "PRNGKey\\(3\\)"),
        (lambda: mj.check_minimiser(lambda p: jnp.sum(p**2), jnp.zeros(0)), ValueError, "0 elements"),
        (lambda: mj.check_minimiser(lambda p, a: jnp.sum(p**2), jnp.zeros(2)), TypeError, "pass the data with args="),
        (lambda: mj.check_minimiser(lambda p: jnp.sum(p**2), jnp.zeros(2), tol=-1e-3), ValueError, "tol must be >= 0"),
    ],
)
def test_bad_inputs_are_clear_errors(call, exc, fragment):
    with pytest.raises(exc, match=fragment):
        call()


def test_the_shared_minimum_test_is_scale_aware():
    # a badly scaled minimum: gradient 1e-3 absolute, yet a relative Newton step of 1e-11
    f = lambda x: 1e8 * jnp.sum((x - 1e3) ** 2)  # noqa: E731
    x = jnp.full(2, 1e3 + 5e-9)
    assert classify_critical_point(f, x).kind == "minimum"
    assert mj.check_minimiser(f, x).ok
    # and a point far from a flat minimum in relative terms, though its gradient is tiny
    g = lambda x: 1e-12 * jnp.sum((x - 1.0) ** 2)  # noqa: E731
    assert classify_critical_point(g, jnp.zeros(2)).kind == "not_stationary"
    assert not mj.check_minimiser(g, jnp.zeros(2)).ok


# ------------------------------------------------------------------ minimize


def _mse(p, batch):
    X, y = batch
    return 0.5 * jnp.mean((y - X @ p) ** 2)


def test_minimize_compiles_once_and_runs_under_vmap():
    opt = optax.sgd(0.2)
    X, y = _data(8, n=16, d=2)
    minimize(_mse, jnp.zeros(2), opt, args=(X, y), max_steps=20, batch_size=4, progress=False)
    with count_compilations() as compiled:
        for s in range(9, 11):
            X2, y2 = _data(s, n=16, d=2)
            minimize(
                _mse,
                jnp.ones(2),
                opt,
                args=(X2, y2),
                max_steps=20,
                batch_size=4,
                key=jax.random.PRNGKey(s),
                progress=False,
            )
    assert compiled == []
    # under vmap over datasets: the whole run is one loop; full batch with a relative tol
    sets = [_data(s, n=16, d=2) for s in range(3)]
    Xs, ys = jnp.stack([X for X, _ in sets]), jnp.stack([y for _, y in sets])
    run = lambda X, y: minimize(_mse, jnp.zeros(2), optax.lbfgs(), args=(X, y), max_steps=50, tol=1e-10)  # noqa: E731
    res = jax.vmap(run)(Xs, ys)
    assert np.all(np.asarray(res.status) == Status.CONVERGED) and res.history.shape == (3, 50)
    for X, y, p in zip(Xs, ys, res.params):
        np.testing.assert_allclose(p, np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-8)
    eager = run(Xs[0], ys[0])
    np.testing.assert_allclose(eager.params, res.params[0], rtol=1e-12)
    assert eager.steps == int(res.steps[0]) and eager.converged


def test_gradient_descent_minimiser_is_differentiated_implicitly_too():
    X, y = _data(11, n=12, d=2)

    def solved(lam):
        return gradient_descent(ridge, jnp.zeros(2), args=(X, y, lam), max_steps=5000, tol=1e-13).params

    A = X.T @ X + 1.5 * np.eye(2)
    np.testing.assert_allclose(jax.jacrev(solved)(1.5), -np.linalg.solve(A, np.linalg.solve(A, X.T @ y)), rtol=1e-8)


def test_spectrum_and_trace_inside_jit_and_vmap():
    args = jnp.stack([jnp.asarray([1.0, 2.0, 5.0]), jnp.asarray([3.0, 0.5, 4.0])])
    f = lambda p, d: 0.5 * jnp.sum(d * p**2)  # noqa: E731
    top = jax.jit(jax.vmap(lambda d: hessian_eigenvalues(f, jnp.ones(3), k=1, args=d).eigenvalues))(args)
    np.testing.assert_allclose(top[:, 0], [5.0, 4.0], rtol=1e-12)
    tr = jax.vmap(lambda d: hessian_trace(f, jnp.ones(3), args=d, num_samples=3).estimate)(args)
    np.testing.assert_allclose(tr, [8.0, 7.5], rtol=1e-12)  # exact for a diagonal Hessian
    # a NaN loss inside jit: NaN numbers, not an exception
    bad = jax.jit(lambda p: hessian_eigenvalues(lambda q: jnp.sum(jnp.log(q)), p).eigenvalues)(-jnp.ones(3))
    assert np.all(np.isnan(bad))


def test_throw_raises_at_run_time_inside_jit():
    run = jax.jit(lambda p0: newton(lambda x: -jnp.sum(x**2), p0, throw=True).params)
    with pytest.raises(Exception, match="newton: diverged"):
        jax.block_until_ready(run(jnp.ones(2)))
    ok = jax.jit(lambda p0: newton(lambda x: jnp.sum((x - 1) ** 2), p0, throw=True).params)(jnp.zeros(2))
    np.testing.assert_allclose(ok, [1.0, 1.0])
    with pytest.raises(DivergenceError):  # eagerly: the usual error
        gradient_descent(lambda x: jnp.sum(x**2), jnp.ones(2), step_size=10.0, throw=True)


def test_a_sweep_over_a_python_float_in_args_compiles_once():
    X, y = _data(12, n=12, d=3)
    Xn, yn = np.asarray(X), np.asarray(y)
    newton(ridge, jnp.zeros(3), args=(X, y, 0.1))
    with count_compilations() as compiled:
        for lam in (0.2, 0.3, 1.0):
            b = newton(ridge, jnp.zeros(3), args=(X, y, lam)).params
            np.testing.assert_allclose(b, np.linalg.solve(Xn.T @ Xn + lam * np.eye(3), Xn.T @ yn), rtol=1e-12)
    assert compiled == []


def test_minimize_history_is_bounded_whatever_max_steps():
    res = minimize(
        lambda p: jnp.sum((p - 1.0) ** 2),
        jnp.zeros(2),
        optax.sgd(0.25),
        max_steps=10**12,
        tol=1e-8,
        history_size=5,
        progress=False,
    )
    assert res.converged and res.steps > 5 and res.history.shape == (5,)
    np.testing.assert_allclose(res.history[:2], [2.0, 0.5])  # step 0.25 on (p-1)²: halves the error each step
    d = res.to_dict()
    assert d["status"] == "CONVERGED" and len(d["history"]) == 5 and d["params"] == pytest.approx([1.0, 1.0])


@pytest.mark.slow
def test_the_iterative_api_on_an_equinox_mlp():
    mlp = eqx.nn.MLP(2, 1, width_size=3, depth=1, activation=jnp.tanh, key=jax.random.PRNGKey(0))
    X = jax.random.normal(jax.random.PRNGKey(1), (16, 2))
    y = jnp.sin(X[:, 0])

    def loss(m, args):
        X, y = args
        return 0.5 * jnp.mean((jax.vmap(m)(X)[:, 0] - y) ** 2)

    args = (X, y)
    # the module itself (functions are static leaves) for the solvers and the analysis
    res = newton(loss, mlp, args=args, max_steps=30)
    assert isinstance(res.params, eqx.nn.MLP) and res.params.activation is jnp.tanh
    assert float(res.loss) < float(loss(mlp, args))
    top = hessian_eigenvalues(loss, res.params, k=1, args=args, return_eigenvectors=True)
    params, static = eqx.partition(res.params, eqx.is_inexact_array)
    H = mj.hessian_matrix(lambda p: loss(eqx.combine(p, static), args))(params)
    np.testing.assert_allclose(top.eigenvalues[0], np.linalg.eigvalsh(np.asarray(H))[-1], rtol=1e-9)
    cp = classify_critical_point(loss, res.params, args=args)
    assert cp.kind in KINDS and cp.n_positive + cp.n_negative + cp.n_zero == params_size(params)
    assert mj.check_minimiser(loss, res.params, args=args).kind == cp.kind
    # minimize takes the partitioned parameters (optax state is built on arrays)
    run = minimize(
        lambda p, a: loss(eqx.combine(p, static), a), params, optax.adam(1e-2), args=args, max_steps=20, progress=False
    )
    assert jax.tree_util.tree_structure(run.params) == jax.tree_util.tree_structure(params)


def params_size(tree):
    return sum(int(np.size(leaf)) for leaf in jax.tree_util.tree_leaves(tree))
