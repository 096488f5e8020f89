"""`linalg.ordering.after` and the batched fits it keeps from deadlocking XLA:CPU.

Two batched LAPACK calls that start together on a two-thread pool can each wait for pieces the
other's thread would have to run: the program then never finishes. The end-to-end test runs such
programs (a few hundred vmapped fits) in a subprocess with a time limit, so a regression fails
instead of hanging the suite; on a machine with many cores it passes either way.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmljax.linalg.ordering import after


def test_after_returns_every_value_unchanged():
    x = {
        "a": jnp.asarray([1.5, -0.0, 0.0, np.inf, -np.inf, np.nan, 2.3e-308, -1e308]),
        "b": jnp.asarray([[3.0]], jnp.float32),
    }
    deps = (jnp.asarray([np.nan, 1.0]), jnp.asarray([np.inf]), jnp.asarray([-7.0]), jnp.asarray(3), jnp.zeros((0,)))
    for fn in (after, jax.jit(after)):
        out = fn(x, *deps)
        assert out["b"].dtype == jnp.float32
        for key in x:
            got, want = np.asarray(out[key]), np.asarray(x[key])
            assert got.tobytes() == want.tobytes(), key  # bit for bit: -0.0 stays -0.0, NaN stays NaN


def test_after_without_deps_is_the_identity():
    x = jnp.arange(3.0)
    assert after(x) is x
    assert after(x, jnp.zeros((0, 2))) is x


def test_after_rejects_integer_values():
    with pytest.raises(TypeError, match="floating-point"):
        after(jnp.arange(3), jnp.ones(2))


def test_the_dependency_survives_compilation():
    # XLA must not simplify 0·d away: the compiled program still reads d to produce its output
    text = jax.jit(lambda x, dep: after(x, dep)).lower(jnp.ones(3), jnp.ones(2)).compile().as_text()
    entry = text[text.index("ENTRY") :]
    users = [line for line in entry.splitlines()[1:] if "%dep" in line and "parameter(" not in line]
    assert users, entry


_BATCHED_FITS = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    from mmljax.solvers import least_squares, linear_regression, nonlinear_least_squares

    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.normal(size=(120, 5)))
    y = 0.5 + X @ jnp.arange(1.0, 6.0) + 0.1 * jnp.asarray(rng.normal(size=120))
    rows = jnp.asarray(rng.integers(0, 120, (256, 120)))
    fits = jax.jit(jax.vmap(lambda r: linear_regression(X[r], y[r])))(rows)
    svd = jax.jit(jax.vmap(lambda r: least_squares(X[r], y[r], method="svd").standard_errors))(rows)
    eager = jax.vmap(lambda r: linear_regression(X[r], y[r]).standard_errors)(rows)  # the library's own program
    t = jnp.linspace(0.0, 3.0, 40)
    ys = 2.0 * jnp.exp(-0.7 * t)[None] + 0.01 * jnp.asarray(rng.normal(size=(1000, 40)))
    nls = jax.jit(jax.vmap(lambda yy: nonlinear_least_squares(
        lambda th, a: th[0] * jnp.exp(-th[1] * a[0]) - a[1], jnp.array([1.0, 1.0]), args=(t, yy)).params))(ys)
    jax.block_until_ready((fits, svd, eager, nls))
    assert bool(jnp.all(jnp.isfinite(fits.standard_errors))) and bool(jnp.all(jnp.isfinite(svd)))
    assert bool(jnp.all(jnp.abs(eager - fits.standard_errors) <= 1e-12 * jnp.abs(fits.standard_errors)))
    assert float(jnp.max(jnp.abs(nls - jnp.array([2.0, 0.7])))) < 0.05
    print("done")
    """
)


@pytest.mark.slow
def test_batched_fits_under_jit_finish():
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _BATCHED_FITS],
            env=dict(os.environ, JAX_PLATFORMS="cpu"),
            capture_output=True,
            text=True,
            timeout=240,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("256 vmapped fits (jit and eager vmap) did not finish in 240 s (batched LAPACK calls deadlocked)")
    assert proc.returncode == 0 and proc.stdout.strip().endswith("done"), proc.stderr[-3000:]
