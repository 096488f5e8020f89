"""`mmljax check`: run the identity catalogue (and model checks) in float64 and print a table.

Exit status: 0 when every entry passes (expected-failure entries must fail), 1 when any entry
fails, errors or unexpectedly passes, 2 on a usage error (bad option, no entry matches `-k`, a
`--load` file that is missing or raises).

JSON (`--json PATH`, written atomically), schema "mmljax.check/1"::

    {
      "schema": "mmljax.check/1",
      "ok": bool,                       # the exit status is 0
      "passed": int, "total": int,      # entries counted as successes / run
      "counts": {"pass": int, "known wrong": int, "fail": int, "unexpected pass": int, "error": int},
      "seconds": float,                 # wall time of the checks
      "config": {"sizes": "small"|"medium", "seed": int, "draws": int, "pattern": str|null,
                 "workers": int, "dtype": "float64", "loaded": [str]},
      "versions": {"jax": str, "jaxlib": str, "numpy": str, "mmljax": str, "python": str},
      "device": str,
      "entries": [                      # one per entry, in catalogue order
        {"name": str, "source": str, "group": str, "domain": str,
         "kind": "jacobian"|"hessian"|"minimiser", "status": str, "passed": bool,
         "expect_fail": bool,
         "autodiff_rel": float|null,    # worst of jacfwd/jacrev (minimisers: relative Newton step)
         "finite_diff_rel": float|null, "taylor_order": float|null,
         "witnesses": {str: float|null},   # worst per witness, see IdentityReport
         "shapes": [[int]], "sizes": [int], "checks": int, "failed": int,
         "seconds": float, "message": str, "note": str}
      ]
    }

Non-finite numbers are written as null.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import platform
import re
import time
from pathlib import Path

from ._output import check_outputs, write_output

NAME = "check"
HELP = "verify every hand-derived derivative against autodiff and finite differences"
DESCRIPTION = """\
Checks every entry of the identity catalogue (lecture derivations, Matrix Cookbook identities,
model gradients/Hessians/Jacobians) three ways — hand formula vs jacfwd and jacrev, vs central
finite differences, and a Taylor-remainder test — in float64, at several sizes and random draws.
Known-wrong entries (the lecture's printed erratum) must be rejected and show as "known wrong".
Exit status: 0 when every entry passes, 1 when any fails, 2 on a usage error.
"""

STATUSES = ("pass", "known wrong", "fail", "unexpected pass", "error")
_STYLE = {
    "pass": "green",
    "known wrong": "yellow",
    "fail": "bold red",
    "unexpected pass": "bold red",
    "error": "bold red",
}
_LECTURES = {
    "1.1": "linear regression",
    "1.2": "scalar differentiation",
    "1.3": "scalar-by-vector differentiation",
    "1.4": "vector-by-vector differentiation",
    "1.5": "Hessians",
    "2": "matrix derivatives and backpropagation",
}
_COOKBOOK = {
    "2.1": "determinant",
    "2.2": "inverse",
    "2.3": "eigenvalues",
    "2.4": "matrices, vectors and scalar forms",
    "2.5": "traces",
    "2.6": "vector norms",
    "2.7": "matrix norms",
    "2.8": "structured matrices",
    "10.2": "Kronecker product and vec",
}
_LECTURE = re.compile(r"^Lecture ([0-9]+(?:\.[0-9]+)?)( \([^)]*\))?")
_SECTION = re.compile(r"^Matrix Cookbook §([0-9]+\.[0-9]+)(?:\.[0-9]+)*( \([^)]*\))?")
_SECOND = "Second order (Hessians)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--list", action="store_true", help="list the entries (name, source, domain) and exit")
    p.add_argument(
        "-k",
        dest="pattern",
        metavar="PATTERN",
        help="only entries whose name/source/domain matches (substring or glob)",
    )
    p.add_argument(
        "--sizes",
        choices=("small", "medium"),
        default="small",
        help="input sizes per entry: small (two, e.g. 2 and 4) or medium (three, e.g. 8, 16, 24; large Jacobians "
        "checked along random directions) (default: small)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed for the input draws (default: 0)")
    p.add_argument("--draws", type=int, default=2, help="random draws per size (default: 2)")
    p.add_argument(
        "--json",
        metavar="PATH",
        help="also write the results as JSON (atomically; schema 'mmljax.check/1', described in mmljax/cli/check.py)",
    )
    p.add_argument(
        "--load",
        metavar="FILE",
        action="append",
        default=[],
        help="import a Python file that registers extra entries with mmljax.catalogue.register (repeatable)",
    )
    p.add_argument(
        "--workers", type=int, default=None, help="entries checked concurrently (default: one per CPU core, at most 4)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def source_group(source: str, domain: str) -> str:
    """The table section of an entry: its lecture, its Matrix Cookbook section, the second-order
    identities, or "<domain>: other references"."""
    m = _LECTURE.match(source)
    if m:
        return f"Lecture {m.group(1)} ({_LECTURES.get(m.group(1), 'other')})"
    m = _SECTION.match(source)
    if m:
        return f"Matrix Cookbook §{m.group(1)} ({_COOKBOOK.get(m.group(1), 'other')})"
    if source.startswith(_SECOND):
        return _SECOND
    if source.startswith("Matrix Cookbook"):
        return "Matrix Cookbook (other sections)"
    return f"{domain}: other references"


def _group_key(group: str):
    nums = [int(n) for n in re.findall(r"\d+", group.split("(")[0])]
    rank = (
        0
        if group.startswith("Lecture")
        else 1
        if group.startswith("Matrix Cookbook §")
        else 2
        if group.startswith("Matrix Cookbook")
        else 3
        if group.startswith("Second order")
        else 4
    )
    return (rank, nums, group)


def _ref(source: str, group: str) -> str:
    """The part of the source that the group heading does not already say."""
    for prefix in (group, group.split(" (")[0]):
        if source.startswith(prefix):
            return source[len(prefix) :].lstrip(" ,;:") or "—"
    return source


def _load_user_file(path: str) -> None:
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"--load {path}: no such file")
    spec = importlib.util.spec_from_file_location(f"mmljax_user_{file.stem}", file)
    if spec is None or spec.loader is None:
        raise ValueError(f"--load {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the user's file failed: one line, not a traceback (MMLJAX_DEBUG=1 shows it)
        if os.environ.get("MMLJAX_DEBUG"):
            raise
        raise ValueError(f"--load {path}: the file raised {type(e).__name__}: {e}") from e


def _fmt(x: float | None) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.1e}"


def _shapes(shapes) -> str:
    seen = []
    for s in shapes:
        t = "x".join(map(str, s)) or "()"
        if t not in seen:
            seen.append(t)
    return ", ".join(seen)


def _list_table(rows, Table):
    from rich.markup import escape

    table = Table(title=f"mmljax catalogue: {len(rows)} entries")
    for col in ("group", "name", "source", "kind"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            escape(source_group(r.source, r.domain)),
            escape(r.name),
            escape(r.source),
            r.kind + (" (expected to fail)" if r.expect_fail else ""),
        )
    return table


def _result_table(reports, title, Table):
    from rich.markup import escape

    table = Table(title=title)
    cols = (
        ("name", "left"),
        ("ref", "left"),
        ("shapes", "left"),
        ("vs jacfwd", "right"),
        ("vs jacrev", "right"),
        ("vs finite diff", "right"),
        ("Taylor order", "right"),
        ("time", "right"),
        ("result", "left"),
    )
    for col, just in cols:
        table.add_column(col, justify=just, overflow="fold")
    groups: dict[str, list] = {}
    for rep in reports:
        groups.setdefault(source_group(rep.source, rep.domain), []).append(rep)
    for group in sorted(groups, key=_group_key):
        table.add_section()
        table.add_row(f"[bold]{escape(group)}[/bold]", *[""] * (len(cols) - 1))
        for r in groups[group]:
            if r.kind == "minimiser":  # Newton step and smallest Hessian eigenvalue at the claimed minimiser
                fwd = f"step {_fmt(r.witnesses.get('newton_step'))}"
                rev = f"λmin {_fmt(r.witnesses.get('min_eigenvalue'))}"
                fd = taylor = "—"
            else:
                fwd, rev = _fmt(r.witnesses.get("jacfwd")), _fmt(r.witnesses.get("jacrev"))
                fd = _fmt(r.finite_diff_rel)
                taylor = "floor" if not math.isfinite(r.taylor_order) else f"{r.taylor_order:.2f}"
            table.add_row(
                escape(r.name),
                escape(_ref(r.source, group)),
                _shapes(r.shapes),
                fwd,
                rev,
                fd,
                taylor,
                f"{r.seconds:.1f}s",
                f"[{_STYLE[r.status]}]{r.status}[/]",
            )
    return table


def run(args: argparse.Namespace) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from .. import __version__, catalogue
    from .._io import atomic_write_json
    from .._json import json_safe

    if args.draws < 1:
        raise ValueError(f"--draws must be at least 1; got {args.draws}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0; got {args.seed}")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be at least 1; got {args.workers}")
    check_outputs([("--json", args.json, "file")], inputs=args.load)
    for path in args.load:
        _load_user_file(path)
    rows = catalogue.select(args.pattern)
    console = Console()
    if not console.is_terminal:  # a file or a pipe: wide lines instead of folded cells
        console = Console(width=max(console.width, 180))
    if not rows:
        raise ValueError(f"no catalogue entry matches -k {args.pattern!r}; see `mmljax check --list`")
    if args.list:
        console.print(_list_table(rows, Table))
        return 0

    workers = args.workers or min(os.cpu_count() or 1, 4)
    t0 = time.perf_counter()
    show = not args.no_progress and console.is_terminal
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        disable=not show,
        transient=True,
    ) as progress:
        task = progress.add_task("checking", total=len(rows))
        reports = catalogue.run(
            rows,
            sizes=args.sizes,
            seed=args.seed,
            draws=args.draws,
            workers=workers,
            progress=lambda row: progress.advance(task),
        )
    elapsed = time.perf_counter() - t0

    counts = {s: sum(r.status == s for r in reports) for s in STATUSES}
    n_pass = sum(r.passed for r in reports)
    title = (
        f"mmljax check — float64, sizes={args.sizes}, seed={args.seed}, draws={args.draws}: "
        f"{n_pass}/{len(reports)} pass in {elapsed:.1f} s"
    )
    console.print(_result_table(reports, title, Table))
    for r in reports:
        if r.status == "known wrong":
            console.print(
                f"[yellow]known wrong[/] (rejected, as it must be): {escape(r.message.splitlines()[0])}",
                highlight=False,
            )
    failed = [r for r in reports if not r.passed]
    for r in failed:
        console.print(f"[bold red]{r.status}[/]: {escape(r.message)}", highlight=False)
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    console.print(f"{len(reports)} entries: {summary} — {elapsed:.1f} s", highlight=False)

    if args.json:
        import jaxlib
        import numpy

        doc = json_safe(
            {
                "schema": "mmljax.check/1",
                "ok": not failed,
                "passed": n_pass,
                "total": len(reports),
                "counts": counts,
                "seconds": elapsed,
                "config": {
                    "sizes": args.sizes,
                    "seed": args.seed,
                    "draws": args.draws,
                    "pattern": args.pattern,
                    "workers": workers,
                    "dtype": "float64",
                    "loaded": list(args.load),
                },
                "versions": {
                    "jax": jax.__version__,
                    "jaxlib": jaxlib.__version__,
                    "numpy": numpy.__version__,
                    "mmljax": __version__,
                    "python": platform.python_version(),
                },
                "device": str(jax.devices()[0]),
                "entries": [dict(r.to_dict(), group=source_group(r.source, r.domain)) for r in reports],
            }
        )
        write_output("--json", args.json, lambda: atomic_write_json(args.json, doc))
    return 0 if not failed else 1
