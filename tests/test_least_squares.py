"""Closed-form least squares: extended arithmetic, the augmented solve, methods, statistics, errors."""

import importlib
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmljax.linalg import doubledouble as ext
from mmljax.linalg.qr import SINGLE, QRFactor, gram_factor, solve_augmented
from mmljax.linalg.refine import refine_augmented
from mmljax.solvers import (
    METHODS,
    PrecisionWarning,
    RankDeficiencyWarning,
    least_squares,
    linear_regression,
    polyfit,
)
from mmljax.status import Status

_ls = importlib.import_module("mmljax.solvers.least_squares")


def qr_factor(b):
    return QRFactor(*jnp.linalg.qr(jnp.asarray(b)))


def _wide_floats(rng, n):
    return rng.standard_normal(n) * 10.0 ** rng.integers(-30, 30, n)


def _hard_floats(rng, n):
    """Significands near 2^53 whose low 27 bits sit at or next to the split's rounding tie: the
    partial products of `two_prod` are then as large as they can be."""
    m = rng.integers(2**53 - 2**30, 2**53, n, dtype=np.int64) & ~np.int64(2**27 - 1)
    m = m | rng.choice(np.array([2**26 - 1, 2**26, 2**26 + 1, 2**27 - 1], np.int64), n)
    return np.ldexp(m.astype(np.float64), rng.integers(-80, -20, n)) * rng.choice([-1.0, 1.0], n)


def _run(backend, fn, *args):
    """`fn(*args)` eagerly in numpy, or compiled by `jax.jit` on jax arrays (results back as numpy)."""
    if backend == "numpy":
        return fn(*args)
    out = jax.jit(fn)(*jax.tree_util.tree_map(jnp.asarray, args))
    return jax.tree_util.tree_map(np.asarray, out)


def _exact(x: ext.DD):
    return np.array([Fraction(h) + Fraction(l) for h, l in zip(np.ravel(x.hi), np.ravel(x.lo))], dtype=object).reshape(
        np.shape(x.hi)
    )


def _dd(rng, *shape, scale=1.0):
    """Random normalised double-double values (a genuine `lo` part)."""
    return ext.DD(*ext.two_sum(rng.standard_normal(shape) * scale, rng.standard_normal(shape) * scale * 1e-17))


BACKENDS = ["numpy", "jax.jit"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("inputs", [_wide_floats, _hard_floats])
def test_two_sum_and_two_prod_are_error_free(backend, inputs):
    rng = np.random.default_rng(1)
    a, b = inputs(rng, 400), inputs(rng, 400)
    (s, e), (p, f) = _run(backend, lambda a, b: (ext.two_sum(a, b), ext.two_prod(a, b)), a, b)
    for i in range(a.size):
        assert Fraction(s[i]) + Fraction(e[i]) == Fraction(a[i]) + Fraction(b[i])
        assert Fraction(p[i]) + Fraction(f[i]) == Fraction(a[i]) * Fraction(b[i])
    np.testing.assert_array_equal(p, a * b)  # the leading part is the rounded product


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_prod_float32_is_exact(backend):
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal(200).astype(np.float32), rng.standard_normal(200).astype(np.float32)
    p, e = _run(backend, ext.two_prod, a, b)
    assert p.dtype == e.dtype == np.float32
    for i in range(a.size):
        assert Fraction(float(p[i])) + Fraction(float(e[i])) == Fraction(float(a[i])) * Fraction(float(b[i]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_dd_mul_div_sum_reach_double_double_accuracy(backend):
    rng = np.random.default_rng(3)
    x, y = _dd(rng, 64), _dd(rng, 64)

    def ops(x, y):
        return ext.mul(x, y), ext.div(x, y), ext.add(x, y), ext.sum_(x, axis=0)

    prod, quot, tot, s = _run(backend, ops, x, y)
    X, Y = _exact(x), _exact(y)
    u = Fraction(1, 2**100)
    for got, want in [(_exact(prod), X * Y), (_exact(quot), X / Y), (_exact(tot), X + Y)]:
        for g, w in zip(got, want):
            assert abs(g - w) <= u * abs(w)
    assert abs(_exact(s) - sum(X)) <= u * sum(abs(v) for v in X)


@pytest.mark.parametrize("backend", BACKENDS)
def test_dd_matrix_products_are_exact_to_double_double(backend):
    """`matmul` and `rmatmul` against exact rational arithmetic, |error| <= 2^-100 Σ|terms|.
    (Dekker's product, `(a_h b_h - fl(ab)) + ...`, met only 1e-16 here under jax.jit on CPU.)"""
    rng = np.random.default_rng(4)
    a, x, r = _dd(rng, 9, 6), _dd(rng, 6, 2), _dd(rng, 9, 2)
    ax, atr = _run(backend, lambda a, x, r: (ext.matmul(a, x), ext.rmatmul(a, r)), a, x, r)
    A, X, Rr = _exact(a), _exact(x), _exact(r)
    u = Fraction(1, 2**100)
    for got, want, size in [
        (_exact(ax), A.dot(X), np.abs(A).dot(np.abs(X))),
        (_exact(atr), A.T.dot(Rr), np.abs(A).T.dot(np.abs(Rr))),
    ]:
        for g, w, t in zip(got.ravel(), want.ravel(), size.ravel()):
            assert abs(g - w) <= u * t


@pytest.mark.parametrize("with_lo", [True, False])
def test_tall_kernels_match_exact_arithmetic(with_lo):
    """The jitted kernels for tall designs: `f - b z` and `bᵀ r` (rows not a multiple of the lanes),
    |error| <= 2^-100 of the sum of the terms' magnitudes, with and without a `lo` part of `b`."""
    rng = np.random.default_rng(5)
    b, z, f, r = _dd(rng, 37, 5, scale=1e3), _dd(rng, 5, 2), _dd(rng, 37, 2), _dd(rng, 37, 2)
    if not with_lo:
        b = ext.DD(b.hi, np.zeros_like(b.lo))
    lo = b.lo if with_lo else None
    kernels = jax.jit(lambda bh, bl, z, f, r: (ext.tall_residual(bh, bl, z, f), ext.tall_rmatmul(bh, bl, r)))
    res, btr = jax.tree_util.tree_map(np.asarray, kernels(*jax.tree_util.tree_map(jnp.asarray, (b.hi, lo, z, f, r))))
    B, Z, F, Rr = _exact(b), _exact(z), _exact(f), _exact(r)
    u = Fraction(1, 2**100)
    for got, want, size in [
        (_exact(res), F - B.dot(Z), np.abs(F) + np.abs(B).dot(np.abs(Z))),
        (_exact(btr), B.T.dot(Rr), np.abs(B).T.dot(np.abs(Rr))),
    ]:
        for g, w, t in zip(got.ravel(), want.ravel(), size.ravel()):
            assert abs(g - w) <= u * t


def test_dd_matmul_recovers_cancellation_that_float64_loses():
    # rows of a are (1e16, 1, -1e16): float64 gives 0 or 2, the exact answer is 1 * x[1]
    a = ext.from_float(np.array([[1e16, 1.0, -1e16]]))
    x = ext.from_float(np.array([[1.0], [3.0], [1.0]]))
    assert float((a.hi @ x.hi)[0, 0]) != 3.0
    assert float(ext.matmul(a, x).hi[0, 0]) == 3.0
    assert float(ext.rmatmul(ext.from_float(a.hi.T.copy()), x).hi[0, 0]) == 3.0


def test_jax_extended_sums_recover_cancellation_in_any_order_and_under_vmap():
    """The jax sums are single reductions that XLA may order as it likes: exact on terms whose
    float64 sum loses everything, whichever end the big terms are at, also batched."""
    terms = jnp.array([[1e16, 1.0, -1e16, 3.0], [-1e16, 3.0, 1.0, 1e16], [1.0, 1e16, 3.0, -1e16]])
    assert float(jnp.sum(terms[0])) != 4.0
    sums = jax.jit(jax.vmap(lambda t: ext.sum_(ext.from_float(t)).hi))(terms)
    np.testing.assert_array_equal(np.asarray(sums), [4.0, 4.0, 4.0])
    col = jnp.ones((4, 1))
    res = jax.jit(jax.vmap(lambda t: ext.tall_rmatmul(t[:, None], None, ext.from_float(col)).hi))(terms)
    np.testing.assert_array_equal(np.asarray(res).ravel(), [4.0, 4.0, 4.0])
    z = ext.from_float(jnp.ones((4, 1)))
    f = ext.from_float(jnp.zeros((1, 1)))
    fit = jax.jit(jax.vmap(lambda t: ext.tall_residual(t[None, :], None, z, f).hi))(terms)
    np.testing.assert_array_equal(np.asarray(fit).ravel(), [-4.0, -4.0, -4.0])


# ---------------------------------------------------------------- augmented system and refinement


def test_solve_augmented_matches_dense_kkt_solve(rng):
    n, p, k = 12, 4, 2
    b = rng.standard_normal((n, p))
    f, g = rng.standard_normal((n, k)), rng.standard_normal((p, k))
    r, z = solve_augmented(SINGLE, b, qr_factor(b), f, g)
    kkt = np.block([[np.eye(n), b], [b.T, np.zeros((p, p))]])
    want = np.linalg.solve(kkt, np.vstack([f, g]))
    np.testing.assert_allclose(np.vstack([r, z]), want, rtol=1e-12, atol=1e-12)


def test_refinement_converges_on_an_ill_conditioned_design(rng):
    n, p = 30, 5
    u, _ = np.linalg.qr(rng.standard_normal((n, p)))
    v, _ = np.linalg.qr(rng.standard_normal((p, p)))
    b = (u * np.logspace(0, -10, p)) @ v.T  # condition number 1e10
    y = rng.standard_normal((n, 1))
    b = jnp.asarray(b)
    run = jax.jit(
        lambda b, y: refine_augmented(
            SINGLE, b, None, qr_factor(b), ext.from_float(y), ext.from_float(jnp.zeros((p, 1)))
        )
    )
    out = jax.tree_util.tree_map(np.asarray, run(b, jnp.asarray(y)))
    assert out.converged and 2 <= out.steps <= 30
    assert out.correction < 1e-20
    # the refined residual is orthogonal to the columns far below float64 rounding of the plain solve
    assert np.max(np.abs(ext.rmatmul(ext.from_float(np.asarray(b)), out.r).hi)) < 1e-25
    # the Gram-matrix factor (implicit Q) converges too on a moderately conditioned design
    b2 = (u * np.logspace(0, -4, p)) @ v.T
    out2 = jax.jit(
        lambda b, y: refine_augmented(
            SINGLE, b, None, gram_factor(SINGLE, b), ext.from_float(y), ext.from_float(jnp.zeros((p, 1)))
        )
    )(jnp.asarray(b2), jnp.asarray(y))
    assert bool(out2.converged) and int(out2.steps) >= 2


# ---------------------------------------------------------------- against exact rational arithmetic


def _exact_fit(A, y):
    """Coefficients, residual SD and standard errors in exact rational arithmetic (small p)."""
    A = [[Fraction(v) for v in row] for row in A]
    y = [Fraction(v) for v in y]
    n, p = len(A), len(A[0])
    G = [[sum(A[i][a] * A[i][b] for i in range(n)) for b in range(p)] for a in range(p)]
    rhs = [sum(A[i][a] * y[i] for i in range(n)) for a in range(p)]
    # Gauss-Jordan on [G | rhs | I]
    M = [G[a] + [rhs[a]] + [Fraction(int(a == b)) for b in range(p)] for a in range(p)]
    for c in range(p):
        piv = next(r for r in range(c, p) if M[r][c] != 0)
        M[c], M[piv] = M[piv], M[c]
        M[c] = [v / M[c][c] for v in M[c]]
        for r in range(p):
            if r != c and M[r][c] != 0:
                M[r] = [a - M[r][c] * b for a, b in zip(M[r], M[c])]
    beta = [M[a][p] for a in range(p)]
    inv_diag = [M[a][p + 1 + a] for a in range(p)]
    rss = sum((y[i] - sum(A[i][a] * beta[a] for a in range(p))) ** 2 for i in range(n))
    s2 = rss / (n - p)
    return np.array([float(b) for b in beta]), np.array([float(s2 * d) ** 0.5 for d in inv_diag])


@pytest.fixture
def large_design_paths(monkeypatch):
    """What a large design gets, on a small one: rows in XLA blocks, the Gram-matrix factor
    (implicit Q) and the jitted double-double kernels (the host backend's threshold set to 0)."""
    monkeypatch.setattr(_ls, "LARGE_PRODUCTS", 0)


def _conditioned(cond_exp, n=12, p=3):
    rng = np.random.default_rng(int(cond_exp))
    u, _ = np.linalg.qr(rng.standard_normal((n, p)))
    v, _ = np.linalg.qr(rng.standard_normal((p, p)))
    A = (u * np.logspace(0, -cond_exp, p)) @ v.T
    return A, A @ (np.arange(1.0, p + 1) * (-1.0) ** np.arange(p)) + 1e-3 * rng.standard_normal(n)


@pytest.mark.parametrize("paths", ["small", "large"])
@pytest.mark.parametrize("cond_exp", [3, 9])
def test_coefficients_and_standard_errors_match_exact_arithmetic(cond_exp, paths, request):
    """cond 1e3 takes the double-double Gram path for the standard errors, cond 1e9 (too
    ill-conditioned for it) the refined augmented solves; both reach ~1e-12 of the exact values,
    with the small-design paths and with the large-design ones (cond 1e3: Gram-matrix factor;
    cond 1e9: too ill-conditioned for it, Householder; jitted kernels for both)."""
    if paths == "large":
        request.getfixturevalue("large_design_paths")
    A, y = _conditioned(cond_exp)
    beta, se = _exact_fit(A, y)
    res = least_squares(A, y)
    np.testing.assert_allclose(res.coefficients, beta, rtol=1e-12)
    np.testing.assert_allclose(res.standard_errors, se, rtol=1e-11)
    assert res.condition_number == pytest.approx(10.0**cond_exp, rel=0.5)
    assert res.refinement_converged


def test_an_ill_conditioned_large_design_falls_back_to_householder(large_design_paths):
    """cond 1e9 is beyond the Gram-matrix factor's limit: the program switches to Householder `R` inside
    the traced program; exact answer."""
    A, y = _conditioned(9)
    res = least_squares(A, y)
    assert res.refinement_converged
    np.testing.assert_allclose(res.coefficients, _exact_fit(A, y)[0], rtol=1e-12)


def test_a_stalled_refinement_on_the_gram_factor_is_redone_with_householder_in_the_program(
    large_design_paths, monkeypatch
):
    """With the Gram factor's limit lifted, cond 1e9 gets it and its refinement cannot converge (cond²
    eps > 1): the program redoes the fit with Householder QR — eagerly, and in a traced program under vmap
    for the element that needs it — and reaches the exact answer. (A shape of its own: no cached program.)"""
    monkeypatch.setattr(_ls, "GRAM_COND_LIMIT", 1e300)
    A, y = _conditioned(9, n=14)
    good, y_good = _conditioned(2, n=14)
    want = _exact_fit(A, y)[0]
    res = least_squares(A, y)
    assert Status(int(res.status)) is Status.CONVERGED and res.refinement_converged
    np.testing.assert_allclose(res.coefficients, want, rtol=1e-12)
    both = jax.vmap(least_squares)(jnp.stack([good, A]), jnp.stack([y_good, y]))
    assert [Status(int(s)) for s in both.status] == [Status.CONVERGED, Status.CONVERGED]
    np.testing.assert_allclose(both.coefficients[1], want, rtol=1e-12)
    np.testing.assert_allclose(both.coefficients[0], _exact_fit(good, y_good)[0], rtol=1e-12)


@pytest.mark.slow
def test_large_and_small_design_paths_agree(problem, monkeypatch):
    """Multiple right-hand sides, an intercept (a design with a `lo` part): the large-design paths
    give the small-design answer to double-double accuracy, and every statistic to ~1e-15."""
    X, y = problem
    Y = np.column_stack([y, X[:, 0] - y])
    small = linear_regression(X, Y)
    monkeypatch.setattr(_ls, "LARGE_PRODUCTS", 0)
    large = linear_regression(X, Y)
    for field in ("coefficients", "standard_errors", "residuals", "rss", "residual_sd", "r_squared"):
        np.testing.assert_allclose(getattr(large, field), getattr(small, field), rtol=1e-14, atol=1e-17, err_msg=field)
    assert large.refinement_steps <= 3 and large.refinement_converged
    for method in ("svd", "normal"):  # unrefined: Qᵀf through the implicit Q, the Gram matrix from blocks
        np.testing.assert_allclose(
            linear_regression(X, Y, method=method).coefficients, small.coefficients, rtol=1e-12, err_msg=method
        )


def test_large_design_paths_compute_in_float64_with_x64_disabled(problem, large_design_paths):
    """The XLA kernels run in float64 even when jax_enable_x64 is off, which stays off."""
    X, y = problem
    want = linear_regression(X, y)
    jax.config.update("jax_enable_x64", False)
    try:
        got = linear_regression(X, y)
        assert not jax.config.jax_enable_x64
    finally:
        jax.config.update("jax_enable_x64", True)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got.coefficients, want.coefficients, rtol=1e-14)
    np.testing.assert_allclose(got.standard_errors, want.standard_errors, rtol=1e-14)


@pytest.mark.slow
def test_a_large_design_takes_the_fast_paths_and_stays_accurate():
    """1024 x 64 (m p² = 2^22 products: "large" with the default threshold): the Gram-matrix factor,
    two refinement steps, lstsq's coefficients to 1e-10 (lstsq's own error here is ~4e-12); inputs untouched."""
    rng = np.random.default_rng(7)
    A = rng.standard_normal((1024, 64)) * np.logspace(0, 3, 64)
    y = A @ rng.standard_normal(64) + rng.standard_normal(1024)
    A0, y0 = A.copy(), y.copy()
    res = least_squares(A, y)
    assert res.refinement_steps == 2 and res.refinement_converged
    np.testing.assert_allclose(res.coefficients, np.linalg.lstsq(A, y, rcond=None)[0], rtol=1e-10)
    np.testing.assert_array_equal(A, A0)  # inputs are read, never written (no defensive copies)
    np.testing.assert_array_equal(y, y0)


# ---------------------------------------------------------------- methods and statistics


@pytest.fixture
def problem(rng):
    X = rng.standard_normal((40, 3))
    beta = np.array([1.5, -2.0, 0.25, 3.0])
    y = beta[0] + X @ beta[1:] + 0.1 * rng.standard_normal(40)
    return X, y


@pytest.mark.parametrize("method", METHODS)
def test_every_method_matches_numpy_lstsq_and_textbook_statistics(problem, method):
    X, y = problem
    A = np.column_stack([np.ones(len(y)), X])
    want, *_ = np.linalg.lstsq(A, y, rcond=None)
    res = least_squares(A, y, method=method)
    np.testing.assert_allclose(res.coefficients, want, rtol=1e-12)
    resid = y - A @ want
    sigma = np.sqrt(resid @ resid / (len(y) - 4))
    se = sigma * np.sqrt(np.diag(np.linalg.inv(A.T @ A)))
    np.testing.assert_allclose(res.residuals, resid, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(res.rss, resid @ resid, rtol=1e-12)
    np.testing.assert_allclose(res.residual_sd, sigma, rtol=1e-12)
    np.testing.assert_allclose(res.standard_errors, se, rtol=1e-10)
    np.testing.assert_allclose(res.r_squared, 1 - resid @ resid / np.sum((y - y.mean()) ** 2), rtol=1e-12)
    np.testing.assert_allclose(res.fitted, A @ want, rtol=1e-12)
    assert res.rank == 4 and res.intercept and res.dtype == np.float64
    assert res.method == ("qr" if method == "auto" else method)
    assert (res.refinement_steps > 0) == (res.method == "qr")
    assert 1 <= res.condition_number < 100


def test_linear_regression_and_least_squares_agree_and_r_squared_switches(problem):
    X, y = problem
    a = linear_regression(X, y)
    b = least_squares(np.column_stack([np.ones(len(y)), X]), y)
    np.testing.assert_allclose(a.coefficients, b.coefficients, rtol=1e-13)
    np.testing.assert_allclose(a.standard_errors, b.standard_errors, rtol=1e-12)
    c = linear_regression(X, y, intercept=False)
    assert not c.intercept and c.coefficients.shape == (3,)
    np.testing.assert_allclose(c.r_squared, 1 - c.rss / np.sum(y**2), rtol=1e-12)  # uncentred
    assert c.names == ("B1", "B2", "B3") and a.names[0] == "B0"


def test_multiple_right_hand_sides_match_separate_fits(problem):
    X, y = problem
    Y = np.column_stack([y, 2 * y + X[:, 0], -y])
    res = linear_regression(X, Y)
    assert res.coefficients.shape == (4, 3) and res.residuals.shape == (40, 3)
    assert res.rss.shape == res.r_squared.shape == res.residual_sd.shape == (3,)
    assert res.standard_errors.shape == (4, 3)
    for j in range(3):
        one = linear_regression(X, Y[:, j])
        np.testing.assert_allclose(res.coefficients[:, j], one.coefficients, rtol=1e-13)
        np.testing.assert_allclose(res.standard_errors[:, j], one.standard_errors, rtol=1e-12)


def test_polyfit_matches_numpy_polyfit_reversed(rng):
    x = np.linspace(2.0, 5.0, 30)
    y = 1.0 - 0.5 * x + 0.25 * x**3 + 0.01 * rng.standard_normal(30)
    res = polyfit(x, y, 3)
    np.testing.assert_allclose(res.coefficients, np.polyfit(x, y, 3)[::-1], rtol=1e-9)
    no_int = polyfit(x, y, 2, intercept=False)
    A = np.column_stack([x, x**2])
    np.testing.assert_allclose(no_int.coefficients, np.linalg.lstsq(A, y, rcond=None)[0], rtol=1e-11)
    assert no_int.names == ("B1", "B2")


@pytest.mark.parametrize(
    "method", ["qr", *[pytest.param(m, marks=pytest.mark.slow) for m in ("svd", "cholesky", "normal")]]
)
def test_ridge_matches_the_closed_form(problem, method):
    X, y = problem
    lam = 3.0
    ls = least_squares(X, y, ridge=lam, method=method)
    want = np.linalg.solve(X.T @ X + lam * np.eye(3), X.T @ y)
    np.testing.assert_allclose(ls.coefficients, want, rtol=1e-12)
    # linear_regression does not penalise the intercept
    A = np.column_stack([np.ones(len(y)), X])
    P = np.diag([0.0, 1, 1, 1])
    lr = linear_regression(X, y, ridge=lam, method=method)
    G = A.T @ A + lam * P
    want = np.linalg.solve(G, A.T @ y)
    np.testing.assert_allclose(lr.coefficients, want, rtol=1e-12)
    H_trace = np.trace(np.linalg.solve(G, A.T @ A))
    np.testing.assert_allclose(lr.dof, len(y) - H_trace, rtol=1e-12)
    Ginv = np.linalg.inv(G)
    sigma = np.sqrt(lr.rss / lr.dof)
    np.testing.assert_allclose(lr.standard_errors, sigma * np.sqrt(np.diag(Ginv @ A.T @ A @ Ginv)), rtol=1e-9)


def test_rank_deficient_design_warns_and_auto_returns_minimum_norm(problem):
    X, y = problem
    A = np.column_stack([np.ones(len(y)), X, X[:, 0] + X[:, 1]])  # last column is a combination
    with pytest.warns(RankDeficiencyWarning, match=r"rank 4 of 5 columns.*minimum-norm"):
        res = least_squares(A, y)
    assert res.rank == 4 and res.method == "svd" and res.condition_number > 1e12
    # the minimum-norm solution reproduces the fit of the full-rank one
    full = least_squares(A[:, :4], y)
    np.testing.assert_allclose(res.fitted, full.fitted, rtol=1e-10)
    np.testing.assert_allclose(res.coefficients, np.linalg.pinv(A) @ y, rtol=1e-9)
    with pytest.warns(RankDeficiencyWarning):
        zero_col = np.column_stack([A[:, :4], np.zeros(len(y))])
        with pytest.raises(ValueError, match="method='qr' needs a full-rank design"):
            least_squares(zero_col, y, method="qr")


def test_minimum_norm_is_pinv_in_the_coefficients_whatever_the_scales_and_centring(rng):
    """Collinear columns of very different scales, and collinear predictors with large means under an
    intercept: the equilibrated and centred basis the solver works in does not change which of the
    solutions comes back — `pinv(A) @ y`, the least-norm one — eagerly, in a jit, per batch element and in
    its derivative."""
    a = rng.standard_normal(20)
    y = rng.standard_normal(20)
    scaled = np.column_stack([a, 1000 * a, rng.standard_normal(20)])
    X = np.column_stack([a + 5, 3 * (a + 5), rng.standard_normal(20) + 7])
    with_ones = np.column_stack([np.ones(20), X])
    with pytest.warns(RankDeficiencyWarning):
        np.testing.assert_allclose(least_squares(scaled, y).coefficients, np.linalg.pinv(scaled) @ y, rtol=1e-9)
        lr = linear_regression(X, y)
    np.testing.assert_allclose(lr.coefficients, np.linalg.pinv(with_ones) @ y, rtol=1e-9)
    assert np.all(np.isinf(lr.standard_errors[1:3])) and np.all(np.isfinite(lr.standard_errors[[0, 3]]))
    batch = jnp.stack([scaled, np.column_stack([a, rng.standard_normal(20), scaled[:, 2]])])
    got = jax.jit(jax.vmap(lambda A: least_squares(A, y).coefficients))(batch)
    for A, c in zip(batch, got):
        np.testing.assert_allclose(c, np.linalg.lstsq(np.asarray(A), y, rcond=None)[0], rtol=1e-9)
    # the solution is linear in y, so its derivative is pinv(A) dy exactly, also off the equilibrated basis
    dy = rng.standard_normal(20)
    _, dbeta = jax.jvp(
        lambda t: least_squares(jnp.asarray(scaled), t).coefficients, (jnp.asarray(y),), (jnp.asarray(dy),)
    )
    np.testing.assert_allclose(dbeta, np.linalg.pinv(scaled) @ dy, rtol=1e-9)
    # a wide design (method "svd" whatever the rank)
    with pytest.warns(RankDeficiencyWarning):
        wide = rng.standard_normal((3, 5)) * np.array([1.0, 1e3, 1.0, 1e-3, 1.0])
        got, want = least_squares(wide, y[:3]).coefficients, np.linalg.pinv(wide) @ y[:3]
    # norm-wise: pinv itself is accurate to about cond·eps ≈ 1e-10 of the norm here
    assert np.linalg.norm(got - want) <= 1e-9 * np.linalg.norm(want)


def test_underdetermined_problem_warns(rng):
    with pytest.warns(RankDeficiencyWarning) as record:
        res = least_squares(rng.standard_normal((3, 5)), rng.standard_normal(3))
    messages = " | ".join(str(w.message) for w in record)
    assert "rank 3 of 5" in messages and "no degrees of freedom" in messages
    assert res.method == "svd"
    np.testing.assert_allclose(res.residuals, 0, atol=1e-12)


def test_float32_input_warns_and_keeps_its_dtype(problem):
    X, y = problem
    with pytest.warns(PrecisionWarning, match="float32.*jax_enable_x64"):
        res = linear_regression(jnp.asarray(X, jnp.float32), jnp.asarray(y, jnp.float32))
    assert res.dtype == np.float32 and res.coefficients.dtype == np.float32
    np.testing.assert_allclose(res.coefficients, linear_regression(X, y).coefficients, rtol=1e-5)


def test_jax_and_integer_inputs_are_accepted():
    x = jnp.arange(6.0)
    res = polyfit(x, 2 * x + 1, 1)
    np.testing.assert_allclose(res.coefficients, [1.0, 2.0], rtol=1e-14)
    res = polyfit(np.arange(6), 3 * np.arange(6), 1)
    assert res.dtype == np.float64
    np.testing.assert_allclose(res.coefficients, [0.0, 3.0], atol=1e-14)


def test_cholesky_failure_is_a_clear_error():
    x = np.linspace(0, 1, 20)
    A = np.column_stack([x**j for j in range(15)])  # Gram matrix not positive definite in float64
    with pytest.raises(ValueError, match=r"cholesky.*square the condition number.*method='qr'"):
        least_squares(A, np.sin(x), method="cholesky")


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: least_squares(np.ones(5), np.ones(5)), ValueError, r"Phi must have shape \(n, p\).*Phi\[:, None\]"),
        (lambda: least_squares(np.ones((5, 2)), np.ones(4)), ValueError, "5 rows.*y has 4"),
        (lambda: least_squares(np.ones((5, 2)), np.ones(5), method="lu"), ValueError, "method must be one of"),
        (lambda: least_squares(np.ones((5, 2)), np.ones(5), ridge=-1), ValueError, "ridge must be"),
        (lambda: least_squares(np.ones((0, 2)), np.ones(0)), ValueError, "no observations"),
        (lambda: least_squares(np.array([[1.0], [np.nan], [2.0]]), np.ones(3)), ValueError, r"NaN/Inf.*row\(s\) \[1\]"),
        (lambda: least_squares(np.ones((3, 1)), np.array([1.0, 2.0, np.inf])), ValueError, r"y contains.*\[2\]"),
        (lambda: least_squares(np.ones((3, 1)) * 1j, np.ones(3)), TypeError, "complex"),
        (lambda: polyfit(np.ones((5, 2)), np.ones(5), 2), ValueError, "must be 1-D.*linear_regression"),
        (lambda: polyfit(np.ones(5), np.ones(5), 2.0), TypeError, "degree must be an int"),
        (lambda: polyfit(np.ones(5), np.ones(5), 0, intercept=False), ValueError, "degree must be >= 1"),
        (
            lambda: jax.jit(lambda a: least_squares(a, jnp.ones(4)).coefficients)(jnp.ones((3, 1))),
            ValueError,
            "3 rows.*y has 4",
        ),
        (lambda: least_squares(np.ones((3, 2)), np.ones(3), check=1), TypeError, "check must be True or False"),
        (lambda: least_squares(np.ones((3, 2)), np.ones(3), ridge=np.nan), ValueError, "ridge must be a finite"),
        (lambda: least_squares(np.ones((2, 3)), np.ones(2), method="qr"), ValueError, "at least as many rows"),
    ],
)
def test_user_errors_say_what_was_expected(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([1e-6, 1.0, 1e8]))
def test_random_problems_agree_with_lstsq_at_any_column_scale(seed, scale):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((25, 4)) * np.array([1.0, scale, 1 / scale, 7.0])
    y = rng.standard_normal(25)
    res = least_squares(A, y)
    norms = np.linalg.norm(A, axis=0)  # reference: lstsq on the equilibrated columns
    want = np.linalg.lstsq(A / norms, y, rcond=None)[0] / norms
    np.testing.assert_allclose(res.coefficients, want, rtol=1e-10)
    # the residual is orthogonal to every column (relative to the column's size)
    col = np.linalg.norm(A, axis=0) * np.linalg.norm(y)
    assert np.all(np.abs(A.T @ res.residuals) <= 1e-13 * col)
