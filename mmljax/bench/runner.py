"""Run a case: compile every variant (timed), check it against the hand formula, time the
accepted ones interleaved, and relate the times to the hand formula and the machine's limits."""

from __future__ import annotations

import hashlib
import math
import re
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any

import jax
import numpy as np

from .case import Case, CaseResult, Point, PointResult, Settings, Variant, VariantResult
from .machine import Limits
from .timing import Timing, TimingConfig, time_interleaved

__all__ = ["RTOL", "relative_error", "program_fingerprint", "run_point", "run_case"]

# Relative (Frobenius) error a variant may have against the hand formula. Wrong formulas are off
# by O(1); summation order alone stays far below these.
RTOL = {"float64": 1e-9, "float32": 2e-3}


def _leaves(out: Any) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(out)]


def relative_error(out: Any, ref: Any) -> tuple[float, str]:
    """`||out − ref|| / ||ref||` over all leaves (in float64), and a message when the structures
    or shapes differ (then the error is infinite)."""
    a, b = _leaves(out), _leaves(ref)
    if len(a) != len(b):
        return math.inf, f"output has {len(a)} array(s), the hand formula {len(b)}"
    num = den = 0.0
    for x, y in zip(a, b):
        if x.shape != y.shape:
            return math.inf, f"output shape {x.shape} differs from the hand formula's {y.shape}"
        x64, y64 = x.astype(np.float64), y.astype(np.float64)
        if not np.all(np.isfinite(x64)):
            return math.inf, "output contains NaN/Inf"
        num += float(np.sum((x64 - y64) ** 2))
        den += float(np.sum(y64**2))
    if den == 0.0:
        return (0.0 if num == 0.0 else math.inf), ""
    return math.sqrt(num / den), ""


def _dtype_problem(out: Any, dtype: str) -> str:
    for leaf in jax.tree_util.tree_leaves(out):
        dt = getattr(leaf, "dtype", None)
        if dt is not None and np.issubdtype(dt, np.floating) and np.dtype(dt).name != dtype:
            return f"output dtype {np.dtype(dt).name}, expected {dtype} (silent promotion)"
    return ""


def program_fingerprint(hlo_text: str) -> str:
    """A short hash of an optimised HLO module that ignores names, source locations and metadata,
    so that two variants compiling to the same XLA program get the same fingerprint (their time
    difference is then measurement noise)."""
    lines = hlo_text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(("%", "ENTRY"))), 0)
    text = "\n".join(lines[start:])
    # Entry parameters are named after the Python arguments: name them by position instead.
    entry = text[text.find("ENTRY") :]
    for name, idx in re.findall(r"%([\w.\-]+) = [^\n]*?\bparameter\((\d+)\)", entry):
        text = re.sub(rf"\b{re.escape(name)}\b", f"arg{idx}", text)
    text = re.sub(r",\s*metadata=\{[^}]*\}", "", text)
    text = re.sub(r",\s*stack_frame_id=\d+", "", text)
    text = re.sub(r"([%\w][\w\-]*)\.\d+\b", r"\1", text)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _memory(compiled) -> dict[str, int] | None:
    try:
        m = compiled.memory_analysis()
    except Exception:  # some backends do not implement it
        return None
    if m is None:
        return None
    return {
        "temp_bytes": int(m.temp_size_in_bytes),
        "output_bytes": int(m.output_size_in_bytes),
        "argument_bytes": int(m.argument_size_in_bytes),
    }


class _Prepared:
    def __init__(
        self, variant: Variant, thunk: Callable[[], Any] | None, compile_s, memory, status="", message="", program=None
    ):
        self.variant, self.thunk, self.compile_s, self.memory = variant, thunk, compile_s, memory
        self.program = program
        self.status, self.message = status, message
        self.warmup_s = None
        self.rel_err = None


def _prepare(v: Variant, point: Point, settings: Settings) -> _Prepared:
    args = point.args if v.args is None else v.args
    if v.skip:
        return _Prepared(v, None, None, None, "skipped", v.skip)
    if not v.jit:
        return _Prepared(v, lambda: v.fn(*args), None, None)
    t0 = time.perf_counter()
    compiled = jax.jit(v.fn).lower(*args).compile()
    compile_s = time.perf_counter() - t0
    mem = _memory(compiled)
    try:
        program = program_fingerprint(compiled.as_text())
    except Exception:  # as_text is best effort on some backends
        program = None
    if mem is not None and mem["temp_bytes"] + mem["output_bytes"] > settings.memory_limit_bytes:
        need = (mem["temp_bytes"] + mem["output_bytes"]) / 1e9
        return _Prepared(
            v,
            None,
            compile_s,
            mem,
            "skipped",
            f"would need {need:.2f} GB of temporaries and output (limit "
            f"{settings.memory_limit_bytes / 1e9:.2f} GB; --memory-limit raises it)",
            program,
        )
    return _Prepared(v, lambda: compiled(*args), compile_s, mem, program=program)


def _warm_and_check(p: _Prepared, ref: Any, rtol: float, dtype: str) -> Any:
    t0 = time.perf_counter()
    out = jax.block_until_ready(p.thunk())
    p.warmup_s = time.perf_counter() - t0
    cmp = p.variant.to_numpy(out) if p.variant.to_numpy else out
    if ref is None or not p.variant.check:
        return cmp
    problem = _dtype_problem(cmp, dtype)
    err, why = relative_error(cmp, ref)
    p.rel_err = err
    if problem:
        p.status, p.message = "rejected", problem
    elif err > rtol:
        p.status = "rejected"
        p.message = why or f"relative error {err:.2e} against the hand formula exceeds {rtol:.0e}: not timed"
    return cmp


def _pct(v: Variant, point: Point, median_s: float, limits: Limits | None, dtype: str, platform: str):
    if limits is None or point.bound is None or not median_s:
        return None, None
    backend = "jax" if v.jit else "host"
    if point.bound == "compute":
        flops = v.flops if v.flops is not None else point.flops
        peak = limits.peak_gflops(dtype, backend, platform)
        if not flops or not peak:
            return None, None
        return flops / median_s / 1e9 / peak, "flops"
    nbytes = v.bytes if v.bytes is not None else point.bytes
    bw = limits.bandwidth(backend, platform)
    if not nbytes or not bw:
        return None, None
    return nbytes / median_s / 1e9 / bw, "bandwidth"


def _error_message(e: BaseException) -> str:
    msg = f"{type(e).__name__}: {e}".strip()
    first = msg.splitlines()[0] if msg else type(e).__name__
    return first[:300]


def run_point(point: Point, settings: Settings, config: TimingConfig, limits: Limits | None = None) -> PointResult:
    """Compile, check and time every variant of `point` (see the module docstring)."""
    platform = jax.devices()[0].platform
    rtol = point.rtol if point.rtol is not None else RTOL[settings.dtype]
    ordered = [point.hand] + [v for v in point.variants if v.role != "hand"]
    prepared: list[_Prepared] = []
    ref = None
    for v in ordered:
        try:
            p = _prepare(v, point, settings)
            if not p.status:
                out = _warm_and_check(p, ref, rtol, settings.dtype)
                if v.role == "hand":
                    ref = out
                    bad = _dtype_problem(out, settings.dtype)
                    if bad:
                        p.status, p.message = "error", f"hand formula: {bad}"
        except Exception as e:  # a variant that fails is reported, the others still run
            p = _Prepared(v, None, None, None, "error", _error_message(e))
            if _debug():
                traceback.print_exc()
        prepared.append(p)
        if v.role == "hand" and p.status:
            break  # without a trusted reference nothing else can be checked
    ok = [p for p in prepared if not p.status]
    # A variant too slow to repeat within the budget is measured by one call after the warm-up
    # (the warm-up may include one-time costs, e.g. a peer library's lazy initialisation).
    single: dict[str, float] = {}
    for p in ok:
        if p.warmup_s * (config.samples + 1) > settings.max_variant_s:
            t0 = time.perf_counter()
            jax.block_until_ready(p.thunk())
            once = time.perf_counter() - t0
            if once * (config.samples + 1) > settings.max_variant_s:
                single[p.variant.name] = once
    timed = {p.variant.name: p.thunk for p in ok if p.variant.name not in single}
    timings = time_interleaved(timed, config, {p.variant.name: p.warmup_s for p in ok})
    for p in ok:
        if p.variant.name in single:
            once = single[p.variant.name]
            timings[p.variant.name] = Timing(once, once, once, math.nan, (once,), 1, p.warmup_s, (1,))
            p.message = (
                f"one call takes {once:.1f} s: measured once after the warm-up, not sampled "
                f"(--max-variant-s {settings.max_variant_s:g})"
            )
    hand_t = timings.get(point.hand.name)
    results = []
    for p in prepared:
        v, t = p.variant, timings.get(p.variant.name)
        kw: dict[str, Any] = dict(
            name=v.name,
            role=v.role,
            status=p.status or "ok",
            message=p.message or v.note,
            rel_err=p.rel_err,
            compile_s=p.compile_s,
            warmup_s=p.warmup_s,
            memory=p.memory,
            program=p.program,
        )
        if t is not None:
            pct, kind = _pct(v, point, t.median_s, limits, settings.dtype, platform)
            kw.update(
                median_s=t.median_s,
                min_s=t.min_s,
                spread=None if math.isnan(t.spread) else t.spread,
                samples_s=t.samples_s,
                number=t.number,
                ratio_to_hand=(t.median_s / hand_t.median_s) if hand_t else None,
                pct_peak=pct,
                peak_kind=kind,
            )
        results.append(VariantResult(**kw))
    for v in ordered[len(prepared) :]:
        results.append(
            VariantResult(name=v.name, role=v.role, status="error", message="not run: the hand formula failed")
        )
    return PointResult(
        sizes=dict(point.sizes),
        label=point.label,
        bound=point.bound,
        flops=point.flops,
        bytes=point.bytes,
        note=point.note,
        variants=results,
    )


def _debug() -> bool:
    import os

    return bool(os.environ.get("MMLJAX_DEBUG"))


def run_case(
    case: Case,
    settings: Settings,
    config: TimingConfig = TimingConfig(),
    limits: Limits | None = None,
    progress: Callable[[str], None] | None = None,
) -> CaseResult:
    """Run every point of `case`; a case whose inputs cannot be built is returned with status
    "error" and the reason (the other cases still run)."""
    result = CaseResult(case.name, case.number, case.title, case.description, case.x_key, case.series_keys)
    load_start = _load1()
    t0 = time.perf_counter()
    try:
        points: Iterable[Point] = case.points(settings)
        for point in points:
            if settings.only and any(point.sizes.get(k) != v for k, v in settings.only):
                continue
            if progress:
                progress(f"{case.name} {point.label or point.sizes}")
            result.points.append(run_point(point, settings, config, limits))
    except Exception as e:  # building a case's inputs failed: report it, run the other cases
        if _debug():
            raise
        result.status, result.message = "error", _error_message(e)
    result.seconds = time.perf_counter() - t0
    result.load = (load_start, _load1())
    return result


def _load1() -> float | None:
    from .machine import load_avg

    la = load_avg()
    return la[0] if la else None
