"""`mmljax fit`: the StRD table and its exit status, one dataset in detail, CSV features, errors."""

import json

import numpy as np
import pytest

from mmljax import cli


def test_no_arguments_fits_every_strd_dataset_and_passes(tmp_path, capsys):
    out_json = tmp_path / "strd.json"
    assert cli.main(["fit", "--compare", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    for name in ("Norris", "Pontius", "NoInt1", "NoInt2", "Filip", "Longley", "Wampler1", "Wampler5"):
        assert name in out
    assert "lstsq" in out and "below bar" not in out
    report = json.loads(out_json.read_text())
    assert report["schema"] == "mmljax.fit/1" and report["ok"] and len(report["datasets"]) == 11
    filip = next(d for d in report["datasets"] if d["dataset"] == "Filip")
    assert filip["lre"]["coefficients"] >= 12 and filip["compare"]["numpy_lstsq"] < 8


def test_a_method_below_the_bar_exits_1(capsys):
    assert cli.main(["fit", "--method", "cholesky"]) == 1
    assert "below bar" in capsys.readouterr().out


def test_one_dataset_in_detail_with_plot_and_json(tmp_path, capsys):
    plot, out_json = tmp_path / "filip.png", tmp_path / "filip.json"
    assert cli.main(["fit", "--dataset", "filip", "--plot", str(plot), "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "-1.4674896142" in out and "B10" in out and "certified" in out
    assert "critical-point check of the fitted loss: minimum" in out and "meets the bar" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads(out_json.read_text())
    assert report["critical_point"]["kind"] == "minimum" and report["lre"]["coefficients"] >= 12
    assert len(report["coefficients"]) == 11 and report["method"] == "qr"


@pytest.fixture
def sine_csv(tmp_path):
    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(0, 1, 40))
    y = np.sin(2 * np.pi * x) + 0.05 * rng.standard_normal(40)
    path = tmp_path / "sine.csv"
    path.write_text("x,y\n" + "".join(f"{float(a)!r},{float(b)!r}\n" for a, b in zip(x, y)))
    return path


@pytest.mark.parametrize("spec, n_coef", [("poly:3", 4), ("fourier:2", 5), ("rbf:6", 7), ("linear", 2)])
def test_csv_features(sine_csv, tmp_path, spec, n_coef, capsys):
    out_json = tmp_path / "fit.json"
    assert cli.main(["fit", "--csv", str(sine_csv), "--target", "y", "--features", spec, "--json", str(out_json)]) == 0
    report = json.loads(out_json.read_text())
    assert len(report["coefficients"]) == n_coef and report["critical_point"]["kind"] == "minimum"
    if spec.startswith(("fourier", "rbf")):
        assert report["r_squared"] > 0.95  # these bases can follow a sine
    assert "R² =" in capsys.readouterr().out


def test_ridge_fit_is_still_a_minimum_of_the_penalised_loss(sine_csv, capsys):
    assert cli.main(["fit", "--csv", str(sine_csv), "--target", "1", "--features", "poly:5", "--ridge", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "ridge 0.1" in out and "fitted loss: minimum" in out


@pytest.mark.parametrize(
    "argv, match",
    [
        (["fit", "--csv", "x.csv"], "--csv needs --target"),
        (["fit", "--target", "y"], "--target goes with --csv"),
        (["fit", "--features", "poly:2"], "need --dataset NAME or --csv FILE"),
        (["fit", "--dataset", "Fillip"], "unknown dataset 'Fillip'; available"),
        (["fit", "--dataset", "Longley", "--features", "poly:2"], "needs exactly one feature column"),
        (["fit", "--dataset", "Norris", "--features", "spline:3"], "--features must be linear, poly:K"),
        (["fit", "--ridge", "-1"], "--ridge must be"),
        (["fit", "--csv", "missing.csv", "--target", "y"], "no such file"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(argv, match, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmljax fit: error:") and match in err and err.count("\n") == 1
