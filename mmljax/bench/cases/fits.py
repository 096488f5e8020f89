"""Case 6: closed-form least-squares fits `min ||y − Φβ||²`.

mmljax's `least_squares` (every method) vs `numpy.linalg.lstsq` vs `jnp.linalg.lstsq` vs
scikit-learn's `LinearRegression` (when installed), all checked against the lecture's normal
equations on a well-conditioned Gaussian design, with the coefficient difference beside the time.
mmljax's solvers also return statistics (standard errors, rank, condition number) and stay
accurate on ill-conditioned designs (NIST StRD), which these timings do not reward.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import jax.numpy as jnp
import numpy as np

from ..case import Case, Point, Settings, Variant
from ._common import host, normal, sklearn_or_reason

HAND = "normal equations solve(ΦᵀΦ, Φᵀy)"
MJ_DEFAULT = "mmljax least_squares (default)"
NUMPY_LSTSQ = "numpy.linalg.lstsq"
JNP_LSTSQ = "jnp.linalg.lstsq"
SKLEARN = "sklearn LinearRegression"


def _solvers():
    from ...solvers import least_squares

    return least_squares


def _quiet(fn):
    def call(*args):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args)

    return call


def _points(settings: Settings) -> Iterator[Point]:
    least_squares = _solvers()
    from ...solvers import METHODS

    pairs = settings.pick(
        [(N, D) for N in (10**4, 10**5, 10**6) for D in (10, 100)], [(10**3, 10), (10**4, 10)], [(50, 3), (200, 3)]
    )
    # "auto" is the default (QR for a full-rank design); the quick sweep adds only the fastest.
    methods = settings.pick([m for m in METHODS if m != "auto"], ["cholesky"], ["svd", "cholesky"])
    sk, sk_why = sklearn_or_reason()
    for N, D in pairs:
        Phi = normal(settings.seed, (N, D), settings.dtype, stream=30)
        beta = normal(settings.seed, (D,), settings.dtype, stream=31)
        y = Phi @ beta + 0.1 * normal(settings.seed, (N,), settings.dtype, stream=32)
        hPhi, hy = host(Phi, y)

        def mj(method):
            return _quiet(lambda P, y: least_squares(P, y, method=method).coefficients)

        variants = [
            Variant(HAND, lambda P, y: np.linalg.solve(P.T @ P, P.T @ y), "hand", jit=False),
            Variant(MJ_DEFAULT, mj("auto"), "mmljax", jit=False),
            *[Variant(f"mmljax least_squares(method='{m}')", mj(m), "mmljax", jit=False) for m in methods],
            Variant(NUMPY_LSTSQ, lambda P, y: np.linalg.lstsq(P, y, rcond=None)[0], "peer", jit=False),
            Variant(JNP_LSTSQ, lambda P, y: jnp.linalg.lstsq(P, y)[0], "peer", args=(Phi, y)),
        ]
        if sk is not None:
            variants.append(
                Variant(
                    SKLEARN,
                    _quiet(lambda P, y: sk.LinearRegression(fit_intercept=False).fit(P, y).coef_),
                    "peer",
                    jit=False,
                )
            )
        else:
            variants.append(Variant(SKLEARN, lambda P, y: None, "peer", jit=False, skip=sk_why))
        yield Point(
            sizes={"N": N, "D": D},
            args=(hPhi, hy),
            variants=variants,
            label=f"N={N:.0e} D={D}",
            note="mmljax's solvers also compute statistics and refine in extended precision",
        )


LS_FIT = Case(
    name="ls-fit",
    number=6,
    title="Closed-form least-squares fits",
    description=(
        "mmljax.solvers.least_squares (each method) vs numpy.linalg.lstsq vs jnp.linalg.lstsq vs "
        "scikit-learn LinearRegression, checked against the normal equations; the relative error in the "
        "'check' column is the coefficient difference."
    ),
    points=_points,
    x_key="N",
    series_keys=("D",),
)
