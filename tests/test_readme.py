"""README.md stays true: its Python snippets run, and CI runs exactly its Quick start commands."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SNIPPETS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_readme_has_python_snippets():
    assert len(SNIPPETS) >= 2


@pytest.mark.parametrize("i", range(len(SNIPPETS)))
def test_readme_snippet_runs(i, tmp_path):
    """Each snippet runs on its own in a fresh interpreter (as a newcomer would paste it)."""
    script = tmp_path / f"snippet_{i}.py"
    script.write_text(SNIPPETS[i])
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"README snippet {i} failed:\n{SNIPPETS[i]}\n--- stderr ---\n{out.stderr[-3000:]}"


def _quick_start_commands():
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)


def test_quick_start_is_exactly_two_commands():
    cmds = _quick_start_commands()
    assert len(cmds) == 2 and all("\n" not in c for c in cmds)
    assert "mmljax check" in cmds[0] and "pytest" in cmds[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd = _quick_start_commands()[1]
    # every step of the README's command appears in .ci/run, in order
    steps = [s.strip() for s in test_cmd.split("&&")]
    positions = [ci.find(step) for step in steps]
    assert all(p >= 0 for p in positions), f"README step missing from .ci/run: {steps} vs\n{ci}"
    assert positions == sorted(positions)
