"""`mmljax fit --nonlinear`: the NIST StRD nonlinear LRE table, its exit status, peers, errors."""

import json

from mmljax import cli


def test_table_json_and_compare(tmp_path, capsys):
    out_json = tmp_path / "nls.json"
    assert cli.main(["fit", "--nonlinear", "--dataset", "DanWood", "--compare", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "DanWood" in out and "scipy trf" in out and "scipy lm" in out and "below bar" not in out
    report = json.loads(out_json.read_text())
    assert report["schema"] == "mmljax.fit-nonlinear/1" and report["ok"]
    assert [r["start"] for r in report["runs"]] == [1, 2]
    for r in report["runs"]:
        assert r["lre"]["params"] >= 10 and r["lre"]["standard_errors"] >= 8.5 and r["lre"]["residual_sd"] >= 9.5
        assert r["status"] == "CONVERGED" and r["steps"] > 0 and r["seconds"] > 0
        assert 0 <= r["compare"]["scipy trf"] <= 11
    assert set(report["compare"]) >= {"scipy trf", "scipy lm"}


_WRONG_CERTIFIED = """NIST/ITL StRD
Dataset Name:  Decay             (Decay.dat)

Model:         Exponential Class
               2 Parameters (b1 to b2)

               y = b1*exp[-b2*x]  +  e

          Starting values                  Certified Values

        Start 1     Start 2           Parameter     Standard Deviation
  b1 =    1           2            3.0000000000E+00  1.0000000000E-01
  b2 =    0.1         0.3          5.0000000000E-01  1.0000000000E-02

Residual Sum of Squares:                    1.0000000000E-02
Residual Standard Deviation:                5.0000000000E-02
Degrees of Freedom:                                 3
Number of Observations:                             5

Data:   y           x
      2.0        0.0
      1.3        1.0
      0.7        2.0
      0.45       3.0
      0.26       4.0
"""


def test_a_run_below_the_bar_exits_1(tmp_path, capsys):
    path = tmp_path / "Decay.dat"
    path.write_text(_WRONG_CERTIFIED)  # the certified values are not the least-squares solution
    assert cli.main(["fit", "--nonlinear", "--dataset", str(path)]) == 1
    out = capsys.readouterr().out
    assert "Decay" in out and "below bar: Decay start 1, Decay start 2" in out


def test_user_errors_print_one_line_and_exit_2(capsys):
    assert cli.main(["fit", "--nonlinear", "--dataset", "NoSuchProblem"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmljax fit: error: load_strd_nls: unknown problem 'NoSuchProblem'")
    assert len(err.strip().splitlines()) == 1
