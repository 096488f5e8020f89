"""`mmljax check`: run the identity catalogue (and model checks) in float64 and print a table."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import platform
import sys
import time
from pathlib import Path

NAME = "check"
HELP = "verify every hand-derived derivative against autodiff and finite differences"
DESCRIPTION = """\
Checks every entry of the identity catalogue (lecture derivations, Matrix Cookbook identities,
model gradients/Hessians/Jacobians) three ways — hand formula vs jacfwd and jacrev, vs central
finite differences, and a Taylor-remainder test — in float64, at several sizes and random draws.
Known-wrong entries (the lecture's printed erratum) must be rejected and show as "known wrong".
Exit status: 0 when every entry passes, 1 when any fails, 2 on a usage error.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--list", action="store_true", help="list the entries (name, source, domain) and exit")
    p.add_argument("-k", dest="pattern", metavar="PATTERN", help="only entries whose name/source/domain matches (substring or glob)")
    p.add_argument("--sizes", choices=("small", "medium"), default="small", help="input sizes to try (default: small)")
    p.add_argument("--seed", type=int, default=0, help="random seed for the input draws (default: 0)")
    p.add_argument("--draws", type=int, default=2, help="random draws per size (default: 2)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON (atomically)")
    p.add_argument("--load", metavar="FILE", action="append", default=[],
                   help="import a Python file that registers extra entries with mmljax.catalogue.register (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _load_user_file(path: str) -> None:
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"--load {path}: no such file")
    spec = importlib.util.spec_from_file_location(f"mmljax_user_{file.stem}", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


def _fmt(x: float) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.1e}"


def run(args: argparse.Namespace) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from . import catalogue
    from ._io import atomic_write_json

    for path in args.load:
        _load_user_file(path)
    rows = catalogue.select(args.pattern)
    console = Console()
    if not rows:
        raise ValueError(f"no catalogue entry matches -k {args.pattern!r}; see `mmljax check --list`")
    if args.list:
        table = Table(title=f"mmljax catalogue: {len(rows)} entries")
        for col in ("domain", "name", "source", "kind"):
            table.add_column(col)
        for r in rows:
            table.add_row(r.domain, r.name, r.source, r.kind + (" (expected to fail)" if r.expect_fail else ""))
        console.print(table)
        return 0
    if args.draws < 1:
        raise ValueError(f"--draws must be at least 1; got {args.draws}")

    t0 = time.perf_counter()
    show = not args.no_progress and console.is_terminal
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, disable=not show, transient=True) as progress:
        task = progress.add_task("checking", total=len(rows))
        reports = catalogue.run(rows, sizes=args.sizes, seed=args.seed, draws=args.draws,
                                progress=lambda row: progress.advance(task))
    elapsed = time.perf_counter() - t0

    by_source: dict[str, list] = {}
    for rep in reports:
        by_source.setdefault(rep.domain, []).append(rep)
    n_pass = sum(r.passed for r in reports)
    table = Table(title=f"mmljax check — float64, sizes={args.sizes}, seed={args.seed}: "
                        f"{n_pass}/{len(reports)} pass in {elapsed:.1f} s")
    for col, just in (("name", "left"), ("source", "left"), ("shapes", "left"), ("vs autodiff", "right"),
                      ("vs finite diff", "right"), ("Taylor order", "right"), ("result", "left")):
        table.add_column(col, justify=just, overflow="fold")
    style = {"pass": "green", "known wrong": "yellow", "fail": "bold red", "unexpected pass": "bold red"}
    for domain, reps in by_source.items():
        table.add_section()
        table.add_row(f"[bold]{domain}[/bold]", "", "", "", "", "", "")
        for r in reps:
            shapes = ", ".join(sorted({"x".join(map(str, s)) or "()" for s in r.shapes}))
            table.add_row(r.name, r.source, shapes, _fmt(r.autodiff_rel), _fmt(r.finite_diff_rel),
                          "—" if not math.isfinite(r.taylor_order) else f"{r.taylor_order:.2f}",
                          f"[{style[r.status]}]{r.status}[/]")
    console.print(table)
    failed = [r for r in reports if not r.passed]
    for r in failed:
        console.print(f"[bold red]{r.status}[/]: {r.message}", highlight=False)

    if args.json:
        import jax as _jax

        atomic_write_json(args.json, {
            "schema": "mmljax.check/1",
            "ok": not failed,
            "passed": n_pass,
            "total": len(reports),
            "seconds": elapsed,
            "config": {"sizes": args.sizes, "seed": args.seed, "draws": args.draws, "pattern": args.pattern,
                       "dtype": "float64"},
            "versions": {"jax": _jax.__version__, "python": platform.python_version()},
            "device": str(_jax.devices()[0]),
            "entries": [r.to_dict() for r in reports],
        })
    return 0 if not failed else 1
