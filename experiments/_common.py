"""Plumbing shared by the experiment scripts: command line, device, atomic outputs, provenance.

Every script defines `main(argv=None) -> dict` as `run(NAME, DESCRIPTION, body, argv)`, where
`body(ctx)` does the work, saves figures with `ctx.save_figure(fig, "NAME_what.png")` and
returns the numbers behind them. `run` parses the common options, enables float64, selects the
device (`--device auto|cpu|gpu`), runs the body on it and writes `results.json` (config, seed,
dtype, device, versions, figure list, timing, and the body's numbers) atomically.

Figures are drawn on `matplotlib.figure.Figure` objects rendered by Agg: no pyplot, no screen,
no global backend state.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import jax
from matplotlib.figure import Figure

import mmljax as mj
from mmljax.io import atomic_write_bytes, atomic_write_json, json_safe

DEVICES = ("auto", "cpu", "gpu")
DPI = 72


def build_parser(name: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m experiments {name}", description=description)
    p.add_argument("--quick", action="store_true", help="small sizes: finishes in well under a minute on a 2-core CPU")
    p.add_argument("--out", default=None, help=f"output folder (default results/{name}/)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    p.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help="run on the CPU, the GPU (error if none), or JAX's default backend (default auto)",
    )
    return p


def select_device(choice: str) -> jax.Device:
    """The first device of the requested platform; `auto` is JAX's default backend."""
    if choice not in DEVICES:
        raise ValueError(f"--device must be one of {DEVICES}; got {choice!r}")
    if choice == "auto":
        return jax.devices()[0]
    try:
        return jax.devices(choice)[0]
    except RuntimeError:
        present = sorted({d.platform for d in jax.devices()})
        raise ValueError(
            f"--device {choice}: JAX sees no {choice.upper()} (platforms present: {', '.join(present)}); "
            f"install the CUDA build of JAX (pip install -e '.[cuda12]') or pass --device cpu"
        ) from None


def device_info(device: jax.Device) -> dict[str, Any]:
    return {
        "platform": device.platform,
        "kind": getattr(device, "device_kind", device.platform),
        "id": int(device.id),
        "count": len(jax.devices(device.platform)),
    }


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "mmljax": mj.__version__, "platform": platform.platform()}
    for pkg in ("jax", "jaxlib", "numpy", "optax", "equinox", "matplotlib"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:  # pragma: no cover - optional package missing
            out[pkg] = "not installed"
    return out


def jsonable(obj: Any) -> Any:
    """Plain JSON types, exactly as `results.json` reads back: `mmljax.io.json_safe` (arrays to lists,
    NaN/Inf to None), paths as strings, then dict keys as strings and tuples as lists. Anything else
    is a TypeError naming its type (a result must not be stored as something it is not)."""

    def fallback(o: Any) -> Any:
        if isinstance(o, os.PathLike):
            return os.fspath(o)
        raise TypeError(f"jsonable: cannot store a {type(o).__name__} in results.json")

    return json.loads(json.dumps(json_safe(obj), allow_nan=False, default=fallback))


def figure(nrows: int = 1, ncols: int = 1, *, width: float = 4.0, height: float = 3.2, **kwargs):
    """A `Figure` with a grid of axes (constrained layout); `axes` is 2-D unless both counts are 1."""
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, (axes[0, 0] if nrows == ncols == 1 else axes)


@dataclass
class Context:
    """What a body needs: the parsed options, output folder, device, seed; collects the figures."""

    name: str
    args: argparse.Namespace
    out: Path
    device: jax.Device
    figures: list[str] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def phase(self, label: str):
        """Log `label`, run the block, and record its wall time (seconds) under `timing[label]`."""
        self.log(label)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timing[label] = self.timing.get(label, 0.0) + time.perf_counter() - t0

    @property
    def seed(self) -> int:
        return int(self.args.seed)

    @property
    def quick(self) -> bool:
        return bool(self.args.quick)

    def log(self, message: str) -> None:
        print(f"[{self.name}] {message}", flush=True)

    def save_figure(self, fig: Figure, filename: str) -> Path:
        """Render `fig` to PNG and write it atomically into the output folder."""
        if not filename.endswith(".png"):
            raise ValueError(f"save_figure: {filename!r} must end in .png")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
        path = atomic_write_bytes(self.out / filename, buf.getvalue())
        self.figures.append(filename)
        return path


def run(
    name: str,
    description: str,
    body: Callable[[Context], dict],
    argv: list[str] | None = None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> dict:
    """Parse `argv`, run `body` on the chosen device in float64, write `results.json`; return the results.

    float64 is enabled (`jax_enable_x64`) because these are entry points whose checks need it;
    float32 parts pass explicit float32 arrays.
    """
    parser = build_parser(name, description)
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    device = select_device(args.device)
    out = Path(args.out) if args.out else Path("results") / name
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(name=name, args=args, out=out, device=device)
    ctx.log(
        f"{'quick' if args.quick else 'full'} run on {device.platform} ({device_info(device)['kind']}), "
        f"seed {args.seed}, output {out}/"
    )
    t0 = time.perf_counter()
    with jax.default_device(device):
        numbers = body(ctx)
    elapsed = time.perf_counter() - t0
    results = {
        "experiment": name,
        "config": {**vars(args), **numbers.pop("config", {})},
        "seed": int(args.seed),
        "quick": bool(args.quick),
        "dtype": numbers.pop("dtype", "float64"),
        "device": device_info(device),
        "versions": versions(),
        "argv": list(sys.argv[1:] if argv is None else argv),
        "figures": list(ctx.figures),
        "elapsed_s": elapsed,
        "timing_s": dict(ctx.timing),
        **numbers,
    }
    results = jsonable(results)
    atomic_write_json(out / "results.json", results)
    ctx.log(f"done in {elapsed:.1f} s: {len(ctx.figures)} figure(s) and results.json in {out}/")
    return results


def cli(main: Callable[[list[str] | None], dict]) -> None:
    """Entry point of `python experiments/NAME.py`: a user's mistake prints one line and exits 2
    (set `MMLJAX_DEBUG=1` for the traceback)."""
    try:
        main(None)
    except ValueError as e:
        if os.environ.get("MMLJAX_DEBUG"):
            raise
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
