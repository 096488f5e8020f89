"""Honest wall-clock timing of compiled functions (GUIDE §6).

- The warm-up call is timed on its own and never mixed into the samples (the compile time of a
  JAX variant is measured separately, by the runner, around `lower(...).compile()`).
- Every call's output is waited for (`jax.block_until_ready`), so JAX's asynchronous dispatch
  cannot make a variant look faster than it is.
- One sample is back-to-back calls until it has lasted `min_sample_s`; its per-call time is its
  duration divided by its number of calls.
- The variants of one case are timed **interleaved** — sample 1 of every variant, then sample 2
  of every variant, ... — so that a slow spell of the machine (other processes, frequency
  changes) hits all of them alike and their ratios stay meaningful.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax

from .._validate import check_int, check_real

__all__ = ["TimingConfig", "Timing", "call_blocking", "time_interleaved"]


@dataclass(frozen=True)
class TimingConfig:
    """How long and how often to measure.

    **Arguments:** `min_sample_s`: a sample lasts at least this long (calls are repeated);
    `samples`: samples per variant (at least 5, so that a median and a spread mean something);
    `max_number`: upper bound on calls per sample (for sub-microsecond functions).
    """

    min_sample_s: float = 0.1
    samples: int = 5
    max_number: int = 1_000_000

    def __post_init__(self):
        check_real(self.min_sample_s, "TimingConfig", "min_sample_s", minimum=0.0, strict=True)
        check_int(self.samples, "TimingConfig", "samples")
        if self.samples < 5:
            raise ValueError(
                f"TimingConfig: at least 5 samples are needed for a median and a spread; got {self.samples}"
            )
        check_int(self.max_number, "TimingConfig", "max_number", minimum=1)


class Timing(NamedTuple):
    """Per-call times of one variant, in seconds.

    `median_s` and `min_s` over the samples; `spread` is `(max − min) / median` of the samples;
    `samples_s` the per-call time of each sample; `number` the fewest calls in a sample, `calls` the calls of
    each; `warmup_s` the
    first call (after compilation), not part of the samples.
    """

    median_s: float
    min_s: float
    max_s: float
    spread: float
    samples_s: tuple[float, ...]
    number: int
    warmup_s: float
    calls: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = self._asdict()
        d["samples_s"] = list(self.samples_s)
        d["calls"] = list(self.calls)
        return d


def call_blocking(fn: Callable[[], Any]) -> Any:
    """Call `fn()` and wait until every array in its output is computed."""
    return jax.block_until_ready(fn())


def _run(fn: Callable[[], Any], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        jax.block_until_ready(fn())
    return time.perf_counter() - start


def _sample(fn: Callable[[], Any], min_sample_s: float, max_calls: int) -> tuple[float, int]:
    """One sample: blocking calls until `min_sample_s` has passed (or `max_calls` were made).

    The clock is read after every call (tens of nanoseconds, against microseconds for a JAX
    dispatch), so a function that slows down mid-sample cannot stretch it far past the target.
    Returns (seconds, calls).
    """
    start = time.perf_counter()
    n = 0
    while True:
        jax.block_until_ready(fn())
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_sample_s or n >= max_calls:
            return elapsed, n


def time_interleaved(
    fns: dict[str, Callable[[], Any]],
    config: TimingConfig = TimingConfig(),
    warmup_s: dict[str, float] | None = None,
) -> dict[str, Timing]:
    """Time zero-argument functions interleaved: sample `i` of every function, then `i + 1`.

    **Arguments:** `fns` name -> a zero-argument function (already warmed up: compiled and called
    once); `config` the sampling rules; `warmup_s` name -> the duration of that first call
    (recorded; a fresh blocking call is timed when missing).

    **Returns:** name -> `Timing` (per-call seconds).
    """
    warmup_s = dict(warmup_s or {})
    for name, fn in fns.items():
        if name not in warmup_s:
            warmup_s[name] = _run(fn, 1)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    calls: dict[str, list[int]] = {name: [] for name in fns}
    for _ in range(config.samples):
        for name, fn in fns.items():
            elapsed, n = _sample(fn, config.min_sample_s, config.max_number)
            samples[name].append(elapsed / n)
            calls[name].append(n)
    out = {}
    for name, xs in samples.items():
        med = statistics.median(xs)
        out[name] = Timing(
            median_s=med,
            min_s=min(xs),
            max_s=max(xs),
            spread=(max(xs) - min(xs)) / med if med > 0 else 0.0,
            samples_s=tuple(xs),
            number=min(calls[name]),
            warmup_s=warmup_s[name],
            calls=tuple(calls[name]),
        )
    return out
