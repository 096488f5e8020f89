"""The test session's runtime shape checks (tests/conftest.py): on by default, the function's own validation first."""

import beartype
import jax.numpy as jnp
import jaxtyping
import numpy as np
import pytest
from conftest import TYPECHECK, TYPECHECKED_MODULES
from jaxtyping import Array, ArrayLike, Float

import mmljax

pytestmark = pytest.mark.skipif(not TYPECHECK, reason="MMLJAX_TYPECHECK=0")


def _checked(fn):
    return jaxtyping.jaxtyped(typechecker=beartype.beartype)(fn)  # what the import hook applies


def test_public_modules_are_hooked():
    assert "mmljax.models" in TYPECHECKED_MODULES
    for fn in (mmljax.vec, mmljax.gram, mmljax.models.linear.apply, mmljax.losses.sse, mmljax.chain):
        assert hasattr(fn, "__wrapped__"), fn.__qualname__


def test_shape_names_must_agree_across_arguments():
    @_checked
    def f(a: Float[ArrayLike, " n"], b: Float[ArrayLike, " n"]) -> Float[Array, ""]:
        return jnp.sum(jnp.asarray(a)) + jnp.sum(jnp.asarray(b))  # accepts any sizes, contrary to its annotation

    assert float(f(np.ones(3), np.ones(3))) == 6.0
    with pytest.raises(jaxtyping.TypeCheckError, match="parameters of"):
        f(np.ones(3), np.ones(4))


def test_the_library_error_reaches_the_user_under_the_hook():
    with pytest.raises(ValueError, match="sse: predictions and targets must have the same shape"):
        mmljax.losses.sse(np.ones(3), np.ones(4))


def test_own_validation_speaks_first():
    @_checked
    def f(x: Float[ArrayLike, " n"]) -> Float[Array, " n"]:
        x = jnp.asarray(x)
        if x.ndim != 1:
            raise ValueError("f: x must be 1-D")
        return 2 * x

    assert np.allclose(f(np.ones(2)), 2.0)
    with pytest.raises(ValueError, match="f: x must be 1-D"):
        f(np.ones((2, 2)))


def test_an_annotation_narrower_than_the_function_is_reported():
    @_checked
    def f(x: Float[ArrayLike, " n"]) -> Float[Array, " n"]:
        return jnp.ravel(jnp.asarray(x, float))  # accepts any shape, contrary to its annotation

    with pytest.raises(jaxtyping.TypeCheckError, match="parameters of"):
        f(np.ones((2, 2)))


def test_a_wrong_return_is_reported():
    @_checked
    def f(x: Float[ArrayLike, " n"]) -> Float[Array, " n"]:
        return jnp.sum(jnp.asarray(x))

    with pytest.raises(jaxtyping.TypeCheckError, match="return value"):
        f(np.ones(3))
