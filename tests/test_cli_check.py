"""`mmljax check`: exit codes (0 all pass, 1 a failure, 2 a usage error), the JSON schema, --list,
--load of user rows. Runs the CLI in-process on small selections (-k) to stay fast."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from mmljax import catalogue
from mmljax.cli import main

ENTRY_KEYS = {
    "name",
    "source",
    "group",
    "domain",
    "kind",
    "status",
    "passed",
    "expect_fail",
    "autodiff_rel",
    "finite_diff_rel",
    "taylor_order",
    "witnesses",
    "shapes",
    "sizes",
    "checks",
    "failed",
    "seconds",
    "message",
    "note",
}


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    """--load registers rows globally; give each test its own registry."""
    monkeypatch.setattr(catalogue, "_REGISTERED", [])


def test_all_pass_exit_0_and_json_schema(tmp_path, capsys):
    out = tmp_path / "check.json"
    rc = main(["check", "-k", "L(a)", "--json", str(out), "--no-progress", "--workers", "2"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "known wrong" in text and "pass" in text and "Lecture 1.2 (scalar differentiation)" in text
    data = json.loads(out.read_text())
    assert data["schema"] == "mmljax.check/1" and data["ok"] is True
    assert data["passed"] == data["total"] == len(data["entries"]) == len(catalogue.select("L(a)")) == 4
    assert set(data["counts"]) == {"pass", "known wrong", "fail", "unexpected pass", "error"}
    assert data["counts"]["known wrong"] == 1 and data["counts"]["fail"] == 0
    assert data["config"] == {
        "sizes": "small",
        "seed": 0,
        "draws": 2,
        "pattern": "L(a)",
        "workers": 2,
        "dtype": "float64",
        "loaded": [],
    }
    assert {"jax", "jaxlib", "numpy", "mmljax", "python"} <= set(data["versions"])
    for e in data["entries"]:
        assert set(e) == ENTRY_KEYS
        assert e["status"] in ("pass", "known wrong") and e["passed"] is True
        assert e["group"] == "Lecture 1.2 (scalar differentiation)"
        assert e["checks"] == len(e["shapes"]) > 0 and e["seconds"] > 0
        if e["kind"] != "minimiser":
            assert e["autodiff_rel"] <= 1e-10 and set(e["witnesses"]) == {
                "jacfwd",
                "jacrev",
                "finite_diff",
                "taylor_order",
            }
    wrong = [e for e in data["entries"] if e["expect_fail"]]
    assert len(wrong) == 1 and wrong[0]["status"] == "known wrong" and wrong[0]["failed"] == wrong[0]["checks"]


WRONG_ROWS = textwrap.dedent("""
    import jax.numpy as jnp
    from mmljax.catalogue import Identity, register

    register(Identity(
        name="user row: d/dA aᵀAb = baᵀ (transposed)", source="my notes", domain="mine",
        f=lambda A, a, b: a @ A @ b, derivative=lambda A, a, b: jnp.outer(b, a),
        sample=lambda rng, n: (rng.standard_normal((n, n)), (rng.standard_normal(n), rng.standard_normal(n))),
        sizes=(3,),
    ))
    register(Identity(
        name="user row: d/dx Σ sin x = cos x", source="my notes", domain="mine",
        f=lambda x: jnp.sum(jnp.sin(x)), derivative=jnp.cos,
        sample=lambda rng, n: (rng.standard_normal(n), ()), sizes=(3,),
    ))
""")


def test_registered_wrong_row_exit_1(tmp_path, capsys):
    rules = tmp_path / "my_rules.py"
    rules.write_text(WRONG_ROWS)
    out = tmp_path / "r.json"
    rc = main(["check", "--load", str(rules), "-k", "user row", "--json", str(out), "--no-progress"])
    text = capsys.readouterr().out
    assert rc == 1
    assert "user row: d/dA aᵀAb = baᵀ (transposed)" in text and "fail" in text
    data = json.loads(out.read_text())
    assert data["ok"] is False and data["counts"] == {
        "pass": 1,
        "known wrong": 0,
        "fail": 1,
        "unexpected pass": 0,
        "error": 0,
    }
    assert data["config"]["loaded"] == [str(rules)]
    bad = next(e for e in data["entries"] if e["status"] == "fail")
    assert "user row: d/dA aᵀAb = baᵀ (transposed)" in bad["message"] and bad["group"] == "mine: other references"
    # the correct user row alone passes
    catalogue._REGISTERED.clear()
    assert main(["check", "--load", str(rules), "-k", "user row: d/dx Σ sin*", "--no-progress"]) == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["check", "-k", "no entry is called this"], "no catalogue entry matches"),
        (["check", "--load", "/nonexistent/rules.py"], "no such file"),
        (["check", "--draws", "0"], "--draws must be at least 1"),
        (["check", "--workers", "0"], "--workers must be at least 1"),
    ],
)
def test_usage_errors_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_load_file_that_raises_exit_2(tmp_path, capsys):
    bad = tmp_path / "broken.py"
    bad.write_text("raise RuntimeError('my rules are broken')\n")
    assert main(["check", "--load", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "broken.py" in err and "my rules are broken" in err and "Traceback" not in err


def test_argparse_usage_error_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["check", "--sizes", "huge"])
    assert e.value.code == 2


def test_list(capsys):
    assert main(["check", "--list", "-k", "Cookbook"]) == 0
    text = capsys.readouterr().out
    assert "∂det X/∂X = det(X) X⁻ᵀ" in text and "Matrix Cookbook §2.1 (determinant)" in text
    assert f"{len(catalogue.select('Cookbook'))} entries" in text


def test_console_script_end_to_end(tmp_path):
    out = tmp_path / "c.json"
    proc = subprocess.run(
        [sys.executable, "-m", "mmljax", "check", "-k", "d/dx tanh x", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    assert [e["name"] for e in data["entries"]] == ["d/dx tanh x"] and data["ok"]
    assert "1 entries: 1 pass" in proc.stdout
