"""`cond_where`: per-element results of a branch, with the branch skipped by a batch that does not need it."""

import jax
import jax.numpy as jnp
import numpy as np

from mmljax.linalg.branching import cond_where

RUNS = []


def _expensive(x):
    jax.debug.callback(lambda: RUNS.append(1))
    return jnp.linalg.svd(x, compute_uv=False), jnp.sum(x)


def _cheap(x):
    return jnp.zeros(x.shape[-1], x.dtype), jnp.zeros((), x.dtype)


def _branch(p, x):
    return cond_where(p, _expensive, _cheap, x)


X = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3, 3)))


def _want(pred):
    return [_expensive(x) if p else _cheap(x) for p, x in zip(pred, X)]


def _check(got, pred):
    for j, (s, t) in enumerate(_want(pred)):
        np.testing.assert_allclose(got[0][j], s, rtol=1e-14)
        np.testing.assert_allclose(got[1][j], t, rtol=1e-14)


def test_unbatched_is_a_plain_cond():
    for p in (True, False):
        s, t = _branch(p, X[1])
        want = _want([p] * 4)[1]
        np.testing.assert_allclose(s, want[0], rtol=1e-14)
        np.testing.assert_allclose(t, want[1], rtol=1e-14)


def test_batched_results_are_per_element_and_the_branch_runs_only_when_needed():
    run = jax.jit(jax.vmap(_branch))
    for pred in ([False, True, False, True], [True] * 4):
        RUNS.clear()
        _check(jax.block_until_ready(run(jnp.asarray(pred), X)), pred)
        jax.effects_barrier()
        assert RUNS, "the branch some elements need was not run"
    RUNS.clear()
    _check(jax.block_until_ready(run(jnp.zeros(4, bool), X)), [False] * 4)
    jax.effects_barrier()
    assert not RUNS, "a batch with no element that needs the branch ran it"


def test_unbatched_predicate_with_batched_operands_and_nested_vmap():
    for p in (True, False):
        _check(jax.vmap(_branch, in_axes=(None, 0))(p, X), [p] * 4)
    pred = jnp.asarray([[True, False, False, True], [False, False, False, False]])
    got = jax.vmap(jax.vmap(_branch), in_axes=(0, None))(pred, X)
    for row in range(2):
        _check((got[0][row], got[1][row]), pred[row].tolist())


def test_pytree_operands_with_batched_and_unbatched_leaves():
    def fn(pair, scale):
        return {"a": pair[0] * scale, "b": pair[1] + 1.0}

    def other(pair, scale):
        return {"a": pair[0], "b": pair[1]}

    a = X[:, 0]
    pred = jnp.asarray([True, False, False, True])
    got = jax.jit(jax.vmap(lambda p, pair: cond_where(p, fn, other, pair, 2.0), in_axes=(0, (0, None))))(
        pred, (a, jnp.float64(3.0))
    )
    for j, p in enumerate(pred.tolist()):
        np.testing.assert_array_equal(got["a"][j], a[j] * 2.0 if p else a[j])
        assert float(got["b"][j]) == (4.0 if p else 3.0)
