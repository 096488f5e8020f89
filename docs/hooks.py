"""MkDocs hooks: the parts of the site that are generated from the code at build time.

A page asks for generated content with a directive on a line of its own:

- `<!-- mmljax:catalogue -->`: every row of `mmljax.catalogue`, grouped by source, with the
  checker's verdict on it from this build (or from `mmljax check --json`, see `catalogue_reports`);
- `<!-- mmljax:strd-table -->`: the NIST StRD accuracy table, computed by fitting the 11 datasets now;
- `<!-- mmljax:strd-nls-table -->`: the NIST StRD nonlinear table, computed by fitting every shipped
  problem from both starting points now;
- `<!-- mmljax:api MODULE -->`: one mkdocstrings block per public name of `MODULE`;
  `<!-- mmljax:api-package PACKAGE -->` the same for a package and every public module below it;
- `<!-- mmljax:include PATH -->`: a Markdown file of the repository (its first heading dropped,
  the others one level down, figure links pointing into the site);
- `<!-- mmljax:cli-help [COMMAND] -->`: the `--help` text of `mmljax` or one of its commands.

An unknown directive, a missing file or figure, a catalogue JSON that does not match the rows, or a
row that fails the check stops the build: nothing here can go stale silently.
"""

from __future__ import annotations

import ast
import hashlib
import html
import importlib
import inspect
import io
import json
import logging
import math
import os
import pkgutil
import re
import sys
import time
import warnings
from contextlib import redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIRECTIVE = re.compile(r"^<!-- mmljax:(?P<name>[a-z-]+)(?P<args>[^>]*?)\s*-->\s*$", re.MULTILINE)
FIGURE_DIRS = {"experiments/figures": "assets/experiments"}
CHECK_JSON_ENV = "MMLJAX_DOCS_CHECK_JSON"

log = logging.getLogger("mkdocs.plugins.mmljax")


class DocsError(RuntimeError):
    """A generated part of the site cannot be produced (the build stops)."""


# ------------------------------------------------------------------------------ public names


def _module_source(module) -> str | None:
    path = getattr(module, "__file__", None)
    return Path(path).read_text() if path and path.endswith(".py") else None


def public_names(module_name: str) -> list[str]:
    """The public names of a module, in source order.

    `__all__` when the module defines it; otherwise what its source makes public: top-level `def`
    and `class` statements and assignments whose names do not start with `_`, and explicit
    re-exports (`from .x import y as y`, `from . import sub as sub`).
    """
    module = importlib.import_module(module_name)
    if hasattr(module, "__all__"):
        return list(module.__all__)
    source = _module_source(module)
    if source is None:
        return []
    names: list[str] = []
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            names.append(node.target.id)
        elif isinstance(node, (ast.ImportFrom, ast.Import)):
            names += [a.asname for a in node.names if a.asname and a.asname == a.name.split(".")[-1]]
    seen: list[str] = []
    for n in names:
        if not n.startswith("_") and n not in seen and hasattr(module, n):
            seen.append(n)
    return seen


def documented_modules() -> list[str]:
    """Every module whose public names the API reference documents: `mmljax`, each of its
    subpackages, and every module that one of them re-exports as a public name."""
    import mmljax

    todo = ["mmljax"] + [
        m.name for m in pkgutil.walk_packages(mmljax.__path__, "mmljax.") if m.ispkg and "._" not in m.name
    ]
    done: list[str] = []
    while todo:
        name = todo.pop(0)
        if name in done:
            continue
        done.append(name)
        module = importlib.import_module(name)
        for n in public_names(name):
            obj = getattr(module, n)
            if inspect.ismodule(obj) and obj.__name__.startswith("mmljax.") and obj.__name__ not in done:
                todo.append(obj.__name__)
    return done


def api_blocks(module_name: str) -> str:
    """Markdown for the API of one module: its docstring, then one block per public name.

    Public submodules get a link to their own section or page instead of a block. Names of the
    top-level package are grouped by the module that defines them.
    """
    module = importlib.import_module(module_name)
    out = [
        (
            f"::: {module_name}\n    options:\n      members: false\n      show_root_heading: false\n"
            f"      show_root_toc_entry: false\n"
        )
    ]
    groups: dict[str, list[str]] = {}
    submodules = []
    for n in public_names(module_name):
        obj = getattr(module, n)
        if inspect.ismodule(obj):
            submodules.append(obj.__name__)
            continue
        home = getattr(obj, "__module__", None) if (inspect.isclass(obj) or callable(obj)) else None
        groups.setdefault(home if module_name == "mmljax" and home else module_name, []).append(n)
    for home, names in groups.items():
        if module_name == "mmljax" and len(groups) > 1:
            doc = (inspect.getdoc(importlib.import_module(home)) or "").split("\n\n")[0].replace("\n", " ")
            out.append(f"## From `{home}`\n\n{doc}\n")
        for n in names:
            out.append(f"::: {module_name}.{n}\n")
    if submodules:

        def entry(sub: str) -> str:
            page = ROOT / "docs" / "api" / f"{sub.split('.')[-1]}.md"
            return f"- [`{sub}`]({page.name})" if module_name == "mmljax" and page.is_file() else f"- `{sub}`"

        out.append("## Submodules\n\n" + "\n".join(entry(s) for s in submodules) + "\n")
    return "\n".join(out)


def api_package_blocks(package: str) -> str:
    """`api_blocks` of a package, then a section with `api_blocks` of each public submodule and
    subpackage below it (recursively), so a new submodule appears without editing the page."""
    out = [api_blocks(package)]
    children = [m for m in documented_modules() if m.startswith(package + ".")]
    for child in children:
        out.append(f"## `{child}`\n\n{api_blocks(child)}")
    return "\n".join(out)


def expand_api(markdown: str) -> str:
    """Expand only the `api` and `api-package` directives (what the API reference pages use)."""

    def one(m: re.Match) -> str:
        name, args = m.group("name"), m.group("args").split()
        if name == "api" and len(args) == 1:
            return api_blocks(args[0])
        if name == "api-package" and len(args) == 1:
            return api_package_blocks(args[0])
        return m.group(0)

    return DIRECTIVE.sub(one, markdown)


# ------------------------------------------------------------------------------ catalogue


def _x64():
    import jax

    jax.config.update("jax_enable_x64", True)


def _catalogue_key() -> str:
    """A hash of the package's sources: the checker's results are reused only for the same code."""
    h = hashlib.sha256()
    for p in sorted((ROOT / "mmljax").rglob("*.py")):
        h.update(p.read_bytes())
    return h.hexdigest()


_CACHE: dict[str, object] = sys.modules.setdefault("_mmljax_docs_cache", type(sys)("_mmljax_docs_cache")).__dict__


def catalogue_reports() -> tuple[list[dict], str]:
    """The checker's verdict on every catalogue row, as the dicts `mmljax check --json` writes.

    With `MMLJAX_DOCS_CHECK_JSON=PATH` (a file written by `mmljax check --json PATH`) the verdicts
    are read from it, after checking that it covers exactly the current rows; otherwise every row is
    checked now (`sizes="small"`, one draw: about half a minute on two cores). Either way a failing
    row stops the build.
    """
    _x64()
    from mmljax import catalogue

    rows = catalogue.all_identities()
    path = os.environ.get(CHECK_JSON_ENV)
    if path:
        data = json.loads(Path(path).read_text())
        if data.get("schema") != "mmljax.check/1":
            raise DocsError(f"{path}: not a `mmljax check --json` file (schema {data.get('schema')!r})")
        got = [(e["name"], e["source"]) for e in data["entries"]]
        want = [(r.name, r.source) for r in rows]
        if got != want:
            missing = sorted({n for n, _ in want} - {n for n, _ in got})
            extra = sorted({n for n, _ in got} - {n for n, _ in want})
            raise DocsError(
                f"{path} does not match the catalogue (rerun `mmljax check --json`): "
                f"missing {missing[:5]}, extra {extra[:5]}, or rows changed/reordered"
            )
        how = (
            f"`mmljax check --json` ({data['config']['sizes']} sizes, {data['config']['draws']} draws, "
            f"seed {data['config']['seed']}; {data['seconds']:.0f} s on {data['device']})"
        )
        return data["entries"], how
    key = _catalogue_key()
    if _CACHE.get("catalogue_key") != key:
        t0 = time.perf_counter()
        reports = catalogue.run(rows, sizes="small", seed=0, draws=1)
        _CACHE["catalogue"] = [r.to_dict() for r in reports]
        _CACHE["catalogue_seconds"] = time.perf_counter() - t0
        _CACHE["catalogue_key"] = key
        log.info("mmljax: checked %d catalogue rows in %.1f s", len(reports), _CACHE["catalogue_seconds"])
    how = f"this build of the site (small sizes, one draw, seed 0; {_CACHE['catalogue_seconds']:.0f} s)"
    return _CACHE["catalogue"], how


def _cell(text: str) -> str:
    return html.escape(str(text)).replace("|", "&#124;").replace("\n", " ")


def _fmt(x) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:.0e}" if x != 0 else "0"


def _formula(fn) -> str:
    """The hand formula as code: the body of a lambda, the returned expression of a one-line `def`,
    or the name of a function."""
    if fn is None:
        return ""
    try:
        code = fn.__code__
        lines, _ = inspect.findsource(fn)
    except (AttributeError, TypeError, OSError):
        name = getattr(fn, "__name__", None) or repr(fn)
        mod = getattr(fn, "__module__", None) or ""
        if mod.startswith(("jax.numpy", "jax._src.numpy")):
            return f"jnp.{name}"
        return f"{mod.split('.')[0]}.{name}" if mod else name
    tree = ast.parse("".join(lines))
    if fn.__name__ != "<lambda>":
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name == fn.__name__ and node.lineno <= code.co_firstlineno:
                body = [b for b in node.body if not (isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant))]
                if len(body) == 1 and isinstance(body[0], ast.Return) and body[0].value is not None:
                    return ast.unparse(body[0].value)
        return f"{fn.__name__}(…)"
    positions = {(ln, col) for ln, _, col, _ in code.co_positions() if ln is not None and col is not None}
    for node in ast.walk(tree):
        if isinstance(node, ast.Lambda) and node.lineno == code.co_firstlineno:
            body = node.body
            if any((body.lineno, body.col_offset) <= p <= (body.end_lineno, body.end_col_offset) for p in positions):
                return ast.unparse(body)
    return f"{fn.__name__}(…)"


def catalogue_markdown() -> str:
    from mmljax import catalogue
    from mmljax.cli.check import _group_key, source_group

    rows = catalogue.all_identities()
    reports, how = catalogue_reports()
    failed = [r for r in reports if not r["passed"]]
    if failed:
        raise DocsError("catalogue rows fail the check: " + "; ".join(f"{r['name']}: {r['status']}" for r in failed))
    groups: dict[str, list] = {}
    for row, rep in zip(rows, reports):
        groups.setdefault(source_group(row.source, row.domain), []).append((row, rep))
    counts: dict[str, int] = {}
    for rep in reports:
        counts[rep["status"]] = counts.get(rep["status"], 0) + 1
    out = [
        (
            f"**{len(rows)} identities** in {len(groups)} groups; checked by {how}: "
            + ", ".join(f"{n} {s}" for s, n in counts.items())
            + ".\n"
        ),
        (
            "Columns: the identity as the source writes it; the hand formula as the catalogue codes it "
            "(`derivative=`, or `minimiser=` for a closed-form minimiser); the source; what is checked "
            "(`jacobian`, `hessian` or `minimiser`, and the `vec` layout where used); the verdict, with "
            "the worst relative error of the hand formula against autodiff and against finite "
            "differences, and the observed Taylor-remainder order (2 for a correct derivative).\n"
        ),
    ]
    for group in sorted(groups, key=_group_key):
        entries = groups[group]
        out.append(f"## {group}\n")
        out.append("| identity | hand formula | source | checks | status | vs autodiff | vs finite diff. | Taylor |")
        out.append("|---|---|---|---|---|---|---|---|")
        for row, rep in entries:
            formula = _formula(row.derivative if row.derivative is not None else row.minimiser)
            kind = row.kind + (" (vec)" if row.layout == "vec" else "")
            status = rep["status"] if rep["status"] != "known wrong" else "known wrong (rejected)"
            taylor = rep.get("taylor_order")
            out.append(
                f"| {_cell(row.name)} | <code>{_cell(formula)}</code> | {_cell(row.source)} | {kind} "
                f"| {_cell(status)} | {_fmt(rep.get('autodiff_rel'))} | {_fmt(rep.get('finite_diff_rel'))} "
                f"| {'—' if taylor is None or not math.isfinite(taylor) else f'{taylor:.1f}'} |"
            )
        notes = [(row.name, row.note) for row, _ in entries if row.note]
        if notes:
            out.append("")
            out += [f"- *{_cell(n)}*: {_cell(t)}" for n, t in notes]
        out.append("")
    return "\n".join(out)


# ------------------------------------------------------------------------------ StRD table


def _raw_design(ds):
    import numpy as np

    if ds.kind == "polynomial":
        return np.column_stack([ds.x**j for j in range(0 if ds.intercept else 1, ds.degree + 1)])
    return np.column_stack([np.ones(ds.n), ds.X]) if ds.intercept else ds.X


def strd_rows() -> list[dict]:
    """Fit the 11 StRD datasets with the default solver and score them (cached per source hash)."""
    key = _catalogue_key()
    if _CACHE.get("strd_key") == key:
        return _CACHE["strd"]
    _x64()
    import numpy as np

    from mmljax.data import STRD_NAMES, load_strd, log_relative_error, strd_scores

    rows = []
    for name in STRD_NAMES:
        ds = load_strd(name)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a warning on a certified dataset is a regression: stop
            fit = ds.fit()
        A = _raw_design(ds)
        with np.errstate(all="ignore"):
            lstsq = np.linalg.lstsq(A, ds.y, rcond=None)[0]
            try:
                normal = np.linalg.solve(A.T @ A, A.T @ ds.y)
            except np.linalg.LinAlgError:
                normal = np.full(A.shape[1], np.nan)
        rows.append(
            dict(
                name=name,
                n=ds.n,
                p=len(ds.certified_coefficients),
                difficulty=ds.difficulty,
                raw_condition=float(np.linalg.cond(A)),
                condition_number=float(np.asarray(fit.condition_number)),
                **strd_scores(ds, fit),
                lstsq=float(log_relative_error(lstsq, ds.certified_coefficients).min()),
                normal=float(log_relative_error(normal, ds.certified_coefficients).min()),
            )
        )
    _CACHE["strd"], _CACHE["strd_key"] = rows, key
    return rows


def strd_markdown() -> str:
    out = [
        (
            "| dataset | n | p | difficulty | cond. (raw) | cond. (solved) | coefficients | std. errors "
            "| residual SD | R² | numpy `lstsq` | normal equations |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in strd_rows():
        out.append(
            f"| {r['name']} | {r['n']} | {r['p']} | {r['difficulty']} | {r['raw_condition']:.1e} "
            f"| {r['condition_number']:.1e} "
            f"| {r['coefficients']:.1f} | {r['standard_errors']:.1f} | {r['residual_sd']:.1f} "
            f"| {r['r_squared']:.1f} | {r['lstsq']:.1f} | {r['normal']:.1f} |"
        )
    return "\n".join(out) + "\n"


def strd_nls_rows() -> list[dict] | None:
    """Fit both starts of every shipped NIST StRD nonlinear problem with default settings and score
    them; None when this version of mmljax has no `nonlinear_least_squares`. Problems run on a few
    threads (compiling dominates, and XLA compiles without holding the GIL)."""
    _x64()
    from mmljax import data, solvers

    if not hasattr(solvers, "nonlinear_least_squares"):
        return None
    key = _catalogue_key()
    if _CACHE.get("nls_key") == key:
        return _CACHE["nls"]
    from concurrent.futures import ThreadPoolExecutor

    def one(name: str) -> list[dict]:
        problem = data.load_strd_nls(name)
        rows = []
        for i, start in enumerate(problem.starts, 1):
            t0 = time.perf_counter()
            fit = solvers.nonlinear_least_squares(problem.residuals, start, problem.args)
            seconds = time.perf_counter() - t0
            rows.append(
                dict(
                    name=name,
                    start=i,
                    n=problem.n_observations,
                    p=problem.n_params,
                    difficulty=problem.difficulty,
                    steps=int(fit.steps),
                    converged=bool(fit.converged),
                    seconds=seconds,
                    **problem.scores(fit),
                )
            )
        return rows

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=min(os.cpu_count() or 1, 4)) as pool:
        rows = [row for rows in pool.map(one, data.STRD_NLS_NAMES) for row in rows]
    log.info("mmljax: fitted %d NIST nonlinear runs in %.1f s", len(rows), time.perf_counter() - t0)
    _CACHE["nls"], _CACHE["nls_key"] = rows, key
    return rows


def strd_nls_markdown() -> str:
    rows = strd_nls_rows()
    if rows is None:
        return (
            '!!! note "Generated when the site is built"\n    This table is computed by running '
            "`mmljax.solvers.nonlinear_least_squares` on every shipped problem; this version of "
            "mmljax does not provide it.\n"
        )
    fmt = lambda v: "—" if v is None else f"{v:.1f}"
    out = [
        ("| problem | start | n | p | difficulty | parameters | std. errors | residual SD | steps | converged |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['name']} | {r['start']} | {r['n']} | {r['p']} | {r['difficulty']} | {fmt(r['params'])} "
            f"| {fmt(r['standard_errors'])} | {fmt(r['residual_sd'])} | {r['steps']} "
            f"| {'yes' if r['converged'] else '**no**'} |"
        )
    params = [r["params"] for r in rows]
    out.append(
        f"\n{len(rows)} runs: parameters' LRE mean {sum(params) / len(params):.2f}, worst {min(params):.1f} "
        f"(default settings, float64).\n"
    )
    return "\n".join(out)


# ------------------------------------------------------------------------------ includes, CLI help


def include_markdown(relpath: str) -> str:
    path = ROOT / relpath
    if not path.is_file():
        raise DocsError(f"include: no file {relpath}")
    text = path.read_text()
    lines = text.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    out, fence = [], False
    for line in lines:
        if line.lstrip().startswith("```"):
            fence = not fence
        if not fence and re.match(r"#{1,5} ", line):
            line = "#" + line
        out.append(line)
    text = "\n".join(out)
    base = path.parent.relative_to(ROOT).as_posix()

    def figure(m: re.Match) -> str:
        target = (path.parent / m.group(2)).resolve().relative_to(ROOT).as_posix()
        for src, dest in FIGURE_DIRS.items():
            if target.startswith(src + "/"):
                if ROOT / target not in committed_figures(src):
                    raise DocsError(f"{relpath}: figure {m.group(2)} is not a committed file")
                return f"![{m.group(1)}]({dest}/{target[len(src) + 1 :]})"
        raise DocsError(f"{relpath}: figure {m.group(2)} is outside {sorted(FIGURE_DIRS)}")

    text = re.sub(r"!\[([^\]]*)\]\(([^)\s]+)\)", figure, text)
    # links to other files of the repository are shown as code (the site holds only the docs)
    text = re.sub(
        r"(?<!!)\[([^\]]+)\]\((?!https?://|#)([^)\s]+)\)", lambda m: f"{m.group(1)} (`{base}/{m.group(2)}`)", text
    )
    return text


def cli_help(command: str | None) -> str:
    from mmljax.cli import build_parser

    parser = build_parser()
    if command:
        sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        if command not in sub.choices:
            raise DocsError(f"cli-help: no command {command!r}")
        parser = sub.choices[command]
    buf = io.StringIO()
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "110"  # argparse wraps to the terminal: the same width on every machine
    try:
        with redirect_stdout(buf):
            parser.print_help()
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    return "```text\n" + buf.getvalue().rstrip() + "\n```\n"


# ------------------------------------------------------------------------------ MkDocs events


def expand(markdown: str, where: str = "<page>") -> str:
    """Replace every `<!-- mmljax:... -->` directive of a page by what it generates."""

    def one(m: re.Match) -> str:
        name, args = m.group("name"), m.group("args").split()
        if name == "catalogue":
            return catalogue_markdown()
        if name == "strd-table":
            return strd_markdown()
        if name == "strd-nls-table":
            return strd_nls_markdown()
        if name == "api" and len(args) == 1:
            return api_blocks(args[0])
        if name == "api-package" and len(args) == 1:
            return api_package_blocks(args[0])
        if name == "include" and len(args) == 1:
            return include_markdown(args[0])
        if name == "cli-help" and len(args) <= 1:
            return cli_help(args[0] if args else None)
        raise DocsError(f"{where}: unknown directive {m.group(0)!r}")

    return DIRECTIVE.sub(one, markdown)


def on_page_markdown(markdown, page, config, files):
    return expand(markdown, page.file.src_uri)


def committed_figures(src: str) -> list[Path]:
    """The PNG figures of `src` that git tracks (all of them when this is not a git checkout)."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--", f"{src}/*.png"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        return sorted(ROOT / p for p in out.split("\0") if p)
    except (OSError, subprocess.CalledProcessError):
        return sorted((ROOT / src).glob("*.png"))


def on_files(files, config):
    from mkdocs.structure.files import File

    for src, dest in FIGURE_DIRS.items():
        for png in committed_figures(src):
            files.append(File.generated(config, f"{dest}/{png.name}", abs_src_path=str(png)))
    return files
