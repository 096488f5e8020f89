"""The benchmark harness: timing rules, the check against the hand formula (a wrong variant is
rejected), compile time and memory reported separately, output schemas, targets, the CLI.
Tiny sizes only; nothing here asserts on speed."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mmljax as mj
from mmljax.bench import cases as bench_cases
from mmljax.bench import report, targets
from mmljax.bench.case import CaseResult, Point, PointResult, Settings, Variant, VariantResult
from mmljax.bench.machine import Limits, machine_info, measure_limits
from mmljax.bench.runner import program_fingerprint, relative_error, run_point
from mmljax.bench.suite import SCHEMA, BenchRun, run_benchmarks
from mmljax.bench.timing import TimingConfig, time_interleaved
from mmljax.cli import main

FAST = TimingConfig(min_sample_s=0.002, samples=5)


def loss(theta, Phi, y):
    r = y - Phi @ theta
    return 0.5 * jnp.sum(r * r)


@pytest.fixture
def ls_data(rng):
    return rng.standard_normal((40, 3)), rng.standard_normal(40), rng.standard_normal(3)


def ls_point(ls_data, extra=(), hand_jit=True):
    return Point(
        sizes={"N": 40, "D": 3},
        args=ls_data,
        label="tiny",
        variants=[
            Variant("hand", lambda P, y, t: -((y - P @ t) @ P), "hand", jit=hand_jit),
            Variant("jax.grad", lambda P, y, t: jax.grad(loss)(t, P, y), "autodiff"),
            *extra,
        ],
    )


# ------------------------------------------------------------------------------------------ timing


def test_timing_samples_interleaved_and_long_enough():
    calls = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    out = time_interleaved(fns, FAST)
    for _name, t in out.items():
        assert len(t.samples_s) == 5
        # Every sample lasted ≥ min_sample_s: its per-call time × its calls.
        assert all(s * c >= FAST.min_sample_s * 0.999 for s, c in zip(t.samples_s, t.calls))
        assert t.number == min(t.calls)
        assert t.min_s <= t.median_s <= t.max_s
        assert math.isclose(t.spread, (t.max_s - t.min_s) / t.median_s)
    # After calibration the samples alternate: a's sample i, then b's sample i, then a's i + 1 ...
    ca, cb = out["a"].calls, out["b"].calls
    expected = [x for i in range(5) for x in ["a"] * ca[i] + ["b"] * cb[i]]
    assert calls[-len(expected) :] == expected


def test_timing_config_demands_five_samples():
    with pytest.raises(ValueError, match="at least 5 samples"):
        TimingConfig(samples=4)
    with pytest.raises(ValueError, match="min_sample_s must be > 0; got 0"):
        TimingConfig(min_sample_s=0)


# ------------------------------------------------------------------------------------------ runner


def test_correct_variants_are_timed_with_compile_and_memory_separate(ls_data):
    res = run_point(
        ls_point(ls_data, [Variant("mmljax.gradient", lambda P, y, t: mj.gradient(loss)(t, P, y), "mmljax")]),
        Settings(),
        FAST,
    )
    by = {v.name: v for v in res.variants}
    assert [v.status for v in res.variants] == ["ok", "ok", "ok"]
    for v in res.variants:
        assert v.compile_s is not None and v.compile_s > 0  # lower + compile, timed on its own
        assert v.warmup_s is not None and v.warmup_s > 0  # first call, not one of the samples
        assert len(v.samples_s) == 5 and v.median_s == float(np.median(v.samples_s))
        assert v.memory is not None and {"temp_bytes", "output_bytes", "argument_bytes"} <= set(v.memory)
        assert v.program is not None
    assert by["hand"].ratio_to_hand == 1.0
    assert by["jax.grad"].rel_err <= 1e-12
    # mmljax.gradient compiles to exactly jax.grad's program.
    assert by["mmljax.gradient"].program == by["jax.grad"].program


def test_wrong_variant_is_rejected_and_not_timed(ls_data):
    wrong = [
        Variant("sign slip Φᵀ(y − Φθ)", lambda P, y, t: (y - P @ t) @ P, "autodiff"),
        Variant("transposed shape", lambda P, y, t: jnp.outer(P[0], t), "autodiff"),
    ]
    res = run_point(ls_point(ls_data, wrong), Settings(), FAST)
    by = {v.name: v for v in res.variants}
    assert by["jax.grad"].status == "ok"
    slip = by["sign slip Φᵀ(y − Φθ)"]
    assert slip.status == "rejected" and slip.median_s is None and slip.samples_s == ()
    assert slip.rel_err > 1 and "relative error" in slip.message and "not timed" in slip.message
    shape = by["transposed shape"]
    assert shape.status == "rejected" and "shape" in shape.message


def test_silent_float64_promotion_is_rejected(rng):
    Phi = rng.standard_normal((30, 2)).astype(np.float32)
    pt = Point(
        sizes={"N": 30},
        args=(Phi,),
        variants=[
            Variant("hand", lambda P: P.T @ P, "hand"),
            Variant("promoted", lambda P: P.astype(jnp.float64).T @ P.astype(jnp.float64), "autodiff"),
            Variant("gram", lambda P: mj.gram(P), "kernel"),
        ],
    )
    res = run_point(pt, Settings(dtype="float32"), FAST)
    by = {v.name: v for v in res.variants}
    assert by["promoted"].status == "rejected" and "float64" in by["promoted"].message
    assert by["gram"].status == "ok" and by["gram"].rel_err <= 1e-5


def test_failing_variant_is_reported_and_others_still_run(ls_data):
    def boom(P, y, t):
        raise RuntimeError("kaboom")

    res = run_point(ls_point(ls_data, [Variant("boom", boom, "autodiff")]), Settings(), FAST)
    by = {v.name: v for v in res.variants}
    assert by["boom"].status == "error" and "kaboom" in by["boom"].message
    assert by["jax.grad"].status == "ok"


def test_without_a_hand_reference_nothing_is_run(ls_data):
    def boom(P, y, t):
        raise ValueError("hand broke")

    pt = Point(
        sizes={"N": 40},
        args=ls_data,
        variants=[
            Variant("hand", boom, "hand"),
            Variant("jax.grad", lambda P, y, t: jax.grad(loss)(t, P, y), "autodiff"),
        ],
    )
    res = run_point(pt, Settings(), FAST)
    assert [v.status for v in res.variants] == ["error", "error"]
    assert "hand formula failed" in res.variants[1].message


def test_memory_limit_skips_before_running(ls_data):
    res = run_point(ls_point(ls_data, hand_jit=False), Settings(memory_limit_bytes=1), FAST)
    by = {v.name: v for v in res.variants}
    assert by["hand"].status == "ok"  # host code: no compiled memory to check
    skipped = by["jax.grad"]
    assert skipped.status == "skipped" and "GB of temporaries" in skipped.message
    assert skipped.warmup_s is None and skipped.memory is not None


def test_slow_variant_is_measured_once(ls_data):
    res = run_point(ls_point(ls_data), Settings(max_variant_s=1e-9), FAST)
    for v in res.variants:
        assert v.status == "ok" and v.number == 1 and len(v.samples_s) == 1 and v.spread is None
        assert "measured once" in v.message


def test_bound_variants_are_not_checked_but_others_must_be():
    with pytest.raises(ValueError, match="only 'bound'"):
        Variant("x", lambda: 0, "autodiff", check=False)
    with pytest.raises(ValueError, match="role"):
        Variant("x", lambda: 0, "fastest")
    with pytest.raises(ValueError, match="exactly one 'hand'"):
        Point(sizes={}, args=(), variants=[Variant("a", lambda: 0, "autodiff")])


def test_relative_error_and_fingerprint():
    assert relative_error(np.ones(3), np.ones(3))[0] == 0.0
    err, why = relative_error(np.ones((2, 3)), np.ones((3, 2)))
    assert math.isinf(err) and "shape" in why
    assert math.isinf(relative_error(np.array([np.nan]), np.ones(1))[0])
    x = jnp.ones(5)
    text = lambda f: jax.jit(f).lower(x).compile().as_text()  # noqa: E731
    a = program_fingerprint(text(lambda v: jnp.sum(jnp.sin(v))))
    b = program_fingerprint(text(lambda w: jnp.sum(jnp.sin(w))))
    c = program_fingerprint(text(lambda v: jnp.sum(jnp.cos(v))))
    assert a == b != c


# ------------------------------------------------------------------------------------------ cases


def test_case_selection():
    names = [c.name for c in bench_cases.CASES]
    assert {c.number for c in bench_cases.CASES} == {1, 2, 3, 4, 5, 6, 7, 8, 9}
    assert [c.name for c in bench_cases.select(["2"])] == ["ls-hessian", "ls-hvp"]
    assert [c.name for c in bench_cases.select(["mlp-*"])] == [n for n in names if n.startswith("mlp-")]
    assert [c.name for c in bench_cases.select(["ls-fit", "1"])] == ["ls-gradient", "ls-fit"]
    with pytest.raises(ValueError, match="choose from"):
        bench_cases.select(["nope"])


def test_tiny_sweep_of_a_real_case_checks_every_variant():
    # Every case runs in the slow end-to-end test; this one has the most variants and both kernels.
    run = run_benchmarks(bench_cases.select(["ls-hessian"]), Settings(sweep="tiny"), FAST, measure_machine=False)
    assert [c.status for c in run.cases] == ["ok"]
    for c in run.cases:
        assert len(c.points) >= 2
        for p in c.points:
            assert {v.status for v in p.variants} == {"ok"}, [(v.name, v.status, v.message) for v in p.variants]
    assert run.targets and all(isinstance(t, targets.TargetResult) for t in run.targets)


# ------------------------------------------------------------------------------------------ outputs


def _fake_run(ratio_mj=1.05, program_same=False):
    def vr(name, role, median, program=None):
        return VariantResult(
            name=name,
            role=role,
            status="ok",
            median_s=median,
            min_s=median,
            spread=0.01,
            samples_s=(median,) * 5,
            number=3,
            compile_s=0.1,
            warmup_s=median,
            rel_err=0.0,
            memory={"temp_bytes": 10, "output_bytes": 8, "argument_bytes": 24},
            ratio_to_hand=median / 1e-3,
            program=program,
        )

    from mmljax.bench.cases import least_squares as LS

    pts = [
        PointResult(
            sizes={"N": 10**6, "D": 100},
            label="N=1e+06 D=100",
            bound="memory",
            flops=4e8,
            bytes=1.6e9,
            note="",
            variants=[
                vr(LS.HAND_GRAD, "hand", 1e-3, "h"),
                vr(LS.JAX_GRAD, "autodiff", 1e-3, "g"),
                vr(LS.MJ_GRAD, "mmljax", ratio_mj * 1e-3, "h" if program_same else "m"),
                vr(LS.KERNEL_GRAD, "kernel", 0.6e-3, "k"),
                vr(LS.READ_ONCE, "bound", 0.5e-3, "r"),
            ],
        )
    ]
    case = CaseResult("ls-gradient", 1, "t", "d", "N", ("D",), points=pts)
    limits = Limits(100, {"numpy_float64": 30.0, "jax_float64": 28.0}, 2**20, {"numpy_read": 15.0, "jax_read": 12.0})
    run = BenchRun(Settings(), FAST, {**machine_info(), "platform": "cpu"}, limits, [case], command="mmljax bench")
    run.targets = targets.evaluate(run)
    return run


def test_targets_are_judged_met_missed_or_not_measured():
    by = {t.name: t for t in _fake_run(1.05).targets}
    assert by["gradient ≤ 1.10× hand"].met is True
    assert by["LS gradient ≤ 1.5× one read of Φ"].met is True  # 0.6 / 0.5 = 1.2
    assert by["mmljax.hessian ≤ 2.0× hand"].met is None  # case not in the run
    missed = {t.name: t for t in _fake_run(1.3).targets}["gradient ≤ 1.10× hand"]
    assert missed.met is False and missed.value == pytest.approx(1.3)
    assert "1.30×" in missed.detail
    same = {t.name: t for t in _fake_run(1.3, program_same=True).targets}["gradient ≤ 1.10× hand"]
    # When both sides compiled to one XLA program the ratio is 1 by construction; the measured
    # difference is reported as timing noise.
    assert same.met is True and "same XLA program; measured 1.30×" in same.detail


def test_json_and_markdown_schema(tmp_path):
    run = _fake_run()
    path = report.write_json(run, tmp_path / "r.json")
    doc = json.loads(path.read_text())
    assert doc["schema"] == SCHEMA
    assert {"jax", "jaxlib", "cpu_count", "device", "platform", "load_avg", "load_avg_after"} <= set(doc["machine"])
    assert doc["settings"]["dtype"] == "float64" and doc["timing"]["samples"] == 5
    assert doc["limits"]["matmul_gflops"]["numpy_float64"] == 30.0
    v = doc["cases"][0]["points"][0]["variants"][2]
    assert {
        "name",
        "role",
        "status",
        "median_s",
        "min_s",
        "spread",
        "samples_s",
        "number",
        "compile_s",
        "warmup_s",
        "memory",
        "ratio_to_hand",
        "rel_err",
        "pct_peak",
        "program",
    } <= set(v)
    assert {t["name"] for t in doc["targets"]} >= {"gradient ≤ 1.10× hand"}
    md = report.write_markdown(run, tmp_path / "r.md").read_text()
    assert "### Case 1: `ls-gradient`" in md and "| size | variant | median |" in md
    assert "### Targets" in md and "met" in md and "Command: `mmljax bench`" in md


def test_plots_are_written(tmp_path):
    files = report.write_plots(_fake_run(), tmp_path / "plots")
    assert [f.name for f in files] == ["ls-gradient-float64.png"] and files[0].stat().st_size > 1000


def test_machine_limits_are_measured():
    L = measure_limits(FAST, matmul_n=64, bandwidth_bytes=2**20)
    assert set(L.matmul_gflops) == {"numpy_float64", "jax_float64", "numpy_float32", "jax_float32"}
    assert all(v > 0 for v in L.matmul_gflops.values()) and all(v > 0 for v in L.bandwidth_gbs.values())
    assert L.peak_gflops("float64", "jax") == max(L.matmul_gflops["numpy_float64"], L.matmul_gflops["jax_float64"])


# ------------------------------------------------------------------------------------------ CLI


@pytest.mark.parametrize(
    "argv,words",
    [
        (["bench", "--case", "nope"], "choose from"),
        (["bench", "--tiny", "--samples", "3"], "at least 5"),
        (["bench", "--tiny", "--min-sample-s", "0"], "positive"),
    ],
)
def test_cli_usage_errors(argv, words, capsys):
    assert main(argv) == 2
    assert words in capsys.readouterr().err


def test_cli_list(capsys):
    assert main(["bench", "--list"]) == 0
    out = capsys.readouterr().out
    assert "ls-gradient" in out and "ls-fit" in out


def test_cli_writes_json_markdown_and_plots(tmp_path, capsys):
    argv = [
        "bench",
        "--tiny",
        "--case",
        "vec-kron",
        "--no-machine",
        "--min-sample-s",
        "0.002",
        "--json",
        str(tmp_path / "b.json"),
        "--markdown",
        str(tmp_path / "b.md"),
        "--plot",
        str(tmp_path / "p"),
    ]
    assert main(argv) == 0
    doc = json.loads((tmp_path / "b.json").read_text())
    assert [c["name"] for c in doc["cases"]] == ["vec-kron"]
    statuses = {v["status"] for p in doc["cases"][0]["points"] for v in p["variants"]}
    assert statuses == {"ok"}
    assert "vec-kron" in (tmp_path / "b.md").read_text()
    assert (tmp_path / "p" / "vec-kron-float64.png").exists()
    assert "variant timings" in capsys.readouterr().out


@pytest.mark.slow
def test_every_case_at_tiny_sizes_through_the_cli(tmp_path):
    """End to end: every case, every variant checked against its hand formula, float32 and float64."""
    for dtype in ("float64", "float32"):
        path = tmp_path / f"{dtype}.json"
        assert main(["bench", "--tiny", "--dtype", dtype, "--min-sample-s", "0.001", "--json", str(path)]) == 0
        doc = json.loads(path.read_text())
        assert {c["status"] for c in doc["cases"]} == {"ok"}
        bad = [
            (c["name"], v["name"], v["status"], v["message"])
            for c in doc["cases"]
            for p in c["points"]
            for v in p["variants"]
            if v["status"] not in ("ok", "skipped")
        ]
        assert not bad


def test_gpu_check_script_is_valid_and_complete():
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"
    assert script.stat().st_mode & 0o111, "gpu_check.sh must be executable"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    for needed in (
        "--no-deps --no-build-isolation -e .",
        "PYTHONPATH",
        "-m pytest",
        "mmljax bench --quick",
        "for dtype in float32 float64",
        "MMLJAX_GPU_OUT",
        "--json",
        "--markdown",
    ):
        assert needed in text, needed


def test_only_selects_points_by_size(capsys, tmp_path):
    argv = [
        "bench",
        "--tiny",
        "--case",
        "matrix-grad",
        "--only",
        "n=9",
        "--no-machine",
        "--min-sample-s",
        "0.001",
        "--json",
        str(tmp_path / "o.json"),
    ]
    assert main(argv) == 0
    doc = json.loads((tmp_path / "o.json").read_text())
    assert [p["sizes"] for p in doc["cases"][0]["points"]] == [{"n": 9}]
    assert "--only n=9" in doc["command"]
    assert main(["bench", "--tiny", "--only", "n"]) == 2
    assert "NAME=INTEGER" in capsys.readouterr().err
