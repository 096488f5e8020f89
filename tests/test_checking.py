"""check_derivative / check_minimiser / finite differences: they pass right formulas and fail wrong ones."""

import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import mmljax as mj
from mmljax import finite_diff as fd


def rand(shape, seed=0, dtype=jnp.float64):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


A = rand((4, 3), 1)
y = rand(4, 2)
x3 = rand(3, 3)


def ls_loss(x):
    return 0.5 * jnp.sum((y - A @ x) ** 2)


def ls_grad(x):
    return -(y - A @ x) @ A


def test_correct_gradient_passes_all_witnesses():
    r = mj.check_derivative(ls_loss, ls_grad, x3, name="ls")
    assert r.ok, r.message
    assert set(r.witnesses) == {"jacfwd", "jacrev", "finite_diff", "taylor"}
    assert r.autodiff_rel <= 1e-10
    assert r.finite_diff_rel <= 1e-6
    assert r.dtype == "float64" and r.shape == (3,) and r.name == "ls"
    assert "check 'ls' ok" in str(r)
    assert r.raise_if_failed() is r


def test_gradient_perturbed_by_one_percent_fails():
    r = mj.check_derivative(ls_loss, lambda x: 1.01 * ls_grad(x), x3, name="ls+1%")
    assert not r.ok
    for w in ("jacfwd", "jacrev", "finite_diff", "taylor"):
        assert not r.witnesses[w].ok, w
    assert r.autodiff_rel == pytest.approx(0.01, rel=1e-6)
    assert r.witnesses["taylor"].max_rel < 1.3  # order ~1: the formula is wrong
    assert "check 'ls+1%' FAILED" in r.message and "at index" in r.message
    with pytest.raises(mj.CheckFailed, match="ls\\+1%"):
        r.raise_if_failed()


def test_transposed_jacobian_reports_shape_and_transpose():
    r = mj.check_derivative(lambda x: A @ x, A.T, x3, name="d(Ax)/dx")
    assert not r.ok
    assert r.shape == (4, 3) and r.hand_shape == (3, 4)
    assert "(4, 3)" in r.message and "(3, 4)" in r.message and "transposed" in r.message


def test_square_transposed_jacobian_named_as_denominator_layout():
    M = rand((3, 3), 5)
    f = lambda x: M @ jnp.tanh(x)
    J = M * (1 - jnp.tanh(x3) ** 2)[None, :]
    assert mj.check_derivative(f, J, x3).ok
    r = mj.check_derivative(f, J.T, x3)
    assert not r.ok and "TRANSPOSE" in r.message and "denominator layout" in r.message


def test_vec_layout_kronecker():
    B = rand((5, 2), 6)
    X = rand((3, 5), 7)
    f = lambda X: A @ X @ B
    assert mj.check_derivative(f, jnp.kron(B.T, A), X, layout="vec").ok
    # the row-major-vec mistake kron(A, Bᵀ) has the same shape but permuted entries: must fail
    r = mj.check_derivative(f, jnp.kron(A, B.T), X, layout="vec")  # row-major vec: same shape, wrong order
    assert not r.ok


def test_hessian_check_and_missing_symmetrisation_fails():
    B = rand((3, 3), 8)
    f = lambda x: x @ B @ x
    assert mj.check_derivative(f, B + B.T, x3, order=2).ok
    r = mj.check_derivative(f, 2 * B, x3, order=2, name="missing symmetrisation")
    assert not r.ok and "missing symmetrisation" in r.message


def test_sign_flip_fails():
    r = mj.check_derivative(ls_loss, lambda x: -ls_grad(x), x3)
    assert not r.ok and r.autodiff_rel == pytest.approx(2.0, rel=1e-9)


def test_hand_formula_that_raises_is_reported():
    r = mj.check_derivative(ls_loss, lambda x: A @ jnp.ones(7), x3, name="broken")
    assert not r.ok and "hand formula raised" in r.message and r.witnesses == {}


def test_large_inputs_use_random_directions():
    n = 600  # Jacobian 600 x 600 = 360 000 > DENSE_LIMIT
    M = rand((n, n), 9) / np.sqrt(n)
    x = rand(n, 10)
    f = lambda x: jnp.tanh(M @ x)
    J = (1 - jnp.tanh(M @ x) ** 2)[:, None] * M
    r = mj.check_derivative(f, J, x)
    assert r.mode == "directions" and r.ok, r.message
    bad = mj.check_derivative(f, J.at[3, 5].add(0.5), x)
    assert bad.mode == "directions" and not bad.ok


def test_float32_warns_and_uses_loose_tolerances():
    x = x3.astype(jnp.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = mj.check_derivative(lambda x: jnp.sum(jnp.sin(x)), lambda x: jnp.cos(x), x)
    assert any("float32 only" in str(w.message) for w in caught)
    assert r.ok and r.dtype == "float32"
    assert r.witnesses["jacfwd"].tol == 1e-4


def test_bad_inputs_to_the_checker():
    with pytest.raises(TypeError, match="must be a callable"):
        mj.check_derivative(3.0, ls_grad, x3)
    with pytest.raises(TypeError, match="floating"):
        mj.check_derivative(ls_loss, ls_grad, jnp.arange(3))
    with pytest.raises(ValueError, match="NaN/Inf"):
        mj.check_derivative(ls_loss, ls_grad, jnp.array([1.0, jnp.inf, 0.0]))
    with pytest.raises(ValueError, match="f fails on x of shape \\(5,\\)"):
        mj.check_derivative(ls_loss, ls_grad, jnp.ones(5))
    with pytest.raises(ValueError, match="order=2 needs a scalar"):
        mj.check_derivative(lambda x: A @ x, A, x3, order=2)


def test_result_to_dict_is_json_ready():
    import json

    d = mj.check_derivative(ls_loss, ls_grad, x3, name="ls").to_dict()
    json.dumps(d, allow_nan=False)
    assert d["ok"] and d["shape"] == [3] and set(d["witnesses"]) >= {"jacfwd", "jacrev", "finite_diff"}


# ---- minimisers: the lecture's worked example and its erratum ---------------------------------

xs = rand(20, 11)
ys = 1.7 * xs + 0.1 * rand(20, 12)
L = lambda a: jnp.sum((a * xs - ys) ** 2)


def test_corrected_minimiser_passes():
    r = mj.check_minimiser(L, jnp.sum(xs * ys) / jnp.sum(xs**2), name="a*")
    assert r.ok, r.message
    assert r.relative_step < 1e-12 and r.positive_definite


def test_printed_erratum_is_not_a_minimiser():
    r = mj.check_minimiser(L, jnp.sum(2 * xs * ys) / jnp.sum(xs**2), name="erratum")
    assert not r.ok
    assert r.relative_step == pytest.approx(0.5, rel=1e-9)  # a = 2a*: Newton step back is half of a
    assert "not a stationary point" in r.message


def test_saddle_is_not_a_minimiser_even_if_stationary():
    r = mj.check_minimiser(lambda p: p[0] ** 2 - p[1] ** 2, jnp.zeros(2))
    assert not r.ok and not r.positive_definite and "not positive definite" in r.message


def test_minimiser_on_pytree():
    r = mj.check_minimiser(
        lambda p: jnp.sum((p["w"] - 1.0) ** 2) + (p["b"] + 2.0) ** 2, {"w": jnp.ones(3), "b": jnp.asarray(-2.0)}
    )
    assert r.ok


# ---- finite differences ------------------------------------------------------------------------


def test_fd_jacobian_error_matches_step_theory():
    f = lambda x: jnp.sin(A @ x)
    J = jnp.cos(A @ x3)[:, None] * A
    err = float(jnp.max(jnp.abs(fd.fd_jacobian(f, x3) - J)))
    assert err < 1e-9  # ~ eps^(2/3) ≈ 4e-11 times small constants


def test_fd_hessian_and_directional():
    B = rand((3, 3), 13)
    H = fd.fd_hessian(lambda x: x @ B @ x + jnp.sum(x**4), x3)
    np.testing.assert_allclose(H, B + B.T + jnp.diag(12 * x3**2), rtol=1e-6, atol=1e-6)
    v = rand(3, 14)
    d = fd.fd_directional(ls_loss, x3, v)
    np.testing.assert_allclose(d, ls_grad(x3) @ v, rtol=1e-8)


def test_taylor_test_orders():
    v = rand(3, 15)
    f = lambda x: jnp.sum(jnp.exp(jnp.sin(x)))
    good = fd.taylor_test(f, x3, v, jnp.cos(x3) * jnp.exp(jnp.sin(x3)) @ v)
    assert good.ok and 1.8 < good.order < 2.2
    bad = fd.taylor_test(f, x3, v, 1.05 * (jnp.cos(x3) * jnp.exp(jnp.sin(x3)) @ v))
    assert not bad.ok and 0.8 < bad.order < 1.3


def test_taylor_test_on_large_input():
    n = 100_000
    x = rand(n, 16)
    v = rand(n, 17)
    f = lambda x: jnp.sum(x**3) / n
    assert fd.taylor_test(f, x, v, (3 * x**2 / n) @ v).ok
    assert not fd.taylor_test(f, x, v, (2 * x**2 / n) @ v).ok


def test_transposed_gradient_wrt_matrix_is_named():
    X, B = rand((2, 3), 20), rand((3, 2), 21)
    f = lambda X: jnp.trace(B @ X)  # d tr(BX)/dX = Bᵀ, shaped like X
    assert mj.check_derivative(f, B.T, X).ok
    r = mj.check_derivative(f, B, X)
    assert not r.ok and "transposed" in r.message and "shape of X" in r.message


def test_zero_derivative_with_cancellation_is_not_failed_on_rounding():
    """f's terms cancel to a constant: the finite difference is pure rounding noise around 0."""
    f = lambda x: jnp.sum(1e8 * x) - jnp.sum(1e8 * x[::-1]) + 1.0
    r = mj.check_derivative(f, jnp.zeros(3), jnp.array([0.3, 0.7, 0.3]))
    assert r.ok, r.message
    # but a real non-zero error on top of it still fails against finite differences
    bad = mj.check_derivative(f, jnp.full(3, 1e-3), jnp.array([0.3, 0.7, 0.3]))
    assert not bad.witnesses["finite_diff"].ok


# ---------------------------------------------------------------- options can never make a check pass


@pytest.mark.parametrize(
    "kw",
    [
        dict(directions=-1),
        dict(directions=0),
        dict(rtol=-1.0),
        dict(rtol=float("nan")),
        dict(atol=float("nan")),
        dict(fd_rtol=-1e-6),
        dict(order=0),
        dict(seed=-3),
    ],
)
def test_invalid_options_are_refused_not_passed(kw):
    wrong = lambda x: 2 * ls_grad(x)  # noqa: E731
    with pytest.raises((ValueError, TypeError), match="check_derivative: "):
        mj.check_derivative(ls_loss, wrong, x3, **kw)


def test_one_random_direction_still_fails_a_wrong_formula():
    r = mj.check_derivative(ls_loss, lambda x: 2 * ls_grad(x), x3, directions=1)
    assert not r.ok and r.mode == "directions"
    assert {"jacfwd", "jacrev", "finite_diff", "taylor"} <= set(r.witnesses)


def test_a_result_without_autodiff_witnesses_never_passes():
    from mmljax.checking import CheckSpec, run_witnesses, witness_program

    f = lambda z: jnp.sum(z**2)  # noqa: E731
    prog = witness_program(lambda z: f(z), lambda z: 2 * z, 1)
    ok = run_witnesses(prog, f, lambda z: 2 * z, x3, (), CheckSpec(1, "tensor", None, None, None), "sq", 1, 0)
    assert ok.ok and "jacfwd" in ok.witnesses
    with pytest.raises(ValueError, match="directions must be >= 1"):
        run_witnesses(prog, f, lambda z: 2 * z, x3, (), CheckSpec(1, "tensor", None, None, None), "sq", -1, 0)


# ---------------------------------------------------------------- pytree points


def _dict_point():
    return {"w": rand((2, 3), 5) / 3, "b": rand(2, 6)}


def _dict_loss(p):
    return jnp.sum(jnp.sin(p["w"])) + jnp.sum(p["b"] ** 3) + jnp.sum(p["w"] @ jnp.ones(3) * p["b"])


def _dict_grad(p):
    return {"w": jnp.cos(p["w"]) + p["b"][:, None] * jnp.ones((1, 3)), "b": 3 * p["b"] ** 2 + p["w"] @ jnp.ones(3)}


def test_dict_point_passes_and_names_the_wrong_leaf():
    p = _dict_point()
    r = mj.check_derivative(_dict_loss, _dict_grad, p)
    assert r.ok, r.message
    assert r.shape == (8,) and "2 leaves, 8 parameters" in r.message

    def wrong(p):
        g = _dict_grad(p)
        return {"w": g["w"].at[1, 2].add(0.5), "b": g["b"]}

    bad = mj.check_derivative(_dict_loss, wrong, p)
    assert not bad.ok
    assert bad.witnesses["jacrev"].location == "x['w'][1, 2]"
    assert "at x['w'][1, 2] (hand" in bad.message
    assert bad.to_dict()["witnesses"]["jacfwd"]["location"] == "x['w'][1, 2]"


def test_pytree_hand_of_the_wrong_structure_or_shape_is_reported():
    p = _dict_point()
    r = mj.check_derivative(_dict_loss, lambda p: {"w": _dict_grad(p)["w"]}, p)
    assert not r.ok and "must have the pytree structure of x" in r.message
    r = mj.check_derivative(_dict_loss, lambda p: {"w": _dict_grad(p)["w"].T, "b": _dict_grad(p)["b"]}, p)
    assert not r.ok and "leaf x['w'] has shape (3, 2); expected out_shape + x['w'].shape = (2, 3)" in r.message
    assert "looks transposed" in r.message


def test_pytree_jacobian_and_hessians():
    p = _dict_point()
    vec_f = lambda p: jnp.concatenate([jnp.sin(p["w"]).ravel(), p["b"] ** 2])  # noqa: E731
    import jax

    assert mj.check_derivative(vec_f, jax.jacrev(vec_f), p).ok
    bad_jac = lambda q: jax.tree_util.tree_map(lambda a: a * 1.001, jax.jacrev(vec_f)(q))  # noqa: E731
    r = mj.check_derivative(vec_f, bad_jac, p)
    assert not r.ok and r.witnesses["jacrev"].location.startswith("output [")
    assert mj.check_derivative(_dict_loss, jax.hessian(_dict_loss), p, order=2).ok
    H = mj.hessian_matrix(_dict_loss)(p)
    assert mj.check_derivative(_dict_loss, H, p, order=2, layout="vec").ok
    r = mj.check_derivative(_dict_loss, H.at[0, 7].add(1.0).at[7, 0].add(1.0), p, order=2, layout="vec")
    assert not r.ok and r.witnesses["jacrev"].location in ("(x['b'][0], x['w'][1, 2])", "(x['w'][1, 2], x['b'][0])")


def test_namedtuple_point_with_a_static_float_field():
    from typing import NamedTuple

    class P(NamedTuple):
        a: jnp.ndarray
        c: float

    f = lambda p: jnp.sum(jnp.sin(p.a)) * p.c  # noqa: E731
    r = mj.check_derivative(f, lambda p: P(jnp.cos(p.a) * p.c, None), P(x3, 2.0))
    assert r.ok, r.message
    assert r.shape == (3,)  # the float field is static: only `a` is differentiated


def test_equinox_mlp_parameters():
    import equinox as eqx
    import jax

    model = eqx.nn.MLP(3, 2, 4, 2, key=jax.random.PRNGKey(0))
    xs = rand((5, 3), 9)

    def loss(m):
        return 0.5 * jnp.sum(jax.vmap(m)(xs) ** 2)

    r = mj.check_derivative(loss, eqx.filter_grad(loss), model)
    assert r.ok, r.message
    assert r.shape == (sum(a.size for a in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))),)

    def wrong(m):
        g = eqx.filter_grad(loss)(m)
        return eqx.tree_at(lambda t: t.layers[1].weight, g, g.layers[1].weight * 1.1)

    bad = mj.check_derivative(loss, wrong, model)
    assert not bad.ok and bad.witnesses["jacrev"].location.startswith("x.layers[1].weight[")


def test_pytree_of_mixed_precision_is_checked_in_the_widest():
    q = {"a": jnp.full(2, 0.5, jnp.float32), "b": jnp.full(2, 0.3)}
    f = lambda q: jnp.sum(q["a"] ** 2) + jnp.sum(q["b"] ** 3)  # noqa: E731
    r = mj.check_derivative(f, lambda q: {"a": 2 * q["a"], "b": 3 * q["b"] ** 2}, q)
    assert r.ok and r.dtype == "float64", r.message
    r = mj.check_derivative(f, lambda q: {"a": 2 * q["a"], "b": 2 * q["b"] ** 2}, q, directions=2)
    assert not r.ok and r.mode == "directions"
