"""The research experiments in `experiments/`, each run once in `--quick` mode into a temp folder.

Every run is in-process (`main(argv)`), one test per experiment (so that pytest-xdist never
runs an experiment twice), asserting on its `results.json`: the numbers must say what theory says
(training error falls with degree,
held-out error is U-shaped, solvers agree, gradient descent diverges beyond 2/λmax, the
finite-difference V-curve bottoms out near eps^(1/2) / eps^(1/3), hand backprop equals jax.grad,
a killed and resumed training ends bit-identical), and every figure must be a real PNG.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the experiments package lives at the repository root
    sys.path.insert(0, str(ROOT))

from experiments import __main__ as runner  # noqa: E402
from experiments import (  # noqa: E402
    _common,  # noqa: E402
    critical_points,
    curve_fitting,
    deep_regression,
    derivative_accuracy,
    loss_landscape,  # noqa: E402
)


def _run(module, tmp_path: Path, *extra):
    out = tmp_path / module.NAME
    results = module.main(["--quick", "--out", str(out), "--seed", "0", "--device", "cpu", *extra])
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk == results
    return out, results


def _check_png(path: Path) -> None:
    from matplotlib.image import imread

    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    assert 5_000 < len(raw) < 200_000, f"{path.name}: {len(raw)} bytes"
    img = imread(path)
    assert img.ndim == 3 and min(img.shape[:2]) >= 150, f"{path.name}: shape {img.shape}"
    rgb = img[..., :3].reshape(-1, 3)
    # Non-trivial: not one flat colour, and plenty of ink (axes, curves, text) on the white page.
    assert rgb.std() > 0.05, f"{path.name} looks blank"
    assert np.mean(rgb.sum(axis=1) < 2.5) > 0.01, f"{path.name} has almost nothing drawn"
    assert len(np.unique((rgb * 255).astype(np.uint8), axis=0)) > 20, f"{path.name} has too few colours"


def _check_provenance_and_figures(out: Path, r: dict) -> None:
    assert r["quick"] is True and r["seed"] == 0
    assert r["device"]["platform"] == "cpu" and r["device"]["count"] >= 1
    assert r["config"]["device"] == "cpu" and r["config"]["quick"] is True
    for pkg in ("jax", "jaxlib", "numpy", "matplotlib", "mmljax", "python"):
        assert r["versions"][pkg]
    assert "float64" in r["dtype"]
    assert r["figures"], "no figures written"
    for fig in r["figures"]:
        assert fig.startswith(r["experiment"]) and fig.endswith(".png")
        _check_png(out / fig)
    assert not list(out.glob(".*.tmp")), "a temporary file was left behind"


# --------------------------------------------------------------------------------- curve fitting


def _curve_fitting_error_versus_degree(r):
    sw = r["sweep"]
    train = np.asarray(sw["train_rmse"])
    # Nested least-squares models: the training error can only fall as the degree grows.
    assert np.all(np.diff(train, axis=1) <= 1e-9 * train[:, :-1])
    test = np.asarray(sw["median_test_rmse"])
    best = sw["best_degree"]
    assert 2 <= best <= len(test) - 3
    assert test[0] > 1.5 * test[best] and test[-1] > 1.5 * test[best], "held-out error is not U-shaped"
    # The best held-out error is near the noise level (σ = 0.25), far below the constant fit's.
    assert test[best] < 0.4


def _curve_fitting_solvers_agree(r):
    for a in r["agreement"] + [r["strd"]["agreement"]]:
        gd, nt = a["gradient_descent"], a["newton"]
        assert gd["converged"] and nt["converged"]
        assert nt["steps"] <= 2, "Newton should solve a quadratic in one step"
        assert nt["coef_max_abs_diff"] < 1e-9 and nt["fitted_rel_diff"] < 1e-10
        assert gd["coef_max_abs_diff"] < 1e-6 and gd["fitted_rel_diff"] < 1e-7
        assert abs(gd["loss_gap"]) < 1e-12 and abs(nt["loss_gap"]) < 1e-14


def _curve_fitting_strd(r):
    st = r["strd"]
    assert st["dataset"] == "Pontius" and st["certified_degree"] == 2
    assert st["certified_digits"]["coefficients"] >= 12 and st["certified_digits"]["residual_sd"] >= 12
    cv = np.asarray(st["cv_rmse"])
    assert cv[2] < cv[1] / 5 < cv[0] / 5, "the quadratic term matters"
    assert np.all(np.diff(st["train_rmse"]) <= 1e-12)


def _curve_fitting_jax_fits(r):
    b = r["bootstrap"]
    assert b["draws"] == 200 and b["min_rank"] == b["degree"] + 1
    assert b["vmap_vs_loop_max_rel"] < 1e-10, "vmap refits must equal the one-by-one fits"
    lo, med, hi = (np.asarray(b[k]) for k in ("lower", "median", "upper"))
    assert np.all(lo <= med) and np.all(med <= hi) and np.mean(hi - lo) > 0
    assert b["coverage_of_truth"] > 0.5  # a 95% band around a cubic fit of noisy sin(2πx)
    h = r["hypergradient"]
    assert h["hypergradient_vs_fd_rel"] < 1e-6, "the hypergradient through the fit matches a central difference"
    # gradient descent on log λ ends where the grid's minimum is (within the grid spacing's worth of error)
    assert h["final_mse"] <= 1.02 * h["grid_best_mse"]
    assert h["final_mse"] < h["descent_mse"][0] and h["final_mse"] < h["unregularised_mse"]


# --------------------------------------------------------------------------------- loss landscape


def _loss_landscape_hessian_and_newton(r):
    assert r["minimum"]["check_minimiser_ok"] and r["minimum"]["grad_norm"] < 1e-12
    h = r["hessian"]
    assert h["hand_vs_autodiff_rel"] < 1e-12
    lam = np.asarray(h["eigenvalues"])
    assert 0 < lam[0] < lam[1] and h["condition_number"] > 5  # an elongated valley
    assert math.isclose(h["stability_limit_step"], 2 / lam[1])
    nt = r["newton"]
    assert nt["converged"] and nt["steps"] == 1 and nt["first_step_distance"] < 1e-10


def _loss_landscape_step_sizes(r):
    runs = r["gradient_descent"]
    assert {g["behaviour"] for g in runs} == {"monotone", "oscillates", "diverges"}
    for g in runs:
        if g["step_times_lambda_max"] < 2:
            assert g["final_gap"] < 0.5 * g["initial_gap"]
            # the error contracts by max_i |1 − η λ_i| per step, as the linear analysis predicts
            assert g["observed_rate"] == pytest.approx(g["predicted_rate"], rel=1e-2)
        else:
            assert g["final_gap"] > 100 * g["initial_gap"]
            assert g["observed_rate"] == pytest.approx(g["predicted_rate"], rel=1e-3)
            assert g["predicted_rate"] > 1


def _loss_landscape_directional_derivative(r):
    d = r["directional"]
    assert d["autodiff_vs_gradient_rel"] < 1e-13
    assert d["finite_diff_vs_gradient_rel"] < 1e-7
    # the steepest slope over the sampled directions approaches −||∇L||
    assert -d["gradient_norm"] <= d["steepest_slope"] < -0.98 * d["gradient_norm"]


# --------------------------------------------------------------------------------- critical points


def _critical_points_classification(r):
    for label, f in r["functions"].items():
        assert f["kind"] == f["expected"], label
        assert f["grad_norm"] == 0.0
    fs = r["functions"]
    assert fs["minimum x² + y²"]["vHv_min"] > 0
    assert fs["maximum −x² − y²"]["vHv_max"] < 0
    assert fs["saddle x² − y²"]["vHv_min"] < 0 < fs["saddle x² − y²"]["vHv_max"]
    # x⁴ + y²: curvature ≥ 0 with a zero direction: the second-order test cannot decide
    assert fs["degenerate x⁴ + y²"]["vHv_min"] == pytest.approx(0, abs=1e-12)
    assert max(abs(fs["monkey saddle x³ − 3xy²"]["vHv_min"]), abs(fs["monkey saddle x³ − 3xy²"]["vHv_max"])) < 1e-12


def _critical_points_local_and_global_minima(r):
    dw = r["double_well"]
    assert dw["converged"] and len(dw["minima"]) == 2
    glob = [m for m in dw["minima"] if m["global"]]
    loc = [m for m in dw["minima"] if not m["global"]]
    assert len(glob) == len(loc) == 1
    assert glob[0]["w"] < 0 < loc[0]["w"] and glob[0]["loss"] < loc[0]["loss"]
    assert all(m["kind"] == "minimum" for m in dw["minima"])
    assert sum(m["n_starts"] for m in dw["minima"]) == len(dw["starts"])
    # each start goes downhill into the basin on its side of the maximum near w = 0.075
    starts, ends = np.asarray(dw["starts"]), np.asarray(dw["ends"])
    assert np.all(np.sign(ends[np.abs(starts) > 0.2]) == np.sign(starts[np.abs(starts) > 0.2]))
    mlp = r["mlp"]
    assert mlp["newton_converged"] and mlp["max_grad_norm"] < 1e-8
    assert mlp["n_clusters"] >= 2, "expected starts to end in different minima"
    losses = [c["loss"] for c in mlp["classified"]]
    assert min(losses) == pytest.approx(min(mlp["final_loss"]))
    assert all(c["kind"] == "minimum" for c in mlp["classified"])


# --------------------------------------------------------------------------------- deep regression


def _deep_regression_training_and_checks(out, r):
    models = r["models"]
    assert {m["family"] for m in models.values()} == {"basis", "mlp"}
    assert any(m["data"] == "multi" for m in models.values())
    for name, m in models.items():
        hist = np.asarray(m["loss_history"])
        assert hist.size == r["config"]["steps"]
        assert m["final_loss"] < 0.05 * hist[0], name
        assert m["test_mse"] < 0.02, name
        # hand-written backprop equals jax.grad at every checked step of training
        assert len(m["gradcheck_steps"]) >= 4 and m["gradcheck_max_rel_error"] < 1e-10, name
    # more width helps the learned-basis model here
    widths = sorted((m["width"], m["test_mse"]) for m in models.values() if m["family"] == "basis")
    assert widths[-1][1] < widths[0][1]
    analysed = [m for m in models.values() if m["hessian"] is not None]
    assert analysed
    for m in analysed:
        h = m["hessian"]
        assert h["largest_rel_error"] < 1e-8, "Lanczos' largest Ritz value should match dense eigh"
        t = h["trace"]  # Hutchinson is unbiased: the exact trace lies within a few standard errors
        assert abs(t["hutchinson"] - t["exact"]) < 4 * t["standard_error"]
        c = h["classification"]
        assert c["kind"] in ("minimum", "saddle", "degenerate", "not_stationary")
        assert c["n_positive"] + c["n_negative"] + c["n_zero"] == h["n_params"]
        assert c["max_eigenvalue"] > 0
    params = np.load(out / "final_params.npz")
    assert sorted(params.files) == sorted(models)
    lm = {k: m["levenberg_marquardt"] for k, m in models.items() if "skipped" not in m["levenberg_marquardt"]}
    assert lm, "no model trained by Levenberg–Marquardt"
    for name, rec in lm.items():  # in far fewer steps than Adam, to a lower training loss
        assert rec["steps"][-1] < r["config"]["steps"] / 10 and rec["final_loss"] < models[name]["final_loss"], name


def _deep_regression_resume_after_kill(out0, r0, tmp_path):
    """Killed mid-run (SIGKILL, in a subprocess), then resumed: exactly the parameters of the
    uninterrupted run.

    To keep it short, the killed run trains the first two models only (`--models`); each model
    keeps its initialisation from the full set, so they must match the full quick run."""
    out = tmp_path / "resumed"
    names = list(r0["models"])[:2]
    args = ["--quick", "--out", str(out), "--seed", "0", "--device", "cpu", "--models", ",".join(names)]
    steps = r0["config"]["steps"]
    kill = steps + steps // 2  # the first model finished, the second half-way
    proc = subprocess.run(
        [sys.executable, "-m", "experiments", "deep_regression", *args, "--kill-after", str(kill)],
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode in (-9, 137), proc.stderr[-2000:]
    assert "killing myself" in proc.stdout
    assert not (out / "results.json").exists()
    assert sorted(p.name for p in (out / "checkpoints").glob("*.ckpt")) == sorted(f"{n}.ckpt" for n in names)
    r1 = deep_regression.main(args + ["--resume"])
    assert list(r1["models"]) == names
    p0, p1 = np.load(out0 / "final_params.npz"), np.load(out / "final_params.npz")
    for name in names:
        assert np.array_equal(p0[name], p1[name]), f"{name}: resumed parameters differ"
        assert r1["models"][name]["params_sha256"] == r0["models"][name]["params_sha256"]
        assert np.array_equal(r1["models"][name]["loss_history"], r0["models"][name]["loss_history"])
        # gradient checks made before the kill were kept
        assert r1["models"][name]["gradcheck_steps"] == r0["models"][name]["gradcheck_steps"]
    with pytest.raises(ValueError, match="matches none"):
        deep_regression.main(["--quick", "--out", str(tmp_path / "none"), "--models", "nope"])


def _derivative_accuracy_catalogue(r):
    s = r["catalogue"]["summary"]
    assert s["rows_checked"] >= 8 and s["failed"] == []
    assert s["mutants_checked"] >= 5 and s["mutants_rejected"] == s["mutants_checked"]
    assert s["worst_autodiff_rel_correct"] < 1e-10
    for rep in r["catalogue"]["reports"]:
        w = rep["witnesses"]
        if rep["mutant"]:  # doubled: relative error 1 against every witness, and a first-order Taylor remainder
            assert w["jacfwd"] == pytest.approx(1) and w["jacrev"] == pytest.approx(1)
            assert w["finite_diff"] == pytest.approx(1, abs=1e-3)
            assert w["taylor_order"] == pytest.approx(1, abs=0.1)
        elif not rep["expect_fail"] and rep["kind"] != "minimiser":
            assert max(w["jacfwd"], w["jacrev"]) < 1e-10
            assert w["finite_diff"] < (1e-6 if rep["kind"] == "jacobian" else 1e-4)
            assert w["taylor_order"] is None or w["taylor_order"] > 1.8


def _derivative_accuracy_v_curve(r):
    vc = r["v_curve"]
    f64, f32 = vc["float64"], vc["float32"]
    for res in (f32, f64):
        for scheme, order in (("forward", 1), ("central", 2)):
            s = res[scheme]
            assert s["truncation_slope"] == pytest.approx(order, abs=0.15), scheme
            assert s["rounding_slope"] == pytest.approx(-1, abs=0.35), scheme
            # the best step sits near the balance of truncation and rounding (within ~1.5 decades)
            assert abs(math.log10(s["best_step"] / s["theory_best_step"])) < 1.5, scheme
    assert f64["central"]["best_rel_error"] < 1e-9 < f64["forward"]["best_rel_error"] < 1e-6
    assert (
        f32["central"]["best_rel_error"] < 1e-4
        and f32["central"]["best_rel_error"] > 1e3 * f64["central"]["best_rel_error"]
    )
    assert f64["autodiff_rel"] < 1e-15 and f32["autodiff_rel"] < 1e-6
    assert f64["default_central_rel"] < 1e-9
    correct, wrong = r["taylor"].values()
    assert correct["ok"] and correct["order"] == pytest.approx(2, abs=0.1)
    assert not wrong["ok"] and wrong["order"] == pytest.approx(1, abs=0.1)


# --------------------------------------------------------------------------------- one test per experiment


@pytest.mark.slow
def test_curve_fitting(tmp_path):
    out, r = _run(curve_fitting, tmp_path)
    _check_provenance_and_figures(out, r)
    _curve_fitting_error_versus_degree(r)
    _curve_fitting_solvers_agree(r)
    _curve_fitting_strd(r)
    _curve_fitting_jax_fits(r)


@pytest.mark.slow
def test_loss_landscape(tmp_path):
    out, r = _run(loss_landscape, tmp_path)
    _check_provenance_and_figures(out, r)
    _loss_landscape_hessian_and_newton(r)
    _loss_landscape_step_sizes(r)
    _loss_landscape_directional_derivative(r)


@pytest.mark.slow
def test_critical_points(tmp_path):
    out, r = _run(critical_points, tmp_path)
    _check_provenance_and_figures(out, r)
    _critical_points_classification(r)
    _critical_points_local_and_global_minima(r)


@pytest.mark.slow
def test_deep_regression_and_resume(tmp_path):
    out, r = _run(deep_regression, tmp_path)
    _check_provenance_and_figures(out, r)
    _deep_regression_training_and_checks(out, r)
    _deep_regression_resume_after_kill(out, r, tmp_path)


@pytest.mark.slow
def test_derivative_accuracy(tmp_path):
    out, r = _run(derivative_accuracy, tmp_path)
    _check_provenance_and_figures(out, r)
    _derivative_accuracy_catalogue(r)
    _derivative_accuracy_v_curve(r)


# --------------------------------------------------------------------------------- plumbing


def test_runner_lists_and_rejects(capsys):
    assert runner.main(["--list"]) == 0
    listed = capsys.readouterr().out
    for name in ("curve_fitting", "loss_landscape", "critical_points", "deep_regression", "derivative_accuracy"):
        assert name in listed
    assert runner.main(["no_such_experiment"]) == 2
    assert "unknown experiment" in capsys.readouterr().err


def test_device_choice():
    import jax

    assert _common.select_device("cpu").platform == "cpu"
    assert _common.select_device("auto") == jax.devices()[0]
    if not any(d.platform == "gpu" for d in jax.devices()):
        with pytest.raises(ValueError, match="no GPU"):
            _common.select_device("gpu")
        # the runner turns it into one line and exit status 2, before any work
        assert runner.main(["loss_landscape", "--device", "gpu", "--out", "/nonexistent/never-written"]) == 2
    with pytest.raises(ValueError, match="--device"):
        _common.select_device("tpu-please")


def test_jsonable():
    out = _common.jsonable(
        {
            "a": np.array([1.0, np.nan]),
            "b": (np.float32(2.5), np.int64(3)),
            "c": float("inf"),
            "d": np.bool_(True),
            "e": Path("x/y"),
        }
    )
    assert out == {"a": [1.0, None], "b": [2.5, 3], "c": None, "d": True, "e": "x/y"}
    json.dumps(out, allow_nan=False)
    with pytest.raises(TypeError, match="cannot store"):
        _common.jsonable({"f": object()})


def test_script_entry_point_help():
    """`python experiments/NAME.py` works from anywhere (the script puts the repository on sys.path)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "loss_landscape.py"), "--help"],
        capture_output=True,
        text=True,
        cwd=str(ROOT.parent),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "--quick" in proc.stdout and "--device" in proc.stdout
