"""The documentation site stays true: every Python example of `docs/**/*.md` runs, and the API
reference covers every public name.

The blocks of one page run in order in one namespace, in a fresh interpreter per page (a page is
read top to bottom, as a newcomer would paste it). The site itself is built by
`python -m mkdocs build --strict` in CI (`.ci/run`), which also fails on a broken link.
"""

import importlib
import inspect
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", flags=re.DOTALL | re.MULTILINE)

RUNNER = textwrap.dedent(
    """
    import sys, traceback
    blocks = {blocks!r}
    namespace = {{"__name__": "__main__"}}
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"{page}[block {{i}}]", "exec"), namespace)
        except BaseException:
            traceback.print_exc()
            print(f"\\n--- block {{i}} of {page} failed:\\n{{code}}", file=sys.stderr)
            sys.exit(1)
    """
)


def _blocks(page: str) -> list[str]:
    return BLOCK.findall((DOCS / page).read_text())


def _load_hooks():
    spec = importlib.util.spec_from_file_location("mmljax_docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pages_have_examples():
    with_code = [p for p in PAGES if _blocks(p)]
    assert len(with_code) >= 10, with_code


@pytest.mark.parametrize("page", PAGES)
def test_code_fences_are_closed(page):
    fences = re.findall(r"^\s*```", (DOCS / page).read_text(), flags=re.MULTILINE)
    assert len(fences) % 2 == 0, f"docs/{page}: a code block is not closed"


@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p)])
def test_page_examples_run(page, tmp_path):
    script = tmp_path / "page.py"
    script.write_text(RUNNER.format(blocks=_blocks(page), page=page))
    out = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    assert out.returncode == 0, f"docs/{page}: an example failed\n--- stderr ---\n{out.stderr[-4000:]}"


def _api_text(hooks) -> str:
    """The API reference pages with their `<!-- mmljax:api ... -->` directives expanded."""
    return "".join(hooks.expand_api(page.read_text()) for page in sorted((DOCS / "api").glob("*.md")))


def test_api_reference_covers_every_public_name():
    hooks = _load_hooks()
    documented = set(re.findall(r"^::: (\S+)", _api_text(hooks), flags=re.MULTILINE))
    missing = []
    for module_name in hooks.documented_modules():
        module = importlib.import_module(module_name)
        if module_name not in documented:
            missing.append(module_name)
        # the names the hooks call public ...
        names = set(hooks.public_names(module_name))
        # ... and, independently, every public function or class defined in the module (for `mmljax`:
        # every public function or class of mmljax it exposes)
        for n, obj in vars(module).items():
            if n.startswith("_") or inspect.ismodule(obj):
                continue
            defined_here = module_name == "mmljax" or getattr(obj, "__module__", None) == module_name
            if (
                (inspect.isclass(obj) or inspect.isfunction(obj))
                and obj.__module__.startswith("mmljax")
                and defined_here
            ):
                names.add(n)
        for n in sorted(names):
            obj = getattr(module, n)
            if inspect.ismodule(obj):
                if obj.__name__ not in documented:
                    missing.append(obj.__name__)
            elif f"{module_name}.{n}" not in documented:
                missing.append(f"{module_name}.{n}")
    assert not missing, (
        f"public names missing from the API reference: {missing}; add a page under docs/api/ "
        f"with `<!-- mmljax:api MODULE -->` (and a nav entry in mkdocs.yml), or use "
        f"`<!-- mmljax:api-package PACKAGE -->` on the package's page"
    )


def test_every_public_subpackage_is_documented():
    hooks = _load_hooks()
    modules = hooks.documented_modules()
    for sub in (
        "mmljax.solvers",
        "mmljax.models",
        "mmljax.models.mlp",
        "mmljax.catalogue",
        "mmljax.distributed",
        "mmljax.analysis",
        "mmljax.data",
        "mmljax.losses",
        "mmljax.errors",
        "mmljax.linalg",
    ):
        assert sub in modules
    for page in ("catalogue.md", "least-squares.md", "experiments.md", "benchmarks.md"):
        assert "<!-- mmljax:" in (DOCS / page).read_text(), f"docs/{page} should be generated, not copied"


def test_unknown_directive_stops_the_build():
    hooks = _load_hooks()
    with pytest.raises(hooks.DocsError, match="unknown directive"):
        hooks.expand("text\n<!-- mmljax:catalog -->\n", "page.md")
    with pytest.raises(hooks.DocsError, match="no file"):
        hooks.expand("<!-- mmljax:include experiments/NOPE.md -->\n", "page.md")


def test_check_json_must_match_the_catalogue(tmp_path, monkeypatch):
    """A stale `mmljax check --json` file is refused rather than shown."""
    import json

    hooks = _load_hooks()
    stale = {"schema": "mmljax.check/1", "entries": [{"name": "an old row", "source": "s"}]}
    path = tmp_path / "check.json"
    path.write_text(json.dumps(stale))
    monkeypatch.setenv(hooks.CHECK_JSON_ENV, str(path))
    with pytest.raises(hooks.DocsError, match="does not match the catalogue"):
        hooks.catalogue_reports()


def _fake_check_json(tmp_path, hooks, fail: str | None = None):
    """A `mmljax check --json` file for the current rows, without running the checks."""
    import json

    import jax

    jax.config.update("jax_enable_x64", True)
    from mmljax import catalogue

    entries = []
    for row in catalogue.all_identities():
        status = "known wrong" if row.expect_fail else "pass"
        if row.name == fail:
            status = "fail"
        entries.append(
            {
                "name": row.name,
                "source": row.source,
                "status": status,
                "passed": status != "fail",
                "autodiff_rel": 1e-16,
                "finite_diff_rel": 1e-10,
                "taylor_order": 2.0,
            }
        )
    data = {
        "schema": "mmljax.check/1",
        "entries": entries,
        "seconds": 1.0,
        "device": "cpu",
        "config": {"sizes": "small", "draws": 2, "seed": 0},
    }
    path = tmp_path / "check.json"
    path.write_text(json.dumps(data))
    return path


def test_catalogue_page_lists_every_row_grouped_by_source(tmp_path, monkeypatch):
    from mmljax import catalogue
    from mmljax.cli.check import source_group

    hooks = _load_hooks()
    monkeypatch.setenv(hooks.CHECK_JSON_ENV, str(_fake_check_json(tmp_path, hooks)))
    page = hooks.catalogue_markdown()
    rows = catalogue.all_identities()
    table_rows = [line for line in page.splitlines() if line.startswith("| ") and not line.startswith("| identity")]
    assert len(table_rows) == len(rows) >= 141
    for row in rows:
        assert hooks._cell(row.name) in page and hooks._cell(row.source) in page
        assert f"## {source_group(row.source, row.domain)}" in page
    # the corrected citations show
    assert "§2.4.4 eq. (98)" in page and "§2.6.1 eq. (131)" in page and "eq. (141)" in page and "eq. (521)" in page


def test_a_failing_catalogue_row_stops_the_build(tmp_path, monkeypatch):
    from mmljax import catalogue

    hooks = _load_hooks()
    name = catalogue.all_identities()[0].name
    monkeypatch.setenv(hooks.CHECK_JSON_ENV, str(_fake_check_json(tmp_path, hooks, fail=name)))
    with pytest.raises(hooks.DocsError, match="fail the check"):
        hooks.catalogue_markdown()


def test_strd_table_is_computed_from_the_fits():
    hooks = _load_hooks()
    rows = hooks.strd_rows()
    assert [r["name"] for r in rows] == [
        "Norris",
        "Pontius",
        "NoInt1",
        "NoInt2",
        "Filip",
        "Longley",
        "Wampler1",
        "Wampler2",
        "Wampler3",
        "Wampler4",
        "Wampler5",
    ]
    assert all(r["coefficients"] >= 12 and r["standard_errors"] >= 10 for r in rows)
    filip = next(r for r in rows if r["name"] == "Filip")
    assert filip["normal"] < 3 and filip["raw_condition"] > 1e10  # the normal equations lose every digit
    assert hooks.strd_markdown().count("\n| ") == 11


def test_cli_help_is_generated_from_the_parser():
    hooks = _load_hooks()
    text = hooks.expand("<!-- mmljax:cli-help check -->\n", "page.md")
    assert text.startswith("```text\nusage: mmljax check") and "--json PATH" in text
    with pytest.raises(hooks.DocsError, match="no command"):
        hooks.expand("<!-- mmljax:cli-help nope -->\n", "page.md")
