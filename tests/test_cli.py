"""The `mmljax` command: help texts, `python -m mmljax`, usage errors."""

import subprocess
import sys

import pytest

from mmljax import cli


def test_main_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for mod in cli.COMMANDS:
        assert mod.NAME in out


@pytest.mark.parametrize("name", [m.NAME for m in cli.COMMANDS])
def test_each_subcommand_explains_itself(name, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([name, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: mmljax {name}" in out and len(out) > 200


def test_no_command_prints_help_and_fails(capsys):
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_unknown_option_is_a_usage_error():
    with pytest.raises(SystemExit) as e:
        cli.main(["check", "--no-such-option"])
    assert e.value.code == 2


def test_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "mmljax", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("mmljax ")
