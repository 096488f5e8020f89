"""Case 7: nonlinear least squares on NIST StRD — both starts of the 20 shipped problems.

mmljax's `nonlinear_least_squares` (Levenberg–Marquardt, polished to working precision) vs scipy's
`least_squares` (trf, with the same JAX Jacobian) vs optimistix's Levenberg–Marquardt (when
installed), peers at tolerances 1e-15. The quantity is the vector of all runs' parameters, checked
against NIST's certified values (a run counts as solved at 4 correct digits, so every variant that
solves every run is timed); the time is the whole set of runs, warm; the warm-up (first call) time
includes compiling one program per problem. `mmljax fit --nonlinear --compare` prints the digits.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import numpy as np

from ..case import Case, Point, Settings, Variant

CERTIFIED = "NIST certified values"
MJ = "mmljax nonlinear_least_squares"
SCIPY = "scipy least_squares (trf)"
OPTX = "optimistix LevenbergMarquardt"
PEER_TOL = 1e-15


def _problems(settings: Settings):
    from ...strd_nls import STRD_NLS_NAMES, load_strd_nls

    names = settings.pick(STRD_NLS_NAMES, STRD_NLS_NAMES, ("Misra1a", "DanWood"))
    return [load_strd_nls(n) for n in names]


def _ours(problems):
    import jax
    import jax.numpy as jnp

    from ...solvers import nonlinear_least_squares

    data = [(jnp.asarray(p.x), jnp.asarray(p.y)) for p in problems]
    starts = [(jnp.asarray(p.start1), jnp.asarray(p.start2)) for p in problems]

    def run():
        out = []
        for p, d, ss in zip(problems, data, starts):
            for s in ss:
                out.append(nonlinear_least_squares(p.residuals, s, d).params)
        return np.concatenate([np.asarray(jax.block_until_ready(x)) for x in out])

    return run


def _scipy(problems):
    import jax
    import jax.numpy as jnp
    from scipy.optimize import least_squares

    fns = []
    for p in problems:
        d = (jnp.asarray(p.x), jnp.asarray(p.y))
        fns.append(
            (
                p,
                jax.jit(lambda b, d, p=p: p.residuals(b, d)),
                jax.jit(jax.jacfwd(lambda b, d, p=p: p.residuals(b, d))),
                d,
            )
        )

    def run():
        out = []
        for p, res, jac, d in fns:
            for s in p.starts:
                sol = least_squares(
                    lambda b, res=res, d=d: np.asarray(res(b, d)),
                    np.asarray(s, float),
                    jac=lambda b, jac=jac, d=d: np.asarray(jac(b, d)),
                    method="trf",
                    ftol=PEER_TOL,
                    xtol=PEER_TOL,
                    gtol=PEER_TOL,
                    max_nfev=10000,
                )
                out.append(sol.x)
        return np.concatenate(out)

    return run


def _optimistix(problems):
    import jax
    import jax.numpy as jnp
    import optimistix as optx

    solver = optx.LevenbergMarquardt(rtol=PEER_TOL, atol=PEER_TOL)
    fns = []
    for p in problems:
        d = (jnp.asarray(p.x), jnp.asarray(p.y))
        solve = jax.jit(
            lambda s, d, p=p: optx.least_squares(p.residuals, solver, s, args=d, max_steps=10000, throw=False).value
        )
        fns.append((p, solve, d))

    def run():
        out = []
        for p, solve, d in fns:
            for s in p.starts:
                out.append(np.asarray(solve(jnp.asarray(s), d)))
        return np.concatenate(out)

    return run


def _points(settings: Settings) -> Iterator[Point]:
    if settings.dtype != "float64":
        return  # certified to 11 digits: a float64 benchmark only
    problems = _problems(settings)
    certified = np.concatenate([np.concatenate([p.certified_params, p.certified_params]) for p in problems])
    variants = [
        Variant(CERTIFIED, lambda: certified, "hand", jit=False),
        Variant(MJ, _ours(problems), "mmljax", jit=False),
        Variant(SCIPY, _scipy(problems), "peer", jit=False),
    ]
    if importlib.util.find_spec("optimistix") is not None:
        variants.append(Variant(OPTX, _optimistix(problems), "peer", jit=False))
    else:
        variants.append(Variant(OPTX, lambda: None, "peer", jit=False, skip="optimistix is not installed"))
    runs = 2 * len(problems)
    yield Point(
        sizes={"runs": runs},
        args=(),
        variants=variants,
        rtol=1e-4,
        label=f"{runs} runs",
        note="time: all runs, warm; warm-up: first call, compiling one program per problem",
    )


NLS_STRD = Case(
    name="nls-strd",
    number=7,
    title="Nonlinear least squares on NIST StRD (both starts of the shipped problems)",
    description=(
        "mmljax.solvers.nonlinear_least_squares vs scipy least_squares (trf, same JAX Jacobian) vs "
        "optimistix LevenbergMarquardt, tolerances 1e-15, checked against the certified parameters "
        "(rtol 1e-4); the warm-up column is the first call, compiling one program per problem."
    ),
    points=_points,
    x_key="runs",
)
