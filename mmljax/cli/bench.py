"""`mmljax bench`: hand-derived vs automatic derivatives, timed honestly, on this device."""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys

from ._output import check_outputs, write_output

NAME = "bench"
HELP = "time hand-derived derivatives against autodiff (and peers) on this device"
DESCRIPTION = """\
Benchmarks the hand formulas against jax.grad/jacfwd/jacrev/hessian, mmljax's own derivative API
and its structure-aware kernels, with numpy (and, with --peers, PyTorch) for scale:
  1 ls-gradient        ∇½||y − Φθ||²             4 mlp-jacobian      per-example Jacobian
  2 ls-hessian, ls-hvp ΦᵀΦ and ΦᵀΦv                4 mlp-gauss-newton  JᵀJ;  mlp-hessian
  3 mlp-gradient       hand backprop vs jax.grad  5 vec-kron, matrix-grad  matrix derivatives
  6 ls-fit             closed-form least squares (mmljax, numpy, jnp, scikit-learn)
  7 nls-strd           nonlinear least squares on NIST StRD (mmljax, optimistix, scipy)
  8 ls-bootstrap       bootstrap refits in one jax.vmap (vs vmap(lstsq), statsmodels)
  9 ls-eager           one eager fit of a small design (vs statsmodels, numpy)

Every variant is first checked against the hand formula (a wrong answer is rejected, not timed).
Timing: compile time and the warm-up call are reported separately; every call is waited for
(block_until_ready); each sample repeats calls until it lasts >= --min-sample-s; the median of
>= 5 samples is reported with min and spread; variants of one size are timed interleaved. The
machine's matmul GFLOP/s and streaming bandwidth are measured in the same run, and compute- or
memory-bound cases are reported as a fraction of them. JAX variants whose compiled temporaries
exceed --memory-limit are skipped before running. The performance targets are judged at the end.

Exit status: 0 when every variant agreed with the hand formula, 1 when any was rejected or
failed, 2 on a usage error (including a --only that selects no size, and an output that cannot be
written). Missed performance targets do not change the exit status.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    sweep = p.add_mutually_exclusive_group()
    sweep.add_argument("--quick", action="store_true", help="small size sweep (under 2 minutes on a 2-core CPU)")
    sweep.add_argument(
        "--tiny",
        action="store_true",
        help="smoke test: tiny sizes, every variant still checked; seconds, timings meaningless",
    )
    p.add_argument(
        "--case",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this case: name, substring, glob or case number 1-9 (repeatable)",
    )
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument(
        "--only", metavar="SIZES", default="", help="run only the points with these sizes, e.g. --only N=1000000,D=100"
    )
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="precision (default float64)")
    p.add_argument("--peers", action="store_true", help="also time PyTorch (torch.func) when it is installed")
    p.add_argument("--json", metavar="PATH", help="write every number as JSON (schema mmljax.bench/1)")
    p.add_argument("--markdown", metavar="PATH", help="write the tables and targets as markdown")
    p.add_argument("--plot", metavar="DIR", help="write log-log scaling plots (time vs size) into DIR")
    p.add_argument("--seed", type=int, default=0, help="seed of the random data (default 0)")
    p.add_argument("--min-sample-s", type=float, default=0.1, help="shortest sample in seconds (default 0.1)")
    p.add_argument("--samples", type=int, default=5, help="samples per variant, at least 5 (default 5)")
    p.add_argument(
        "--memory-limit",
        type=float,
        metavar="GB",
        help="skip JAX variants whose compiled temporaries exceed this (default: 40%% of RAM, or 80%% "
        "of accelerator memory)",
    )
    p.add_argument(
        "--max-variant-s",
        type=float,
        metavar="S",
        help="a variant whose (samples + 1) calls would exceed S seconds is measured by one call "
        "(default 60, 5 with --quick)",
    )
    p.add_argument("--no-machine", action="store_true", help="do not measure the machine's limits (no %% of peak)")


def _default_memory_limit() -> float:
    import jax

    dev = jax.devices()[0]
    if dev.platform != "cpu":
        try:
            stats = dev.memory_stats() or {}
            if stats.get("bytes_limit"):
                return 0.8 * stats["bytes_limit"]
        except Exception:
            pass
    try:
        return 0.4 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 4e9


def _parse_only(text: str) -> tuple[tuple[str, int], ...]:
    pairs = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = item.partition("=")
        try:
            pairs.append((key.strip(), int(float(value))))
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            raise ValueError(
                f"--only expects NAME=INTEGER pairs separated by commas (e.g. N=1000000,D=100); got {item!r}"
            )
    return tuple(pairs)


def _check_only_keys(only: tuple[tuple[str, int], ...], cases) -> None:
    """Each `--only` name must be a size of some selected case (checked before anything runs)."""
    keys = {k for c in cases for k in (c.x_key, *c.series_keys)}
    for key, value in only:
        if key not in keys:
            raise ValueError(
                f"--only {key}={value}: no selected case has a size called {key!r}; the sizes are "
                f"{', '.join(sorted(keys))}"
            )
        if value < 1:
            raise ValueError(f"--only {key}={value}: sizes are positive integers")


def _sizes_text(cases, settings) -> str:
    """The sizes the cases have in this sweep, e.g. `vec-kron: n=3, 5` (cheap: from the points' labels)."""
    parts = []
    for c in cases:
        values: dict[str, list[int]] = {}
        try:
            for p in c.points(dataclasses.replace(settings, only=())):
                for k, v in p.sizes.items():
                    values.setdefault(k, []).append(v) if v not in values.get(k, []) else None
        except Exception:  # noqa: BLE001 - listing sizes is a courtesy in an error message
            continue
        parts.append(f"{c.name}: " + "; ".join(f"{k}={', '.join(map(str, v))}" for k, v in values.items()))
    return " | ".join(parts) or "no sizes"


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run (recorded in the JSON and markdown)."""
    parts = ["mmljax", "bench"]
    parts += ["--quick"] if args.quick else ["--tiny"] if args.tiny else []
    for c in args.case:
        parts += ["--case", c]
    parts += ["--only", args.only] if args.only else []
    parts += ["--dtype", args.dtype] + (["--peers"] if args.peers else [])
    for flag, value, default in (
        ("--seed", args.seed, 0),
        ("--min-sample-s", args.min_sample_s, 0.1),
        ("--samples", args.samples, 5),
        ("--memory-limit", args.memory_limit, None),
        ("--max-variant-s", args.max_variant_s, None),
    ):
        if value != default:
            parts += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    parts += ["--no-machine"] if args.no_machine else []
    for flag, value in (("--json", args.json), ("--markdown", args.markdown), ("--plot", args.plot)):
        if value:
            parts += [flag, value]
    return " ".join(shlex.quote(p) for p in parts)


def run(args: argparse.Namespace) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    from rich.console import Console

    from ..bench import cases as bench_cases
    from ..bench.case import Settings
    from ..bench.report import print_console, summary, write_json, write_markdown, write_plots
    from ..bench.suite import run_benchmarks
    from ..bench.timing import TimingConfig

    # Wide tables: when the output is a file or pipe, do not fold them to 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=200)
    selected = bench_cases.select(args.case)
    if args.list:
        for c in selected:
            console.print(f"{c.number}  {c.name:18s} {c.title}", highlight=False)
        return 0
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0; got {args.seed}")
    if not args.min_sample_s > 0:
        raise ValueError(f"--min-sample-s must be positive; got {args.min_sample_s}")
    if args.samples < 5:
        raise ValueError(f"--samples must be at least 5 (a median and a spread need them); got {args.samples}")
    if args.memory_limit is not None and args.memory_limit <= 0:
        raise ValueError(f"--memory-limit must be a positive number of GB; got {args.memory_limit}")
    only = _parse_only(args.only)
    _check_only_keys(only, selected)
    check_outputs(
        [("--json", args.json, "file"), ("--markdown", args.markdown, "file"), ("--plot", args.plot, "directory")]
    )
    max_variant_s = args.max_variant_s if args.max_variant_s is not None else (5.0 if args.quick or args.tiny else 60.0)
    if max_variant_s <= 0:
        raise ValueError(f"--max-variant-s must be positive; got {max_variant_s}")
    settings = Settings(
        dtype=args.dtype,
        sweep="quick" if args.quick else "tiny" if args.tiny else "full",
        peers=args.peers,
        seed=args.seed,
        memory_limit_bytes=args.memory_limit * 1e9 if args.memory_limit else _default_memory_limit(),
        max_variant_s=max_variant_s,
        only=only,
    )
    config = TimingConfig(min_sample_s=args.min_sample_s, samples=args.samples)
    command = _command(args)
    err = Console(stderr=True)
    with err.status("measuring", spinner="dots") as status:
        run_ = run_benchmarks(
            selected,
            settings,
            config,
            measure_machine=not args.no_machine,
            command=command,
            progress=lambda msg: status.update(f"mmljax bench: {msg}"),
        )
    print_console(run_, console)
    if only and not any(c.points for c in run_.cases):
        sizes = _sizes_text(selected, settings)
        raise ValueError(f"--only {args.only} selects no size of the chosen case(s) ({sizes}); nothing was timed")
    if args.json:
        write_output("--json", args.json, lambda: write_json(run_, args.json))
    if args.markdown:
        write_output("--markdown", args.markdown, lambda: write_markdown(run_, args.markdown))
    if args.plot:
        for path in write_output("--plot", args.plot, lambda: write_plots(run_, args.plot)):
            console.print(f"plot: {path}", highlight=False)
    counts = summary(run_)
    bad = counts.get("rejected", 0) + counts.get("error", 0)
    console.print(
        f"{sum(counts.values())} variant timings: "
        + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        + f" — {run_.seconds:.0f} s",
        highlight=False,
    )
    return 1 if bad else 0
