"""nonlinear_least_squares: accuracy on NIST StRD and on problems it was not developed on, the result,
jit/vmap/compilation, implicit differentiation, and bad inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mmljax as mj
from mmljax.errors import DivergenceError
from mmljax.solvers import NonlinearLeastSquaresResult, nonlinear_least_squares
from mmljax.strd_nls import STRD_NLS_NAMES, load_strd_nls


def _exp_residuals(p, data):
    x, y = data
    return y - p["a"] * jnp.exp(-p["k"] * x)


def _exp_data(n=12, a=2.5, k=0.7, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 4.0, n)
    y = a * np.exp(-k * x) + noise * rng.normal(size=n)
    return jnp.asarray(x), jnp.asarray(y)


# ------------------------------------------------------------------------------------------- accuracy


@pytest.mark.slow
def test_strd_nls_accuracy_bar():
    """Both starts of the 20 shipped problems, default options: every parameter LRE >= 10, mean >= 10.5,
    standard errors >= 8.5, residual SD >= 9.5 (Lanczos1: parameters only). Both starts in one vmapped
    call, so one compilation per problem."""
    lre_params = []
    failures = []
    for name in STRD_NLS_NAMES:
        pr = load_strd_nls(name)
        starts = jnp.stack([jnp.asarray(pr.start1), jnp.asarray(pr.start2)])
        res = jax.vmap(lambda s, pr=pr: nonlinear_least_squares(pr.residuals, s, pr.args))(starts)
        for k in range(2):
            one = jax.tree_util.tree_map(lambda a, k=k: a[k], res)
            sc = pr.scores(one)
            lre_params.append(sc["params"])
            if sc["params"] < 10:
                failures.append((name, k + 1, "params", sc["params"]))
            if name != "Lanczos1":
                if sc["standard_errors"] < 8.5:
                    failures.append((name, k + 1, "standard errors", sc["standard_errors"]))
                if sc["residual_sd"] < 9.5:
                    failures.append((name, k + 1, "residual SD", sc["residual_sd"]))
            assert bool(one.converged), (name, k + 1, one.message)
    assert not failures, failures
    assert len(lre_params) == 40
    assert np.mean(lre_params) >= 10.5, np.mean(lre_params)


# Moré, Garbow & Hillstrom (1981) test problems with zero residual at a known solution: none of them is
# a NIST problem; the solver must reach the solution to near working precision from the standard start.
def _rosenbrock(p):
    return jnp.stack([10.0 * (p[1] - p[0] ** 2), 1.0 - p[0]])


def _helical_valley(p):
    theta = jnp.arctan2(p[1], p[0]) / (2 * jnp.pi)
    return jnp.stack([10.0 * (p[2] - 10.0 * theta), 10.0 * (jnp.sqrt(p[0] ** 2 + p[1] ** 2) - 1.0), p[2]])


def _beale(p):
    y = jnp.array([1.5, 2.25, 2.625])
    i = jnp.arange(1, 4)
    return y - p[0] * (1 - p[1] ** i)


def _box3d(p):
    t = 0.1 * jnp.arange(1, 11)
    return jnp.exp(-t * p[0]) - jnp.exp(-t * p[1]) - p[2] * (jnp.exp(-t) - jnp.exp(-10 * t))


def _brown_badly_scaled(p):
    return jnp.stack([p[0] - 1e6, p[1] - 2e-6, p[0] * p[1] - 2.0])


MGH_ZERO_RESIDUAL = [
    pytest.param("rosenbrock", _rosenbrock, [-1.2, 1.0], [1.0, 1.0], id="rosenbrock"),
    pytest.param(
        "helical valley",
        _helical_valley,
        [-1.0, 0.0, 0.0],
        [1.0, 0.0, 0.0],
        id="helical valley",
        marks=pytest.mark.slow,
    ),
    pytest.param("beale", _beale, [1.0, 1.0], [3.0, 0.5], id="beale", marks=pytest.mark.slow),
    pytest.param("box 3-d", _box3d, [0.0, 10.0, 20.0], [1.0, 10.0, 1.0], id="box 3-d", marks=pytest.mark.slow),
    pytest.param("brown badly scaled", _brown_badly_scaled, [1.0, 1.0], [1e6, 2e-6], id="brown badly scaled"),
]


@pytest.mark.parametrize("name,fun,start,solution", MGH_ZERO_RESIDUAL)
def test_zero_residual_problems_not_from_nist(name, fun, start, solution):
    res = nonlinear_least_squares(fun, jnp.asarray(start))
    assert bool(res.converged), res.message
    sol = np.asarray(solution)
    err = np.abs(np.asarray(res.params) - sol)
    assert np.all(err <= 1e-12 * np.maximum(np.abs(sol), 1e-6 * np.max(np.abs(sol)))), (res.params, sol)
    assert float(res.rss) < 1e-20 * max(1.0, float(np.sum(np.asarray(fun(jnp.asarray(start))) ** 2)))


def test_noisy_problem_matches_an_independent_high_precision_answer():
    """A 4-parameter double exponential with noise (not a NIST problem): the answer agrees to ~13 digits with
    Newton's method on the exact gradient started from a scipy solution."""
    rng = np.random.default_rng(3)
    x = np.linspace(0, 5, 40)
    y = 3.0 * np.exp(-1.3 * x) + 0.8 * np.exp(-0.2 * x) + 0.01 * rng.normal(size=x.size)

    def res_fn(p, data):
        xx, yy = data
        return yy - (p[0] * jnp.exp(-p[1] * xx) + p[2] * jnp.exp(-p[3] * xx))

    data = (jnp.asarray(x), jnp.asarray(y))
    res = nonlinear_least_squares(res_fn, jnp.array([1.0, 1.0, 1.0, 0.1]), data)
    assert bool(res.converged)
    # independent check: the gradient Jᵀr vanishes to round-off, and a Newton step on the exact Hessian
    # (not Gauss–Newton) from the answer moves it by less than 1e-12 relative
    loss = lambda p: 0.5 * jnp.sum(res_fn(p, data) ** 2)
    p = res.params
    g = jax.grad(loss)(p)
    H = jax.hessian(loss)(p)
    newton = jnp.linalg.solve(H, g)
    assert float(jnp.max(jnp.abs(newton) / jnp.abs(p))) < 1e-12
    # the standard errors equal s*sqrt(diag((JᵀJ)^-1)) from a direct float64 computation
    J = np.asarray(jax.jacfwd(res_fn)(p, data))
    s2 = float(res.rss) / (x.size - 4)
    cov = s2 * np.linalg.inv(J.T @ J)
    np.testing.assert_allclose(np.asarray(res.covariance), cov, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(res.standard_errors), np.sqrt(np.diag(cov)), rtol=1e-8)


def test_saturating_exponential_from_a_far_start():
    """y = a(1 - exp(-k x)) started at (1, 1): a first step as long as the Gauss–Newton step sends k where the
    model is flat in it (a trap for a trust region started too large); the fit must reach the true minimum."""
    x = np.array([1.0, 2.0, 3.0, 5.0, 7.0, 10.0])
    noise = np.array([3.0, -2.0, 1.5, -4.0, 2.5, -1.0])
    y = 200.0 * (1 - np.exp(-0.5 * x)) + noise

    def res_fn(p, d):
        return d[1] - p[0] * (1 - jnp.exp(-p[1] * d[0]))

    data = (jnp.asarray(x), jnp.asarray(y))
    res = nonlinear_least_squares(res_fn, jnp.array([1.0, 1.0]), data)
    assert bool(res.converged)
    near = nonlinear_least_squares(res_fn, jnp.array([190.0, 0.45]), data)
    np.testing.assert_allclose(np.asarray(res.params), np.asarray(near.params), rtol=1e-12)
    assert abs(float(res.params[1]) - 0.5) < 0.05
    loss = lambda p: 0.5 * jnp.sum(res_fn(p, data) ** 2)
    newton = jnp.linalg.solve(jax.hessian(loss)(res.params), jax.grad(loss)(res.params))
    assert float(jnp.max(jnp.abs(newton) / jnp.abs(res.params))) < 1e-12


# ------------------------------------------------------------------------------------------ the result


def test_result_fields_pytree_params_and_ravel_vec_order():
    x, y = _exp_data()
    p0 = {"a": jnp.array(1.0), "k": jnp.array([[0.3]])}

    def res_fn(p, data):
        xx, yy = data
        return yy - p["a"] * jnp.exp(-p["k"][0, 0] * xx)

    res = nonlinear_least_squares(res_fn, p0, (x, y))
    assert isinstance(res, NonlinearLeastSquaresResult)
    assert jax.tree_util.tree_structure(res.params) == jax.tree_util.tree_structure(p0)
    assert res.params["k"].shape == (1, 1)
    assert jax.tree_util.tree_structure(res.standard_errors) == jax.tree_util.tree_structure(p0)
    assert res.residuals.shape == (12,) and res.jacobian.shape == (12, 2) and res.covariance.shape == (2, 2)
    assert res.dof == 10
    np.testing.assert_allclose(float(res.rss), float(jnp.sum(res.residuals**2)), rtol=1e-14)
    np.testing.assert_allclose(float(res.residual_sd), np.sqrt(float(res.rss) / 10), rtol=1e-14)
    flat, _ = mj.ravel_vec(res.standard_errors)
    np.testing.assert_allclose(np.asarray(flat), np.sqrt(np.diag(np.asarray(res.covariance))), rtol=1e-14)
    assert mj.Status(int(res.status)) is mj.Status.CONVERGED and bool(res.converged)
    assert int(res.rank) == 2 and 1 < float(res.condition_number) < 1e3
    d = res.to_dict()
    assert d["status"] == "CONVERGED" and d["dof"] == 10 and isinstance(d["params"]["k"], list)
    text = res.summary()
    assert "b1" in text and "residual SD" in text and "converged" in text


def test_polishing_reaches_digits_the_damped_phase_alone_does_not():
    pr = load_strd_nls("MGH09")
    polished = nonlinear_least_squares(pr.residuals, jnp.asarray(pr.start2), pr.args)
    damped = nonlinear_least_squares(pr.residuals, jnp.asarray(pr.start2), pr.args, polish=False)
    assert int(damped.polish_steps) == 0 and int(polished.polish_steps) > 0
    assert pr.scores(polished)["params"] >= 10
    assert pr.scores(polished)["params"] > pr.scores(damped)["params"] + 1


# --------------------------------------------------------------------------- jit, vmap, compilation


def test_compiled_once_per_function_and_shapes():
    from mmljax.solvers import nonlinear as nl

    x, y = _exp_data()
    p0 = {"a": jnp.array(1.0), "k": jnp.array(0.3)}
    nonlinear_least_squares(_exp_residuals, p0, (x, y))
    before = nl._solve._cache_size()
    for seed in range(1, 4):  # new data, same shapes: no new compilation
        _, y2 = _exp_data(seed=seed)
        res = nonlinear_least_squares(_exp_residuals, p0, (x, y2))
        assert bool(res.converged)
    assert nl._solve._cache_size() == before
    nonlinear_least_squares(_exp_residuals, p0, (x, y), max_steps=7)  # max_steps is traced, not static
    assert nl._solve._cache_size() == before
    x3, y3 = _exp_data(n=13)
    nonlinear_least_squares(_exp_residuals, p0, (x3, y3))  # new shapes: one more program
    assert nl._solve._cache_size() == before + 1


def test_under_jit_and_vmap_over_starts_and_datasets():
    x, y = _exp_data()
    p0 = {"a": jnp.array(1.0), "k": jnp.array(0.3)}
    ref = nonlinear_least_squares(_exp_residuals, p0, (x, y))

    jitted = jax.jit(lambda p, d: nonlinear_least_squares(_exp_residuals, p, d))(p0, (x, y))
    np.testing.assert_allclose(jitted.params["k"], ref.params["k"], rtol=1e-13)
    assert int(jitted.status) == 0

    starts = {"a": jnp.array([1.0, 5.0, 0.1]), "k": jnp.array([0.3, 2.0, 0.05])}
    multi = jax.vmap(lambda p: nonlinear_least_squares(_exp_residuals, p, (x, y)))(starts)
    assert multi.params["k"].shape == (3,) and multi.status.shape == (3,)
    np.testing.assert_allclose(multi.params["k"], np.full(3, float(ref.params["k"])), rtol=1e-12)
    assert multi.message == [mj.Status.CONVERGED.message] * 3

    ys = jnp.stack([_exp_data(seed=s)[1] for s in range(4)])
    per = jax.vmap(lambda yy: nonlinear_least_squares(_exp_residuals, p0, (x, yy)))(ys)
    for s in range(4):
        one = nonlinear_least_squares(_exp_residuals, p0, (x, ys[s]))
        np.testing.assert_allclose(per.params["a"][s], one.params["a"], rtol=1e-12)
        np.testing.assert_allclose(per.standard_errors["a"][s], one.standard_errors["a"], rtol=1e-9)


# ------------------------------------------------------------------------------ implicit derivatives


def test_params_differentiable_wrt_args_by_the_implicit_function_theorem():
    x, y = _exp_data(n=10, noise=0.2, seed=5)  # a sizeable residual: the second-order term matters
    p0 = {"a": jnp.array(2.0), "k": jnp.array(0.5)}

    def fit_k(yy):
        return nonlinear_least_squares(_exp_residuals, p0, (x, yy)).params["k"]

    g = jax.grad(fit_k)(y)
    h = 1e-6
    fd = np.array([(fit_k(y.at[i].add(h)) - fit_k(y.at[i].add(-h))) / (2 * h) for i in range(y.size)])
    np.testing.assert_allclose(np.asarray(g), fd, rtol=1e-6, atol=1e-9)
    # forward mode agrees with reverse mode
    v = jnp.asarray(np.random.default_rng(0).normal(size=y.size))
    _, jv = jax.jvp(fit_k, (y,), (v,))
    np.testing.assert_allclose(float(jv), float(g @ v), rtol=1e-10)
    # the Gauss–Newton approximation would be measurably wrong here
    res = nonlinear_least_squares(_exp_residuals, p0, (x, y))
    J = np.asarray(res.jacobian)
    gn = -np.linalg.solve(J.T @ J, J.T)  # dθ/dy under Gauss–Newton (r = y - f: dr/dy = I)
    assert np.max(np.abs(gn[1] - np.asarray(g))) > 1e-4 * np.max(np.abs(fd))


def test_standard_errors_and_covariance_are_differentiable_wrt_args():
    # d(JᵀJ)⁻¹ = −(JᵀJ)⁻¹ d(JᵀJ) (JᵀJ)⁻¹, through the implicit dθ*/dy: against central differences
    x, y = _exp_data(n=12, noise=0.2, seed=7)
    p0 = {"a": jnp.array(2.0), "k": jnp.array(0.5)}

    def stats(yy):
        res = nonlinear_least_squares(_exp_residuals, p0, (x, yy))
        return res.standard_errors["a"] + 2.0 * res.standard_errors["k"] + jnp.sum(res.covariance)

    v = jnp.asarray(np.random.default_rng(1).normal(size=y.size))
    g = jax.grad(stats)(y)
    _, jv = jax.jvp(stats, (y,), (v,))
    h = 1e-5
    fd = (stats(y + h * v) - stats(y - h * v)) / (2 * h)
    np.testing.assert_allclose(float(g @ v), float(fd), rtol=1e-6)
    np.testing.assert_allclose(float(jv), float(g @ v), rtol=1e-10)


def test_matrix_free_mode_agrees_with_dense():
    x, y = _exp_data(n=30)
    p0 = {"a": jnp.array(1.0), "k": jnp.array(0.3)}
    dense = nonlinear_least_squares(_exp_residuals, p0, (x, y))
    free = nonlinear_least_squares(_exp_residuals, p0, (x, y), matrix_free=True)
    assert bool(free.converged), free.message
    assert free.covariance is None and free.jacobian is None
    np.testing.assert_allclose(free.params["k"], dense.params["k"], rtol=1e-8)
    np.testing.assert_allclose(float(free.rss), float(dense.rss), rtol=1e-12)
    g = jax.grad(lambda yy: nonlinear_least_squares(_exp_residuals, p0, (x, yy), matrix_free=True).params["k"])(y)
    gd = jax.grad(lambda yy: nonlinear_least_squares(_exp_residuals, p0, (x, yy)).params["k"])(y)
    np.testing.assert_allclose(np.asarray(g), np.asarray(gd), rtol=1e-6, atol=1e-10)


# ------------------------------------------------------------------------------------------ bad inputs


def test_nonfinite_residuals_at_start():
    def res_fn(p):
        return jnp.stack([jnp.log(p[0]) - 1.0, p[1] - 2.0, p[0] + p[1]])

    with pytest.raises(ValueError, match=r"nonlinear_least_squares: residuals are not finite at params0.*\[0\]"):
        nonlinear_least_squares(res_fn, jnp.array([-1.0, 1.0]))
    out = jax.jit(lambda p: nonlinear_least_squares(res_fn, p))(jnp.array([-1.0, 1.0]))
    assert mj.Status(int(out.status)) is mj.Status.NONFINITE_INPUT and not bool(out.converged)


def test_fewer_residuals_than_parameters():
    with pytest.raises(ValueError, match=r"returns 2 value\(s\) but there are 3 parameters"):
        nonlinear_least_squares(lambda p: p[:2] - 1.0, jnp.ones(3))


@pytest.mark.parametrize(
    "fun,match",
    [
        (lambda p: jnp.sum(p**2), r"1-D array of shape \(m,\); got shape \(\)"),
        (lambda p: jnp.outer(p, p), r"got shape \(2, 2\).*ravel"),
        (lambda p: (p, p), r"must return one array"),
        (lambda p: jnp.ones(3, jnp.int32), r"floating"),
    ],
)
def test_residual_function_of_the_wrong_shape(fun, match):
    with pytest.raises((ValueError, TypeError), match=match):
        nonlinear_least_squares(fun, jnp.ones(2))


def test_divergence_names_the_step():
    p_start = jnp.array([0.5, 0.5])

    def res_fn(p):  # defined only at the start: every trial step meets NaN
        at_start = jnp.all(p == p_start)
        return jnp.where(at_start, jnp.stack([p[0] - 3.0, p[1] + 1.0, p[0] * p[1]]), jnp.nan)

    with pytest.raises(DivergenceError, match=r"diverged at step \d+") as info:
        nonlinear_least_squares(res_fn, p_start)
    assert info.value.step > 0 and np.isfinite(info.value.last_finite_loss)
    out = jax.jit(lambda p: nonlinear_least_squares(res_fn, p))(p_start)
    assert mj.Status(int(out.status)) is mj.Status.DIVERGED
    quiet = nonlinear_least_squares(res_fn, p_start, throw=False)
    assert mj.Status(int(quiet.status)) is mj.Status.DIVERGED


def test_max_steps_reports_no_convergence():
    res = nonlinear_least_squares(_rosenbrock, jnp.array([-1.2, 1.0]), max_steps=3)
    assert not bool(res.converged)
    assert mj.Status(int(res.status)) is mj.Status.MAX_STEPS and int(res.steps) == 3
    assert "max_steps" in res.message


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"max_steps": 0}, ValueError, "max_steps must be >= 1"),
        ({"max_steps": 2.5}, TypeError, "max_steps must be an integer"),
        ({"tol": -1.0}, ValueError, "tol must be >= 0"),
        ({"tol": float("nan")}, ValueError, "tol must be a finite number"),
        ({"polish": 1}, TypeError, "polish must be True or False"),
        ({"jacobian": "central"}, ValueError, "jacobian must be one of"),
        ({"matrix_free": "yes"}, TypeError, "matrix_free must be True or False"),
        ({"num_iterations": 0}, ValueError, "num_iterations must be >= 1"),
    ],
)
def test_bad_options(kwargs, exc, match):
    with pytest.raises(exc, match="nonlinear_least_squares: " + match):
        nonlinear_least_squares(_rosenbrock, jnp.array([-1.2, 1.0]), **kwargs)


def test_bad_params_and_callable():
    with pytest.raises(TypeError, match="residuals must be a callable"):
        nonlinear_least_squares("f", jnp.ones(2))
    with pytest.raises(TypeError, match="params0 has dtype int"):
        nonlinear_least_squares(_rosenbrock, jnp.array([1, 2]))
    with pytest.raises(TypeError, match="complex"):
        nonlinear_least_squares(_rosenbrock, jnp.array([1.0 + 1j, 2.0]))
    with pytest.raises(ValueError, match="NaN/Inf"):
        nonlinear_least_squares(_rosenbrock, jnp.array([jnp.nan, 2.0]))
