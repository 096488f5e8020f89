"""A whole benchmark run: machine, limits, the selected cases, and the targets judged on them."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .case import Case, CaseResult, Settings
from .machine import Limits, load_avg, machine_info, measure_limits
from .runner import run_case
from .timing import TimingConfig

__all__ = ["BenchRun", "run_benchmarks", "SCHEMA"]

SCHEMA = "mmljax.bench/1"


@dataclass
class BenchRun:
    """Everything one `mmljax bench` produced; `to_dict` is the `--json` document."""

    settings: Settings
    config: TimingConfig
    machine: dict[str, Any]
    limits: Limits | None
    cases: list[CaseResult]
    targets: list[Any] = field(default_factory=list)
    seconds: float = 0.0
    command: str = ""
    load_after: list[float] | None = None

    def case(self, name: str) -> CaseResult | None:
        return next((c for c in self.cases if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {
            "schema": SCHEMA,
            "command": self.command,
            "seconds": self.seconds,
            "settings": asdict(self.settings),
            "timing": asdict(self.config),
            "machine": {**self.machine, "load_avg_after": self.load_after},
            "limits": self.limits.to_dict() if self.limits else None,
            "cases": [c.to_dict() for c in self.cases],
            "targets": [t.to_dict() for t in self.targets],
        }


def run_benchmarks(
    cases: Sequence[Case],
    settings: Settings = Settings(),
    config: TimingConfig = TimingConfig(),
    *,
    measure_machine: bool = True,
    command: str = "",
    progress: Callable[[str], None] | None = None,
) -> BenchRun:
    """Measure the machine's limits, run `cases` in order, and judge the targets.

    **Arguments:** `cases` to run; `settings` (dtype, sweep, peers, ...); `config` the timing
    rules; `measure_machine` False skips the limit measurement (then no "% of peak").

    **Returns:** a `BenchRun`.
    """
    from . import targets as _targets

    t0 = time.perf_counter()
    info = machine_info()
    limits = None
    if measure_machine:
        if progress:
            progress("machine limits")
        dtypes = (settings.dtype,) + tuple(d for d in ("float64", "float32") if d != settings.dtype)
        limits = measure_limits(
            config,
            dtypes=dtypes,
            matmul_n=settings.pick(2000, 1536, 256),
            bandwidth_bytes=settings.pick(256, 256, 8) * 2**20,
            seed=settings.seed,
        )
    results = [run_case(c, settings, config, limits, progress) for c in cases]
    run = BenchRun(settings, config, info, limits, results, command=command)
    run.targets = _targets.evaluate(run)
    run.seconds = time.perf_counter() - t0
    run.load_after = load_avg()
    return run
