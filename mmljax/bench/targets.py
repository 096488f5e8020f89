"""The performance targets, judged on the ratios measured in one run.

Each target is a function of a `BenchRun` returning a `TargetResult`: the worst measured value
over the points it covers, the threshold, met / missed / not measured, and the per-point values.
A target whose cases were not run (or whose peer is not installed) is "not measured", never
silently "met".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

from .case import CaseResult, PointResult
from .cases import batched_fits as BF
from .cases import fits as F
from .cases import least_squares as LS
from .cases import matrix as M
from .cases import mlp as MLP

__all__ = ["TargetResult", "TARGETS", "evaluate"]


class TargetResult(NamedTuple):
    """`value` is the worst measured figure (a ratio, or a fraction of peak); `met` is None when
    it could not be measured in this run (`detail` says why)."""

    name: str
    statement: str
    value: float | None
    threshold: float
    comparison: str  # "<=" or ">="
    met: bool | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        d = self._asdict()
        if isinstance(d["value"], float) and not math.isfinite(d["value"]):
            d["value"] = None
        return d

    @property
    def verdict(self) -> str:
        return {True: "met", False: "missed", None: "not measured"}[self.met]


def _median(p: PointResult, name: str) -> float | None:
    v = p.get(name)
    return v.median_s if v is not None and v.status == "ok" else None


def _best(p: PointResult, name: str) -> float | None:
    """A peer's or a floor's fastest sample: judging mmljax's median against it is conservative
    (numpy's BLAS threads are erratic on a shared machine, and a floor is a best case)."""
    v = p.get(name)
    return v.min_s if v is not None and v.status == "ok" else None


class Ratio(float):
    """A measured ratio; `same_program` when both sides compiled to the identical XLA program,
    so that the ratio is 1 by construction and the measured value only shows timing noise."""

    same_program: bool = False
    measured: float = math.nan


def _ratio(p: PointResult, num: str, den: str | list[str], den_best: bool = False) -> float | None:
    a = _median(p, num)
    dens = [den] if isinstance(den, str) else den
    ds = [(d, n) for d, n in (((_best if den_best else _median)(p, n), n) for n in dens) if d]
    if not a or not ds:
        return None
    best, best_name = min(ds)
    va, vb = p.get(num), p.get(best_name)
    if va.program and va.program == vb.program:
        r = Ratio(1.0)
        r.same_program, r.measured = True, a / best
        return r
    return a / best


def _judge(
    name, statement, items: list[tuple[str, float | None]], threshold, comparison="<=", why_none=""
) -> TargetResult:
    got = [(lab, v) for lab, v in items if v is not None]
    if not got:
        return TargetResult(
            name,
            statement,
            None,
            threshold,
            comparison,
            None,
            why_none or "not measured: the cases it needs were not run",
        )
    worst = max(got, key=lambda t: t[1]) if comparison == "<=" else min(got, key=lambda t: t[1])
    met = worst[1] <= threshold if comparison == "<=" else worst[1] >= threshold

    def fmt(v):
        if getattr(v, "same_program", False):
            return f"1.00× (same XLA program; measured {v.measured:.2f}× is timing noise)"
        return f"{v:.2f}×" if comparison == "<=" else f"{v:.0%}"

    detail = "; ".join(f"{lab}: {fmt(v)}" for lab, v in got)
    missing = [lab for lab, v in items if v is None]
    if missing:
        detail += f" (not measured at {', '.join(missing)})"
    return TargetResult(name, statement, worst[1], threshold, comparison, met, f"worst at {worst[0]} — {detail}")


def _points(run, case_name: str) -> list[tuple[str, CaseResult, PointResult]]:
    c = run.case(case_name)
    return [] if c is None else [(f"{case_name} {p.label}", c, p) for p in c.points]


def gradient_overhead(run) -> TargetResult:
    items = []
    for case, hand, mj in (
        (LS.LS_GRADIENT.name, LS.HAND_GRAD, LS.MJ_GRAD),
        (MLP.MLP_GRADIENT.name, MLP.HAND_GRAD, MLP.MJ_GRAD),
        (M.MATRIX_GRAD.name, M.HAND_GRAD, M.MJ_GRAD),
    ):
        items += [(lab, _ratio(p, mj, hand)) for lab, _, p in _points(run, case)]
    return _judge(
        "gradient ≤ 1.10× hand",
        "mmljax.gradient under jit within 1.10× of the jitted hand formula on every gradient case",
        items,
        1.10,
    )


def ls_gradient_streaming(run) -> TargetResult:
    items, speedups = [], []
    bw = run.limits.bandwidth("jax", run.machine.get("platform", "cpu")) if run.limits else None
    for lab, _, p in _points(run, LS.LS_GRADIENT.name):
        if p.sizes["N"] < 10**6:
            continue
        k, read = _median(p, LS.KERNEL_GRAD), _best(p, LS.READ_ONCE)
        stream = (p.bytes / 2) / (bw * 1e9) if bw else None  # Φ's bytes at the measured bandwidth
        floors = [t for t in (read, stream) if t]
        items.append((lab, k / min(floors) if k and floors else None))
        if k and read:
            speedups.append(f"{lab}: {k / read:.2f}× the time of Φθ (one read of Φ as a matvec)")
        if k and stream:
            speedups.append(f"{lab}: {k / stream:.2f}× Φ's bytes at the measured streaming bandwidth")
        npy, hand = _best(p, LS.NUMPY_GRAD), _median(p, LS.HAND_GRAD)
        if k and npy:
            speedups.append(f"{lab}: {npy / k:.1f}× faster than numpy's two passes (its best sample)")
        if k and hand:
            speedups.append(f"{lab}: {hand / k:.1f}× faster than the jitted hand formula")
    t = _judge(
        "LS gradient ≤ 1.5× one read of Φ",
        "row-blocked one-pass LS gradient (median) within 1.5× of one streaming read of Φ (N ≥ 10⁶; the "
        "faster of Φθ's best sample and Φ's bytes at the measured bandwidth); about 2× faster than numpy's "
        "two-pass formula",
        items,
        1.5,
        why_none="not measured: no point with N ≥ 10⁶ in this run",
    )
    return t._replace(detail=t.detail + ("; " + "; ".join(speedups) if speedups else ""))


def hessian_overhead(run) -> TargetResult:
    items = [(lab, _ratio(p, LS.MJ_HESS, LS.HAND_HESS)) for lab, _, p in _points(run, LS.LS_HESSIAN.name)]
    return _judge(
        "mmljax.hessian ≤ 2.0× hand",
        "mmljax.hessian of a scalar loss ≤ 2.0× the jitted hand Hessian at every size of case 2",
        items,
        2.0,
    )


def _gram_vs_numpy(variant: str, label: str) -> Callable:
    def target(run) -> TargetResult:
        items = [
            (lab, _ratio(p, variant, LS.NUMPY_GRAM, den_best=True))
            for lab, _, p in _points(run, LS.LS_HESSIAN.name)
            if p.sizes["D"] >= 100
        ]
        return _judge(
            f"{label} ≤ 1.2× numpy syrk",
            f"{label} (median) within 1.2× of numpy's symmetric rank-k update (its best sample; case 2, D ≥ 100)",
            items,
            1.2,
        )

    return target


def jacobian_auto(run) -> TargetResult:
    items = [
        (lab, _ratio(p, MLP.MJ_JAC, [MLP.JACFWD, MLP.JACREV])) for lab, _, p in _points(run, MLP.MLP_JACOBIAN.name)
    ]
    items += [(lab, _ratio(p, M.JM_AUTO, [M.JM_FWD, M.JM_REV])) for lab, _, p in _points(run, M.VEC_KRON.name)]
    return _judge(
        "jacobian(auto) ≤ 1.10× best mode",
        "mmljax.jacobian(mode='auto') within 1.10× of the best of jacfwd/jacrev at every shape (cases 4, 5)",
        items,
        1.10,
    )


def per_example(run) -> TargetResult:
    items = [(lab, _ratio(p, MLP.PER_EXAMPLE, MLP.VMAP_GRAD)) for lab, _, p in _points(run, MLP.MLP_JACOBIAN.name)]
    return _judge(
        "per_example_jacobian ≤ 1.10× vmap(grad)",
        "mmljax.per_example_jacobian within 1.10× of vmap(grad) (case 4)",
        items,
        1.10,
    )


def compute_bound(run) -> TargetResult:
    items = []
    for lab, _, p in _points(run, MLP.MLP_GRADIENT.name):
        if p.bound == "compute":
            for name in (MLP.HAND_GRAD, MLP.JAX_GRAD):
                v = p.get(name)
                items.append((f"{lab} {name}", v.pct_peak if v is not None and v.status == "ok" else None))
    for lab, _, p in _points(run, LS.LS_HESSIAN.name):
        if p.sizes["D"] >= 100 and p.sizes["N"] >= 10**4:
            for name in (LS.HAND_HESS, LS.GRAM):
                v = p.get(name)
                items.append((f"{lab} {name}", v.pct_peak if v is not None and v.status == "ok" else None))
    return _judge(
        "compute-bound ≥ 60% of peak",
        "large MLP gradient and ΦᵀΦ at D ≥ 100 (N ≥ 10⁴) reach ≥ 60% of the measured matmul peak (executed flops)",
        items,
        0.60,
        comparison=">=",
    )


def fit_vs_sklearn(run) -> TargetResult:
    c = run.case(F.LS_FIT.name)
    if c is None:
        return TargetResult(
            "least_squares ≤ 1.0× sklearn", _FIT_STATEMENT, None, 1.0, "<=", None, "not measured: case ls-fit not run"
        )
    items, notes = [], []
    for p in c.points:
        if (p.sizes["N"], p.sizes["D"]) != (10**6, 100):
            continue
        sk = p.get(F.SKLEARN)
        if sk is None or sk.status != "ok":
            why = sk.message if sk is not None else "not in this run"
            return TargetResult(
                "least_squares ≤ 1.0× sklearn",
                _FIT_STATEMENT,
                None,
                1.0,
                "<=",
                None,
                f"not measured: scikit-learn {why}",
            )
        items.append((f"ls-fit {p.label}", _ratio(p, F.MJ_DEFAULT, F.SKLEARN, den_best=True)))
        mine = p.get(F.MJ_DEFAULT)
        if mine is not None and mine.rel_err is not None and sk.rel_err is not None:
            notes.append(
                f"coefficient rel. difference vs the normal equations: mmljax {mine.rel_err:.1e}, "
                f"sklearn {sk.rel_err:.1e}"
            )
    t = _judge(
        "least_squares ≤ 1.0× sklearn",
        _FIT_STATEMENT,
        items,
        1.0,
        why_none="not measured: no N = 10⁶, D = 100 point in this run (run without --quick)",
    )
    return t._replace(detail=t.detail + ("; " + "; ".join(notes) if notes else ""))


_FIT_STATEMENT = (
    "mmljax's default least_squares (median) at least as fast as scikit-learn's LinearRegression "
    "(its best sample) at N = 10⁶, D = 100, coefficients agreeing to 1e-10"
)


def bootstrap_vs_statsmodels(run) -> TargetResult:
    items = [(lab, _ratio(p, BF.MJ_BOOT, BF.SM_BOOT)) for lab, _, p in _points(run, BF.LS_BOOTSTRAP.name)]
    return _judge(
        "bootstrap ≥ 10× faster than a statsmodels loop",
        "jax.vmap(linear_regression) over bootstrap resamples at most 0.1× the time of a Python loop of "
        "statsmodels OLS(...).fit()",
        items,
        0.1,
        why_none="not measured: the ls-bootstrap case was not run or statsmodels is not installed",
    )


def bootstrap_vs_lstsq(run) -> TargetResult:
    items = [(lab, _ratio(p, BF.MJ_BOOT, BF.LSTSQ_BOOT)) for lab, _, p in _points(run, BF.LS_BOOTSTRAP.name)]
    return _judge(
        "bootstrap ≤ 1.5× vmap(lstsq)",
        "jax.vmap(linear_regression) within 1.5× of "
        "jax.vmap(jnp.linalg.lstsq) (which returns no statistics and loses digits when ill-conditioned)",
        items,
        1.5,
    )


def eager_vs_statsmodels(run) -> TargetResult:
    items = [(lab, _ratio(p, BF.MJ_EAGER, BF.SM_EAGER)) for lab, _, p in _points(run, BF.LS_EAGER.name)]
    return _judge(
        "eager small fit ≤ 1.0× statsmodels",
        "one eager linear_regression on Longley no slower than statsmodels' OLS(...).fit()",
        items,
        1.0,
        why_none="not measured: the ls-eager case was not run or statsmodels is not installed",
    )


TARGETS: tuple[Callable[[Any], TargetResult], ...] = (
    gradient_overhead,
    ls_gradient_streaming,
    hessian_overhead,
    _gram_vs_numpy(LS.GRAM, "gram(Φ)"),
    _gram_vs_numpy(LS.GN_PATH, "gauss_newton_matrix"),
    jacobian_auto,
    per_example,
    compute_bound,
    fit_vs_sklearn,
    bootstrap_vs_statsmodels,
    bootstrap_vs_lstsq,
    eager_vs_statsmodels,
)


def evaluate(run) -> list[TargetResult]:
    """Judge every target on `run` (a `BenchRun`)."""
    return [t(run) for t in TARGETS]
