"""mmljax.chain: the chain rule as checked Jacobian products, on the lectures' examples."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import rel_err

import mmljax as mj

TOL64 = 1e-10


@jax.jit
def lecture_example(A, y, x):
    e = y - A @ jnp.sin(x)
    return dict(
        chain=mj.chain(e, -A, jnp.diag(jnp.cos(x)), names=("dL/de", "de/dc", "dc/dx")),
        chain_row=mj.chain(e[None, :], -A, jnp.diag(jnp.cos(x))),
        auto=mj.gradient(lambda x: 0.5 * jnp.sum((y - A @ jnp.sin(x)) ** 2))(x),
        de_dc=mj.jacobian(lambda c: y - A @ c)(jnp.sin(x)),
        dc_dx=mj.jacobian(jnp.sin)(x),
        cos=jnp.diag(jnp.cos(x)),
    )


def test_lecture_2_example_half_norm_of_y_minus_A_sin_x():
    """L = ½||e||², e = y − A c, c = sin x: dL/dx = eᵀ · (−A) · diag(cos x)."""
    rng = np.random.default_rng(0)
    A, y, x = (jnp.asarray(rng.standard_normal(s)) for s in ((5, 3), (5,), (3,)))
    w = lecture_example(A, y, x)
    assert w["chain"].shape == (3,)  # a gradient: the row 1 × 3 stored 1-D
    assert rel_err(w["chain"], w["auto"]) <= TOL64
    # The stages themselves are the autodiff Jacobians of the stages.
    assert rel_err(w["de_dc"], -A) <= TOL64 and rel_err(w["dc_dx"], w["cos"]) <= TOL64
    # As a full Jacobian (rows kept) it is the 1 × 3 matrix of numerator layout.
    assert w["chain_row"].shape == (1, 3) and rel_err(w["chain_row"][0], w["auto"]) <= TOL64


@jax.jit
def one_layer(A, b, x):
    """σ = tanh on z = Ax + b: the stages and the autodiff references, in one compiled program."""
    layer = lambda A, b, x: jnp.tanh(A @ x + b)
    h = A.shape[0]
    dsig_dz = jnp.diag(1 - jnp.tanh(A @ x + b) ** 2)
    dz_dA = jnp.einsum("ia,c->iac", jnp.eye(h), x)  # rank 3: dz_i/dA_ac = δ_ia x_c
    dz_dvecA = jnp.kron(x[None, :], jnp.eye(h))  # vec form: xᵀ ⊗ I
    t = jnp.arange(float(h))
    return dict(
        x=(mj.chain(dsig_dz, A, names=("dσ/dz", "dz/dx")), jax.jacfwd(lambda x: layer(A, b, x))(x)),
        b=(mj.chain(dsig_dz, jnp.eye(h)), jax.jacrev(lambda b: layer(A, b, x))(b)),
        A_tensor=(jnp.tensordot(dsig_dz, dz_dA, axes=1), jax.jacrev(lambda A: layer(A, b, x))(A)),
        A_vec=(
            mj.chain(dsig_dz, dz_dvecA, names=("dσ/dz", "dz/dvec A")),
            mj.jacobian_matrix(lambda A: layer(A, b, x))(A),
        ),
        vec_of_tensor=(dz_dvecA, dz_dA.reshape(h, -1, order="F")),
        loss=(
            mj.unvec(mj.chain(layer(A, b, x) - t, dsig_dz, dz_dvecA), A.shape),
            jax.grad(lambda A: 0.5 * jnp.sum((layer(A, b, x) - t) ** 2))(A),
        ),
        dz_dA=dz_dA,
    )


def layer_data():
    rng = np.random.default_rng(1)
    return tuple(jnp.asarray(rng.standard_normal(s)) for s in ((4, 3), (4,), (3,)))


def test_one_layer_with_respect_to_x_b_and_A():
    w = one_layer(*layer_data())
    for key in ("x", "b", "A_tensor", "A_vec", "vec_of_tensor", "loss"):
        hand, auto = w[key]
        assert hand.shape == auto.shape and rel_err(hand, auto) <= TOL64, key
    assert w["A_tensor"][0].shape == (4, 4, 3) and w["A_vec"][0].shape == (4, 12)
    with pytest.raises(ValueError, match=r"dz/dA has shape \(4, 4, 3\).*vec form"):
        mj.chain(jnp.eye(4), w["dz_dA"], names=("dσ/dz", "dz/dA"))


def test_shape_mismatch_names_both_stages():
    with pytest.raises(ValueError, match=r"dL/de · de/dc do not compose: \(1×5\) · \(4×3\): 5 != 4"):
        mj.chain(jnp.ones(5), jnp.ones((4, 3)), names=("dL/de", "de/dc"))
    with pytest.raises(ValueError, match=r"stage 2 · stage 3 do not compose: \(3×2\) · \(3×1\): 2 != 3"):
        mj.chain(jnp.ones((2, 3)), jnp.ones((3, 2)), jnp.ones((3, 1)))
    with pytest.raises(ValueError, match="at least one"):
        mj.chain()
    with pytest.raises(ValueError, match="2 Jacobians but 1 names"):
        mj.chain(jnp.ones((2, 2)), jnp.ones((2, 2)), names=("a",))


def test_row_column_jit_and_vmap():
    u, M, v = jnp.array([1.0, 2.0]), jnp.array([[1.0, 0.0, 2.0], [0.0, 1.0, 1.0]]), jnp.array([1.0, 1.0, 1.0])
    assert mj.chain(u, M, v) == 7.0  # row · matrix · column: a scalar
    assert mj.chain(M, v).shape == (2,) and mj.chain(M).shape == (2, 3)
    np.testing.assert_allclose(jax.jit(mj.chain)(u, M), [1.0, 2.0, 4.0])
    batched = jax.jit(jax.vmap(lambda d: mj.chain(u, M, jnp.diag(d))))(jnp.stack([v, 2 * v]))
    np.testing.assert_allclose(batched, [[1.0, 2.0, 4.0], [2.0, 4.0, 8.0]])
    assert mj.chain(u.astype(jnp.float32), M.astype(jnp.float32)).dtype == jnp.float32
