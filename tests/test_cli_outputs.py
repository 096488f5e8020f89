"""Output files of `mmljax check | fit | bench`: never over an input, checked before any work, and a
write failure is one line on stderr with exit status 2 (status 1 means "a check failed")."""

from __future__ import annotations

import json

import pytest

from mmljax import _io, cli

CSV = "x,y\n1,2.1\n2,3.9\n3,6.2\n4,7.8\n5,10.1\n"


@pytest.fixture
def data_csv(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text(CSV)
    return path


def _fails(argv, capsys, fragment):
    assert cli.main([str(a) for a in argv]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert fragment in err, err
    return captured


@pytest.mark.parametrize("flag", ["--json", "--plot"])
def test_fit_refuses_to_write_over_its_input(data_csv, capsys, flag):
    out = _fails(
        ["fit", "--csv", data_csv, "--target", "y", flag, data_csv],
        capsys,
        "is an input file of this command; refusing to overwrite it",
    )
    assert data_csv.read_text() == CSV
    assert out.out == ""  # refused before any work


def test_fit_refuses_the_input_under_another_name(data_csv, tmp_path, capsys):
    link = tmp_path / "link.csv"
    link.symlink_to(data_csv)
    _fails(["fit", "--csv", data_csv, "--target", "y", "--json", link], capsys, "is an input file")
    assert data_csv.read_text() == CSV


@pytest.mark.parametrize(
    "name, fragment",
    [("fit.xyz", "unknown image format 'xyz'; use one of"), ("fit", "no file extension to tell the image format")],
)
def test_fit_unknown_image_format_before_any_work(data_csv, tmp_path, capsys, name, fragment):
    out = _fails(["fit", "--csv", data_csv, "--target", "y", "--plot", tmp_path / name], capsys, fragment)
    assert out.out == "" and not (tmp_path / name).exists()


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda tmp: tmp / "d.csv" / "out.json", "is not a directory"),
        (lambda tmp: tmp, "is a directory; give a file name"),
    ],
)
def test_fit_unwritable_place_before_any_work(data_csv, tmp_path, capsys, make, fragment):
    out = _fails(["fit", "--csv", data_csv, "--target", "y", "--json", make(tmp_path)], capsys, fragment)
    assert out.out == ""


def test_a_write_failure_is_one_line_and_exit_2(data_csv, tmp_path, capsys, monkeypatch):
    def full_disk(path, obj):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_io, "atomic_write_json", full_disk)
    _fails(
        ["fit", "--csv", data_csv, "--target", "y", "--json", tmp_path / "o.json"],
        capsys,
        f"--json {tmp_path / 'o.json'}: cannot write it: No space left on device",
    )


def test_fit_writes_json_and_a_chosen_image_format(data_csv, tmp_path, capsys):
    out_json, plot = tmp_path / "new" / "fit.json", tmp_path / "fit.svg"
    assert cli.main(["fit", "--csv", str(data_csv), "--target", "y", "--json", str(out_json), "--plot", str(plot)]) == 0
    report = json.loads(out_json.read_text())
    assert report["schema"] == "mmljax.fit/1" and len(report["coefficients"]) == 2
    assert plot.read_text().lstrip().startswith("<?xml") and "<svg" in plot.read_text()
    assert data_csv.read_text() == CSV


def test_check_refuses_to_write_over_a_loaded_file(tmp_path, capsys):
    extra = tmp_path / "extra.py"
    source = "# registers nothing\n"
    extra.write_text(source)
    _fails(["check", "-k", "tr(AX)", "--load", extra, "--json", extra], capsys, "is an input file")
    assert extra.read_text() == source


def test_bench_only_with_an_unknown_size_name_is_a_usage_error(capsys):
    out = _fails(["bench", "--tiny", "--only", "Q=7", "--no-machine"], capsys, "no selected case has a size called 'Q'")
    assert out.out == ""


def test_bench_only_that_selects_nothing_exits_2(tmp_path, capsys):
    out_json = tmp_path / "b.json"
    _fails(
        ["bench", "--tiny", "--case", "vec-kron", "--only", "n=7", "--no-machine", "--json", out_json],
        capsys,
        "--only n=7 selects no size of the chosen case(s) (vec-kron: n=3, 5)",
    )
    assert not out_json.exists()


def test_bench_outputs_must_differ_and_fit_their_kind(tmp_path, capsys):
    same = tmp_path / "b.out"
    _fails(["bench", "--tiny", "--no-machine", "--json", same, "--markdown", same], capsys, "name the same file")
    (tmp_path / "file").write_text("x")
    _fails(["bench", "--tiny", "--no-machine", "--plot", tmp_path / "file"], capsys, "is a file; give a directory")
