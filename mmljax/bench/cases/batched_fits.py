"""Small fits, many times: bootstrap refits in one `jax.vmap`, and one eager fit of a small design.

- `ls-bootstrap`: `B` bootstrap resamples of a `120 x 5` regression (with intercept) refitted by
  `jax.vmap(linear_regression)` in one compiled program, against `jax.vmap(jnp.linalg.lstsq)` (one
  program too, but it loses digits on ill-conditioned designs) and a Python loop of statsmodels'
  `OLS(...).fit()` (when installed); all checked against a loop of `numpy.linalg.lstsq`. Times are
  per call of `B` fits: divide by `B` for the time per fit (the console notes do).
- `ls-eager`: one eager call on NIST's Longley data (16 x 6): `linear_regression(X, y)` (a cached
  compiled program plus validation and the statistics) against statsmodels' `OLS(...).fit()` and
  `numpy.linalg.lstsq`, checked against the certified coefficients.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from ...data import load_strd
from ...solvers import linear_regression
from ..case import Case, Point, Settings, Variant
from ._common import host, normal

HAND_BOOT = "numpy.linalg.lstsq, Python loop (reference)"
MJ_BOOT = "mmljax vmap(linear_regression)"
LSTSQ_BOOT = "vmap(jnp.linalg.lstsq)"
SM_BOOT = "statsmodels OLS, Python loop"

HAND_EAGER = "NIST certified coefficients (reference)"
MJ_EAGER = "mmljax linear_regression, eager"
SM_EAGER = "statsmodels OLS(...).fit()"
NP_EAGER = "numpy.linalg.lstsq"

N_ROWS, N_PRED = 120, 5


def _statsmodels_or_reason():
    if importlib.util.find_spec("statsmodels") is None:
        return None, "statsmodels is not installed"
    import statsmodels.api as sm

    return sm, ""


def _with_intercept(X):
    return np.column_stack([np.ones(X.shape[0]), X])


def _bootstrap_points(settings: Settings) -> Iterator[Point]:
    if settings.dtype != "float64":
        return  # the coefficients are compared at 1e-9: a float64 benchmark
    sm, sm_why = _statsmodels_or_reason()
    for B in settings.pick([200, 1000], [200], [4]):
        X = normal(settings.seed, (N_ROWS, N_PRED), settings.dtype, stream=40)
        beta = jnp.arange(1.0, N_PRED + 1, dtype=X.dtype)
        y = 0.5 + X @ beta + 0.1 * normal(settings.seed, (N_ROWS,), settings.dtype, stream=41)
        rows = jax.random.randint(jax.random.fold_in(jax.random.key(settings.seed), 42), (B, N_ROWS), 0, N_ROWS)
        hX, hy, hrows = host(X, y, rows)

        def numpy_loop(X, y, rows):
            A = _with_intercept(X)
            return np.stack([np.linalg.lstsq(A[r], y[r], rcond=None)[0] for r in rows])

        def mmljax_vmap(X, y, rows):
            return jax.vmap(lambda r: linear_regression(X[r], y[r]).coefficients)(rows)

        def lstsq_vmap(X, y, rows):
            A = jnp.column_stack([jnp.ones(X.shape[0], X.dtype), X])
            return jax.vmap(lambda r: jnp.linalg.lstsq(A[r], y[r])[0])(rows)

        variants = [
            Variant(HAND_BOOT, numpy_loop, "hand", jit=False, args=(hX, hy, hrows)),
            Variant(MJ_BOOT, mmljax_vmap, "mmljax"),
            Variant(LSTSQ_BOOT, lstsq_vmap, "peer"),
        ]
        if sm is not None:

            def sm_loop(X, y, rows):
                A = _with_intercept(X)
                return np.stack([sm.OLS(y[r], A[r]).fit().params for r in rows])

            variants.append(Variant(SM_BOOT, sm_loop, "peer", jit=False, args=(hX, hy, hrows)))
        else:
            variants.append(Variant(SM_BOOT, lambda *a: None, "peer", jit=False, skip=sm_why))
        yield Point(
            sizes={"B": B, "n": N_ROWS, "d": N_PRED},
            args=(X, y, rows),
            variants=variants,
            label=f"B={B} resamples of {N_ROWS}x{N_PRED}",
            rtol=1e-9,
            note=f"times are per call of {B} fits; mmljax also returns standard errors, rank and status per fit",
        )


def _eager_points(settings: Settings) -> Iterator[Point]:
    if settings.dtype != "float64":
        return  # NIST data, certified to 15 digits: a float64 benchmark
    sm, sm_why = _statsmodels_or_reason()
    ds = load_strd("Longley")
    X, y = np.asarray(ds.X, dtype=np.float64), np.asarray(ds.y, dtype=np.float64)
    cert = np.asarray(ds.certified_coefficients)
    A = _with_intercept(X)
    variants = [
        Variant(HAND_EAGER, lambda X, y: cert, "hand", jit=False),
        Variant(MJ_EAGER, lambda X, y: linear_regression(X, y).coefficients, "mmljax", jit=False),
        Variant(NP_EAGER, lambda X, y: np.linalg.lstsq(A, y, rcond=None)[0], "peer", jit=False),
    ]
    if sm is not None:
        variants.append(Variant(SM_EAGER, lambda X, y: sm.OLS(y, A).fit().params, "peer", jit=False))
    else:
        variants.append(Variant(SM_EAGER, lambda *a: None, "peer", jit=False, skip=sm_why))
    # numpy's lstsq on Longley's raw design (condition number ~5e9) keeps about 7 digits
    yield Point(
        sizes={"n": X.shape[0], "d": X.shape[1]},
        args=(X, y),
        variants=variants,
        label=f"Longley {X.shape[0]}x{X.shape[1]}",
        rtol=1e-6,
        note="one eager call each; mmljax's includes validation and every statistic",
    )


LS_BOOTSTRAP = Case(
    name="ls-bootstrap",
    number=8,
    title="Bootstrap refits in one jax.vmap",
    description=(
        "B bootstrap refits of a 120 x 5 regression: jax.vmap(mmljax linear_regression) vs "
        "jax.vmap(jnp.linalg.lstsq) vs a Python loop of statsmodels OLS, checked against numpy's lstsq."
    ),
    points=_bootstrap_points,
    x_key="B",
    series_keys=(),
)

LS_EAGER = Case(
    name="ls-eager",
    number=9,
    title="One eager fit of a small design",
    description=(
        "An eager linear_regression on Longley (16 x 6) vs statsmodels OLS(...).fit() vs numpy.linalg.lstsq, "
        "checked against the certified coefficients."
    ),
    points=_eager_points,
    x_key="n",
    series_keys=(),
)
