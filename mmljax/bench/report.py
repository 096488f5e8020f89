"""Write a `BenchRun` out: console tables (rich), markdown, JSON and log-log scaling plots."""

from __future__ import annotations

import io
import itertools
import math
from pathlib import Path
from typing import Any

from .._io import atomic_write_bytes, atomic_write_json, atomic_write_text
from .case import CaseResult, PointResult, VariantResult

__all__ = ["fmt_time", "fmt_bytes", "markdown", "print_console", "write_json", "write_markdown", "write_plots"]


def fmt_time(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "—"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms" if s < 0.01 else f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "—"
    if n < 1e3:
        return f"{n:.0f} B"
    for unit, scale in (("kB", 1e3), ("MB", 1e6), ("GB", 1e9)):
        if n < scale * 1e3 or unit == "GB":
            return f"{n / scale:.3g} {unit}"
    return f"{n:.3g} B"


def _ratio(v: VariantResult) -> str:
    return "—" if v.ratio_to_hand is None else f"{v.ratio_to_hand:.2f}×"


def _pct(v: VariantResult) -> str:
    if v.pct_peak is None:
        return ""
    return f"{v.pct_peak:.0%} {'flops' if v.peak_kind == 'flops' else 'bw'}"


def _check(v: VariantResult) -> str:
    if v.status == "ok":
        if v.role == "hand":
            return "reference"
        if v.role == "bound":
            return "not a derivative"
        return "ok" if v.rel_err is None else f"ok ({v.rel_err:.0e})"
    return v.status


def _notes(p: PointResult, v: VariantResult) -> str:
    notes = []
    if v.program:
        first = next(w for w in p.variants if w.program == v.program)
        if first is not v:
            notes.append(f"same XLA program as {first.name}")
    if v.spread is not None and v.spread > 0.25:
        notes.append(f"noisy: spread {v.spread:.0%}")
    if v.message:
        notes.append(v.message)
    return "; ".join(notes)


_COLUMNS = (
    "size",
    "variant",
    "median",
    "min",
    "spread",
    "vs hand",
    "% of peak",
    "compile",
    "XLA temp",
    "check",
    "notes",
)


def _row(p: PointResult, v: VariantResult, first: bool) -> list[str]:
    temp = v.memory["temp_bytes"] if v.memory else None
    return [
        p.label if first else "",
        v.name,
        fmt_time(v.median_s),
        fmt_time(v.min_s),
        "—" if v.spread is None else f"{v.spread:.0%}",
        _ratio(v),
        _pct(v),
        fmt_time(v.compile_s) if v.compile_s is not None else "—",
        fmt_bytes(temp),
        _check(v),
        _notes(p, v),
    ]


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|")


def _md_table(header: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> str:
    out = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|",
    ]
    out += ["| " + " | ".join(_md_escape(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _machine_lines(run) -> list[str]:
    m = run.machine
    lines = [
        f"- device: {m['device']} ({m['device_kind']}), {m['cpu_count']} CPU cores ({m['cpu_model']})",
        f"- jax {m['jax']}, jaxlib {m['jaxlib']}, numpy {m['numpy']}, Python {m['python']}, {m['os']}",
        f"- dtype {run.settings.dtype}; {run.settings.sweep} sweep; peers: "
        f"{'on' if run.settings.peers else 'off'}; seed {run.settings.seed}",
        f"- timing: warm-up call separate, compile time separate, block_until_ready, ≥ {run.config.samples} samples "
        f"of ≥ {run.config.min_sample_s:g} s each, variants interleaved; median reported",
        f"- load average (1/5/15 min) before: {m.get('load_avg')}, after: {run.load_after}",
        f"- total time: {run.seconds:.0f} s",
    ]
    if run.limits:
        L = run.limits
        mm = ", ".join(f"{k.replace('_', ' ')} {v:.1f}" for k, v in L.matmul_gflops.items())
        bw = ", ".join(f"{k.replace('_', ' ')} {v:.1f}" for k, v in L.bandwidth_gbs.items())
        lines.append(
            f"- machine limits, measured in this run: matmul {L.matmul_n}×{L.matmul_n} GFLOP/s: {mm}; "
            f"streaming read of {L.bandwidth_bytes / 2**20:.0f} MiB, GB/s: {bw}"
        )
    return lines


def _target_rows(run) -> list[list[str]]:
    rows = []
    for t in run.targets:
        if t.value is None:
            val = "—"
        elif t.comparison == ">=":
            val = f"{t.value:.0%}"
        else:
            val = f"{t.value:.2f}×"
        thr = f"{t.comparison} {t.threshold:.0%}" if t.comparison == ">=" else f"{t.comparison} {t.threshold:.2f}×"
        rows.append([t.name, val, thr, t.verdict, t.detail])
    return rows


def markdown(run, *, title: str | None = None) -> str:
    """The run as markdown: machine and settings, one table per case, then the targets."""
    parts = [f"## {title or 'mmljax bench'} — {run.settings.dtype}, {run.machine['device_kind']}", ""]
    if run.command:
        parts += [f"Command: `{run.command}`", ""]
    parts += _machine_lines(run) + [""]
    for c in run.cases:
        parts.append(f"### Case {c.number}: `{c.name}` — {c.title}")
        load = (
            ""
            if c.load[0] is None
            else f" (load average {c.load[0]:.2f} → {c.load[1]:.2f} while it ran, {c.seconds:.0f} s)"
        )
        parts += ["", c.description + load, ""]
        if c.status != "ok":
            parts += [f"**{c.status}**: {c.message}", ""]
            continue
        rows = []
        for p in c.points:
            rows += [_row(p, v, i == 0) for i, v in enumerate(p.variants)]
        parts += [_md_table(list(_COLUMNS), rows, right={2, 3, 4, 5, 6, 7, 8}), ""]
        notes = list(dict.fromkeys(p.note for p in c.points if p.note))
        parts += [f"_{n}_" for n in notes] + ([""] if notes else [])
    if run.targets:
        parts += [
            "### Targets",
            "",
            _md_table(["target", "measured (worst)", "threshold", "verdict", "detail"], _target_rows(run)),
            "",
        ]
    return "\n".join(parts)


def write_markdown(run, path: str | Path, **kw) -> Path:
    return atomic_write_text(path, markdown(run, **kw) + "\n")


def write_json(run, path: str | Path) -> Path:
    return atomic_write_json(path, run.to_dict())


def print_console(run, console=None) -> None:
    """Rich tables on the terminal (one per case), then the targets."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    for line in _machine_lines(run):
        console.print(line, highlight=False)
    keep = [i for i, col in enumerate(_COLUMNS) if col not in ("min", "notes")]
    for c in run.cases:
        table = Table(title=f"case {c.number} · {c.name} — {c.title}", title_justify="left")
        for i in keep:
            table.add_column(_COLUMNS[i], justify="right" if 2 <= i <= 8 else "left", overflow="fold")
        table.add_column("notes", overflow="ellipsis", no_wrap=True, max_width=48)
        if c.status != "ok":
            console.print(f"[bold]{c.name}[/]: {c.status} — {c.message}", highlight=False)
            continue
        for p in c.points:
            table.add_section()
            for i, v in enumerate(p.variants):
                style = {"ok": None, "rejected": "bold red", "error": "red", "skipped": "dim"}[v.status]
                row = _row(p, v, i == 0)
                table.add_row(*[row[j] for j in keep], v.message if v.status != "ok" else "", style=style)
        console.print(table)
    if run.targets:
        table = Table(title="targets", title_justify="left")
        for col in ("target", "measured", "threshold", "verdict", "detail"):
            table.add_column(col, overflow="fold", max_width=70 if col == "detail" else None)
        for r in _target_rows(run):
            color = {"met": "green", "missed": "bold red", "not measured": "yellow"}[r[3]]
            table.add_row(*r[:3], f"[{color}]{r[3]}[/]", r[4])
        console.print(table)


def _series(c: CaseResult) -> dict[tuple, list[PointResult]]:
    groups: dict[tuple, list[PointResult]] = {}
    for p in c.points:
        key = tuple((k, p.sizes.get(k)) for k in c.series_keys)
        groups.setdefault(key, []).append(p)
    return groups


def write_plots(run, directory: str | Path) -> list[Path]:
    """One log-log figure per case: median time vs `x_key`, one line per variant, one panel per
    combination of the other sizes. Returns the files written (`<case>-<dtype>.png`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    markers = itertools.cycle("os^vD<>pXh")
    for c in run.cases:
        if c.status != "ok" or not c.points:
            continue
        groups = _series(c)
        fig, axes = plt.subplots(1, len(groups), figsize=(5.2 * len(groups), 4.2), squeeze=False)
        for ax, (key, points) in zip(axes[0], groups.items()):
            names = list(dict.fromkeys(v.name for p in points for v in p.variants))
            for name in names:
                xs, ys = [], []
                for p in points:
                    v = p.get(name)
                    if v is not None and v.status == "ok" and v.median_s:
                        xs.append(p.sizes[c.x_key])
                        ys.append(v.median_s)
                if xs:
                    role = next(v.role for p in points for v in p.variants if v.name == name)
                    ax.plot(
                        xs,
                        ys,
                        marker=next(markers),
                        linewidth=2.2 if role == "hand" else 1.2,
                        linestyle="--" if role in ("peer", "bound") else "-",
                        label=name,
                    )
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(c.x_key)
            ax.set_ylabel("median time per call [s]")
            ax.set_title(", ".join(f"{k}={v}" for k, v in key) or c.name, fontsize=9)
            ax.grid(True, which="both", alpha=0.3)
        axes[0][0].legend(fontsize=7)
        fig.suptitle(f"{c.name}: {c.title} ({run.settings.dtype}, {run.machine['device_kind']})", fontsize=10)
        fig.tight_layout()
        path = directory / f"{c.name}-{run.settings.dtype}.png"
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        atomic_write_bytes(path, buf.getvalue())  # never a half-written image
        written.append(path)
    return written


def summary(run) -> dict[str, Any]:
    """Counts by status (for the CLI's exit status and one-line summary)."""
    counts: dict[str, int] = {}
    for c in run.cases:
        if c.status == "error":
            counts["error"] = counts.get("error", 0) + 1
        for p in c.points:
            for v in p.variants:
                counts[v.status] = counts.get(v.status, 0) + 1
    return counts
