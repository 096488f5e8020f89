"""The data a benchmark case is made of, and the results it produces.

A `Case` yields `Point`s (one per size); a point holds the inputs and the `Variant`s to compare —
the hand formula (role "hand", the reference every other variant is checked against), other
spellings of it ("alt", e.g. with an explicit transpose), autodiff
variants, mmljax's own paths, structure-aware kernels, peers (numpy, torch) and "bound" variants
that measure a machine limit on the same data (e.g. one read of `Φ`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .._json import json_safe
from .._validate import check_bool, check_int, check_real

__all__ = ["ROLES", "SWEEPS", "Settings", "Variant", "Point", "Case", "VariantResult", "PointResult", "CaseResult"]

ROLES = ("hand", "alt", "autodiff", "mmljax", "kernel", "peer", "bound")


SWEEPS = ("full", "quick", "tiny")


@dataclass(frozen=True)
class Settings:
    """What to run.

    `dtype` "float64" or "float32"; `sweep` the sizes: "full" (the whole sweep), "quick" (under
    two minutes on a 2-core CPU) or "tiny" (a smoke test in seconds, timings meaningless); `peers`
    also time optional peers (PyTorch) when importable; `seed` for the data;
    `memory_limit_bytes` skips a JAX variant whose compiled temporaries would exceed it (checked
    before it runs); `max_variant_s`: a variant whose single call takes so long that `samples + 1`
    calls would exceed this is measured by that one call only (`number == 1`, one sample);
    `only` keeps the points whose sizes match every `(name, value)` pair (e.g. `(("N", 10**6),)`).
    """

    dtype: str = "float64"
    sweep: str = "full"
    peers: bool = False
    seed: int = 0
    memory_limit_bytes: float = 4e9
    max_variant_s: float = 60.0
    only: tuple[tuple[str, int], ...] = ()

    def __post_init__(self):
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"Settings: dtype must be 'float32' or 'float64'; got {self.dtype!r}")
        if self.sweep not in SWEEPS:
            raise ValueError(f"Settings: sweep must be one of {SWEEPS}; got {self.sweep!r}")
        check_bool(self.peers, "Settings", "peers")
        check_int(self.seed, "Settings", "seed", minimum=0)
        check_real(self.memory_limit_bytes, "Settings", "memory_limit_bytes", minimum=0.0, strict=True)
        check_real(self.max_variant_s, "Settings", "max_variant_s", minimum=0.0, strict=True)
        if not isinstance(self.only, tuple) or not all(
            isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in self.only
        ):
            raise TypeError(f"Settings: only must be a tuple of (name, size) pairs; got {self.only!r}")
        for name, value in self.only:
            check_int(value, "Settings", f"only[{name!r}]", minimum=1)

    @property
    def quick(self) -> bool:
        return self.sweep != "full"

    def pick(self, full, quick, tiny):
        """The size list for this sweep."""
        return {"full": full, "quick": quick, "tiny": tiny}[self.sweep]


@dataclass(frozen=True)
class Variant:
    """One way of computing a point's quantity.

    **Arguments:** `name` shown in the tables; `fn(*args)` computes it; `role` one of `ROLES`;
    `jit` whether `fn` is JAX code to compile (False for numpy/torch peers, called as they are);
    `args` its own inputs (default: the point's); `flops` / `bytes` the work it executes when it
    differs from the point's (e.g. numpy's symmetric update does half the flops); `to_numpy`
    converts its output for the check (e.g. a torch tensor); `check` False only for "bound"
    variants, which compute something else on the same data; `skip` a reason not to run it
    (e.g. "torch is not installed"), reported as status "skipped".
    """

    name: str
    fn: Callable[..., Any]
    role: str
    jit: bool = True
    args: tuple | None = None
    flops: float | None = None
    bytes: float | None = None
    to_numpy: Callable[[Any], Any] | None = None
    check: bool = True
    note: str = ""
    skip: str = ""

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"Variant {self.name!r}: role must be one of {ROLES}; got {self.role!r}")
        if not self.check and self.role != "bound":
            raise ValueError(
                f"Variant {self.name!r}: only 'bound' variants may skip the check against the hand formula"
            )


@dataclass
class Point:
    """One size of a case: inputs, variants (exactly one with role "hand"), and its work.

    `flops` is what the hand formula executes (used for "% of peak" when `bound == "compute"`),
    `bytes` what it must read from memory (used when `bound == "memory"`); `rtol` overrides the
    dtype's tolerance of the check.
    """

    sizes: dict[str, int]
    args: tuple
    variants: list[Variant]
    flops: float | None = None
    bytes: float | None = None
    bound: str | None = None
    rtol: float | None = None
    label: str = ""
    note: str = ""

    def __post_init__(self):
        hands = [v for v in self.variants if v.role == "hand"]
        if len(hands) != 1:
            raise ValueError(f"Point {self.sizes}: needs exactly one 'hand' variant; got {len(hands)}")
        if self.bound not in (None, "compute", "memory"):
            raise ValueError(f"Point {self.sizes}: bound must be None, 'compute' or 'memory'; got {self.bound!r}")
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"Point {self.sizes}: variant names must be unique; got {names}")

    @property
    def hand(self) -> Variant:
        return next(v for v in self.variants if v.role == "hand")


@dataclass(frozen=True)
class Case:
    """A benchmark case: `number` is the case's number, `name` what `--case` selects;
    `points(settings)` yields the sizes; `x_key` is the size on the plots' x-axis and `series_keys`
    the other sizes (one panel per combination)."""

    name: str
    number: int
    title: str
    description: str
    points: Callable[[Settings], Iterator[Point]]
    x_key: str
    series_keys: tuple[str, ...] = ()


class VariantResult(NamedTuple):
    """Outcome for one variant at one point.

    `status`: "ok" (checked and timed), "rejected" (result disagrees with the hand formula: not
    timed), "skipped" (would exceed the memory limit, or a peer is not installed), "error". Times
    in seconds; `rel_err` is `||out − hand|| / ||hand||`; `memory` holds XLA's compiled sizes
    (`temp_bytes`, `output_bytes`, `argument_bytes`) when JAX reports them; `pct_peak` is the
    fraction of the measured machine limit named by `peak_kind` ("flops" or "bandwidth");
    `program` fingerprints the optimised XLA program (equal fingerprints: the same program).
    """

    name: str
    role: str
    status: str
    message: str = ""
    rel_err: float | None = None
    median_s: float | None = None
    min_s: float | None = None
    spread: float | None = None
    samples_s: tuple[float, ...] = ()
    number: int | None = None
    compile_s: float | None = None
    warmup_s: float | None = None
    memory: dict[str, int] | None = None
    ratio_to_hand: float | None = None
    pct_peak: float | None = None
    peak_kind: str | None = None
    program: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = self._asdict()
        d["samples_s"] = list(self.samples_s)
        return json_safe(d)


@dataclass
class PointResult:
    sizes: dict[str, int]
    label: str
    bound: str | None
    flops: float | None
    bytes: float | None
    note: str
    variants: list[VariantResult] = field(default_factory=list)

    def get(self, name: str) -> VariantResult | None:
        return next((v for v in self.variants if v.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sizes": dict(self.sizes),
            "label": self.label,
            "bound": self.bound,
            "flops": self.flops,
            "bytes": self.bytes,
            "note": self.note,
            "variants": [v.to_dict() for v in self.variants],
        }


@dataclass
class CaseResult:
    name: str
    number: int
    title: str
    description: str
    x_key: str
    series_keys: tuple[str, ...]
    status: str = "ok"
    message: str = ""
    seconds: float = 0.0
    points: list[PointResult] = field(default_factory=list)
    load: tuple[float | None, float | None] = (None, None)  # 1-minute load average at start, end

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "number": self.number,
            "title": self.title,
            "description": self.description,
            "x_key": self.x_key,
            "series_keys": list(self.series_keys),
            "status": self.status,
            "message": self.message,
            "seconds": self.seconds,
            "load_1min": list(self.load),
            "points": [p.to_dict() for p in self.points],
        }
