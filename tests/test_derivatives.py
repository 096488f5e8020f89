"""The derivative API: shapes (numerator layout), values, modes, jit/vmap, float32/float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mmljax as mj


def rand(shape, seed=0, dtype=jnp.float64):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


# ---- shapes: out_shape + in_shape ------------------------------------------------------------

SHAPE_CASES = [
    ("scalar->scalar", lambda x: jnp.sin(x), ()),
    ("vector->scalar", lambda x: jnp.sum(x**2), (3,)),
    ("scalar->vector", lambda x: x * jnp.arange(1.0, 5.0), ()),
    ("vector->vector", lambda x: jnp.outer(jnp.ones(5), x).sum(1), (3,)),
    ("matrix->scalar", lambda X: jnp.sum(X**2), (2, 3)),
    ("matrix->matrix", lambda X: X.T @ X, (2, 3)),
    ("vector->matrix", lambda x: jnp.outer(x, x), (3,)),
]


@pytest.mark.parametrize("name,f,in_shape", SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
@pytest.mark.parametrize("mode", ["fwd", "rev", "auto"])
def test_jacobian_shape_is_out_plus_in(name, f, in_shape, mode):
    x = rand(in_shape)
    out_shape = f(x).shape
    J = mj.jacobian(f, mode=mode)(x)
    assert J.shape == out_shape + in_shape
    Jm = mj.jacobian_matrix(f, mode=mode)(x)
    n_out = int(np.prod(out_shape)) if out_shape else 1
    assert Jm.shape == (n_out, int(np.prod(in_shape)) if in_shape else 1)


def test_jacobian_of_Ax_is_A_numerator_layout():
    A = rand((4, 3))
    J = mj.jacobian(lambda x: A @ x)(rand(3, 1))
    assert J.shape == (4, 3)
    np.testing.assert_allclose(J, A, rtol=0, atol=0)


def test_scalar_f_jacobian_matrix_is_row_vector():
    x = rand(5)
    J = mj.jacobian_matrix(lambda x: jnp.sum(jnp.sin(x)))(x)
    assert J.shape == (1, 5)
    np.testing.assert_allclose(J[0], jnp.cos(x), rtol=1e-14)


def test_jacobian_matrix_matches_tensor_in_vec_order():
    X = rand((2, 3))
    f = lambda X: jnp.tanh(X).T @ X  # (3, 3)
    T = mj.jacobian(f)(X)  # (3, 3, 2, 3)
    M = mj.jacobian_matrix(f)(X)
    # entry (vec index of out (i, j), vec index of in (k, l))
    for i, j, k, l in [(0, 1, 1, 2), (2, 0, 0, 1), (1, 1, 1, 0)]:
        assert M[i + 3 * j, k + 2 * l] == T[i, j, k, l]


def test_auto_mode_choice_tall_and_wide():
    """20 inputs -> 20 000 outputs: forward; scalar loss: reverse; same values as both modes."""
    W = rand((1000, 20), 3)
    tall = lambda x: jnp.tanh(W * x).ravel()  # (20000,)
    x = rand(20, 4)
    assert mj.jacobian_mode(tall, x) == "fwd"
    Ja, Jf = (mj.jacobian(tall, mode=m)(x) for m in ("auto", "fwd"))
    assert Ja.shape == (20000, 20)
    np.testing.assert_array_equal(Ja, Jf)  # auto ran forward mode: identical values
    # analytic: d tanh(W_ij x_j)/dx_j = W_ij (1 - tanh²), zero off the j column
    expected = (W * (1 - jnp.tanh(W * x) ** 2))[:, :, None] * jnp.eye(20)[None, :, :]
    np.testing.assert_allclose(Ja, expected.reshape(20000, 20), rtol=1e-14, atol=1e-15)
    loss = lambda x: jnp.sum(tall(x) ** 2)
    assert mj.jacobian_mode(loss, x) == "rev"
    np.testing.assert_array_equal(mj.jacobian(loss)(x), mj.jacobian(loss, mode="rev")(x))
    np.testing.assert_allclose(mj.jacobian(loss)(x), mj.jacobian(loss, mode="fwd")(x), rtol=1e-12)


def test_auto_mode_breaks_ties_toward_reverse():
    """A square Jacobian (as many outputs as inputs) goes to reverse mode; one more output flips it."""
    x = rand(6, 5)
    square = lambda v: jnp.sin(v) * v.sum()  # noqa: E731
    assert mj.jacobian_mode(square, x) == "rev"
    assert mj.jacobian_mode(lambda v: jnp.concatenate([square(v), v[:1]]), x) == "fwd"
    assert mj.jacobian_mode(lambda v: square(v)[:-1], x) == "rev"
    # vec Jacobians of square matrices: reverse, identical values to mode="rev"
    X = rand((3, 3), 6)
    f = lambda X: X @ X  # noqa: E731
    np.testing.assert_array_equal(mj.jacobian_matrix(f)(X), mj.jacobian_matrix(f, mode="rev")(X))
    # the modes agree on the tie to rounding
    np.testing.assert_allclose(mj.jacobian(square)(x), mj.jacobian(square, mode="fwd")(x), rtol=1e-14)


def test_gradient_pytree_and_argnums():
    params = {"w": rand(3), "b": jnp.asarray(0.5)}
    x = rand(3, 2)
    f = lambda p, x: jnp.sum(jnp.tanh(p["w"] * x)) + p["b"] ** 2
    g = mj.gradient(f)(params, x)
    assert g["w"].shape == (3,) and g["b"].shape == ()
    np.testing.assert_allclose(g["w"], x * (1 - jnp.tanh(params["w"] * x) ** 2), rtol=1e-14)
    np.testing.assert_allclose(g["b"], 1.0, rtol=1e-14)
    gx = mj.gradient(f, argnums=1)(params, x)
    np.testing.assert_allclose(gx, params["w"] * (1 - jnp.tanh(params["w"] * x) ** 2), rtol=1e-14)


def test_derivative_table_scalar():
    d = mj.derivative
    x = jnp.asarray(0.7)
    np.testing.assert_allclose(d(jnp.sin)(x), jnp.cos(x), rtol=1e-15)
    np.testing.assert_allclose(d(jnp.tanh)(x), 1 - jnp.tanh(x) ** 2, rtol=1e-15)
    np.testing.assert_allclose(d(jnp.log)(x), 1 / x, rtol=1e-15)
    np.testing.assert_allclose(jax.vmap(d(jnp.exp))(jnp.arange(3.0)), jnp.exp(jnp.arange(3.0)), rtol=1e-15)


def test_hessian_shape_symmetric_and_matrix_vec_order():
    X = rand((2, 3))
    f = lambda X: jnp.sum(jnp.sin(X @ X.T)) + jnp.sum(X**3)
    H = mj.hessian(f)(X)
    assert H.shape == (2, 3, 2, 3)
    Hm = mj.hessian_matrix(f)(X)
    assert Hm.shape == (6, 6)
    np.testing.assert_allclose(Hm, Hm.T, rtol=1e-13, atol=1e-13)
    # vec order: H_matrix[vec(i,j), vec(k,l)] = H[i,j,k,l] with vec(i,j) = i + 2j
    np.testing.assert_allclose(Hm[1 + 2 * 2, 0 + 2 * 1], H[1, 2, 0, 1], rtol=1e-15)


def test_hessian_of_quadratic_form():
    B = rand((4, 4), 5)
    H = mj.hessian(lambda x: x @ B @ x)(rand(4))
    np.testing.assert_allclose(H, B + B.T, rtol=1e-14)


def test_hvp_equals_hessian_matrix_times_v_pytree():
    p = {"a": rand((2, 2), 1), "b": rand(3, 2)}
    v = {"a": rand((2, 2), 3), "b": rand(3, 4)}
    f = lambda p: jnp.sum(jnp.tanh(p["a"]) ** 2) * jnp.sum(jnp.sin(p["b"])) + jnp.sum(p["b"] ** 4)
    Hv = mj.hvp(f, p, v)
    flat_v, unravel = mj.ravel_vec(v)
    expected = mj.hessian_matrix(f)(p) @ flat_v
    got, _ = mj.ravel_vec(Hv)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-13)


def test_hvp_does_not_build_the_hessian():
    """The jaxpr of hvp for a 2000-dim input has no (2000, 2000) intermediate."""
    f = lambda x: jnp.sum(jnp.tanh(x) ** 2)
    x = jnp.ones(2000)
    jaxpr = jax.make_jaxpr(lambda x, v: mj.hvp(f, x, v))(x, x)
    shapes = [v.aval.shape for eqn in jaxpr.eqns for v in eqn.outvars]
    assert all(np.prod(s, dtype=int) <= 2000 for s in shapes)


def test_directional_derivative_is_limit_of_difference_quotient():
    f = lambda x: jnp.sum(jnp.exp(jnp.sin(x)) * x)
    x, v = rand(5, 1), rand(5, 2)
    exact = mj.directional_derivative(f, x, v)
    np.testing.assert_allclose(exact, mj.gradient(f)(x) @ v, rtol=1e-13)
    errors = [abs(float((f(x + h * v) - f(x)) / h - exact)) for h in (1e-2, 1e-3, 1e-4, 1e-5)]
    # forward difference: error O(h) — shrinks ~10x per decade of h
    for e_big, e_small in zip(errors, errors[1:]):
        assert e_small < 0.2 * e_big
    assert errors[-1] < 1e-4 * abs(float(exact)) + 1e-6


def test_second_directional_derivative():
    B = rand((3, 3), 9)
    f = lambda x: 0.5 * x @ B @ x + jnp.sum(x**3)
    x, v = rand(3, 1), rand(3, 2)
    H = B / 2 + B.T / 2 + jnp.diag(6 * x)
    np.testing.assert_allclose(mj.second_directional_derivative(f, x, v), v @ H @ v, rtol=1e-13)


def test_works_under_jit_and_vmap():
    A = rand((3, 2))
    f = lambda x: jnp.tanh(A @ x)
    xs = rand((5, 2), 2)
    J_jit = jax.jit(mj.jacobian(f))(xs[0])
    J_vmap = jax.vmap(mj.jacobian(f))(xs)
    assert J_vmap.shape == (5, 3, 2)
    np.testing.assert_allclose(J_jit, J_vmap[0], rtol=1e-15)
    g = jax.jit(jax.vmap(mj.gradient(lambda x: jnp.sum(f(x) ** 2))))(xs)
    assert g.shape == (5, 2)
    hv = jax.jit(lambda x, v: mj.hvp(lambda z: jnp.sum(f(z) ** 2), x, v))(xs[0], xs[1])
    assert hv.shape == (2,)


@pytest.mark.parametrize("dtype,rtol", [(jnp.float32, 1e-5), (jnp.float64, 1e-14)])
def test_float32_and_float64(dtype, rtol):
    x = rand(4, 0, dtype)
    g = mj.gradient(lambda x: jnp.sum(jnp.sin(x)))(x)
    assert g.dtype == dtype
    np.testing.assert_allclose(g, jnp.cos(x), rtol=rtol)
    H = mj.hessian_matrix(lambda x: jnp.sum(jnp.sin(x)))(x)
    assert H.dtype == dtype


def test_import_does_not_change_x64():
    import subprocess
    import sys

    code = "import jax; import mmljax; print(jax.config.read('jax_enable_x64'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@settings(max_examples=6)
@given(st.integers(1, 4), st.integers(1, 4))
def test_property_jacobian_modes_agree(m, n):
    rng = np.random.default_rng(m * 10 + n)
    A = jnp.asarray(rng.standard_normal((m, n)))
    x = jnp.asarray(rng.standard_normal(n))
    f = lambda x: jnp.sin(A @ x)
    Jf = mj.jacobian(f, mode="fwd")(x)
    Jr = mj.jacobian(f, mode="rev")(x)
    np.testing.assert_allclose(Jf, Jr, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(Jf, jnp.cos(A @ x)[:, None] * A, rtol=1e-13, atol=1e-15)


# ---- bad input ---------------------------------------------------------------------------------


def test_non_callable_is_a_clear_type_error():
    for fn in (mj.gradient, mj.jacobian, mj.hessian, mj.derivative, mj.jacobian_matrix, mj.hessian_matrix):
        with pytest.raises(TypeError, match="must be a callable"):
            fn(np.ones(3))


def test_integer_input_is_rejected():
    with pytest.raises(TypeError, match=r"dtype int\d+; derivatives need floating inputs"):
        mj.gradient(lambda x: jnp.sum(x**2))(jnp.arange(3))
    with pytest.raises(TypeError, match="floating"):
        mj.jacobian(lambda x: x)(jnp.arange(3))


def test_nan_input_is_rejected_with_indices():
    x = jnp.array([1.0, jnp.nan, 2.0])
    with pytest.raises(ValueError, match=r"NaN/Inf value\(s\) at indices \[\[1\]\]"):
        mj.gradient(jnp.sum)(x)
    with pytest.raises(ValueError, match="NaN/Inf"):
        mj.hvp(jnp.sum, x, jnp.ones(3))


def test_mismatched_shapes_are_named():
    with pytest.raises(ValueError, match=r"hvp: v must have the shape of x: expected \(3,\), got \(4,\)"):
        mj.hvp(lambda x: jnp.sum(x**2), jnp.ones(3), jnp.ones(4))
    with pytest.raises(ValueError, match=r"directional_derivative: v must have the shape of x"):
        mj.directional_derivative(jnp.sin, jnp.ones(3), jnp.ones((3, 1)))
    with pytest.raises(ValueError, match=r"gradient: f must return a scalar; it returned shape \(3,\)"):
        mj.gradient(jnp.sin)(jnp.ones(3))
    with pytest.raises(ValueError, match=r"derivative: x must be a scalar"):
        mj.derivative(jnp.sin)(jnp.ones(3))
    with pytest.raises(ValueError, match="mode must be one of"):
        mj.jacobian(jnp.sin, mode="sideways")
