"""The identity catalogue: hand-derived derivatives as rows of data, checked three ways.

`all_identities()` lists the built-in rows (one module per domain) plus any registered with
`register`; `run(identities)` checks them and returns one `IdentityReport` each.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from .._validate import check_int
from . import lectures, matrix, models, scalar, vector
from ._identity import Identity as Identity
from ._identity import IdentityReport as IdentityReport
from ._identity import _check_sizes
from ._identity import require_x64 as require_x64
from ._identity import run_identity as run_identity

_BUILTIN_MODULES = (scalar, vector, matrix, lectures, models)
_REGISTERED: list[Identity] = []


def builtin_identities() -> tuple[Identity, ...]:
    """Every built-in row, module by module."""
    return tuple(row for mod in _BUILTIN_MODULES for row in mod.IDENTITIES)


def register(identity: Identity) -> Identity:
    """Add a user-defined identity; `mmljax check --load FILE` and `run()` will include it."""
    if not isinstance(identity, Identity):
        raise TypeError(f"register: expected an mmljax.catalogue.Identity; got {type(identity).__name__}")
    names = {row.name for row in all_identities()}
    if identity.name in names:
        raise ValueError(f"register: an identity named {identity.name!r} already exists")
    _REGISTERED.append(identity)
    return identity


def all_identities() -> tuple[Identity, ...]:
    """Every row `mmljax check` runs: the built-in ones, then those added with `register`, in order."""
    return builtin_identities() + tuple(_REGISTERED)


def select(pattern: str | None = None, identities: Iterable[Identity] | None = None) -> tuple[Identity, ...]:
    """Rows whose name, source or domain contains `pattern` (case-insensitive; `*`/`?` globs allowed)."""
    rows = tuple(all_identities() if identities is None else identities)
    if not pattern:
        return rows
    pat = pattern.lower()
    glob = pat if any(c in pat for c in "*?[") else f"*{pat}*"
    return tuple(r for r in rows if any(fnmatch.fnmatch(s.lower(), glob) for s in (r.name, r.source, r.domain)))


def run(
    identities: Iterable[Identity] | None = None,
    *,
    sizes: str | tuple[int, ...] = "small",
    seed: int = 0,
    draws: int = 2,
    progress: Callable[[Identity], None] | None = None,
    workers: int | None = None,
) -> list[IdentityReport]:
    """Check each identity (all of them by default) and return the reports, in order.

    **Arguments:** `sizes`, `seed`, `draws` as for `run_identity` (every row gets the same
    `seed`, so a row's draws do not depend on which other rows run); `progress(row)` is called as
    each row finishes (from a worker thread when `workers > 1`); `workers` threads check rows
    concurrently (default: one per CPU core, at most 4) — XLA compiles without holding the GIL,
    and compiling dominates a check's time.

    **Returns:** one `IdentityReport` per identity, in the order given.
    """
    rows = list(all_identities() if identities is None else identities)
    for row in rows:
        if not isinstance(row, Identity):
            raise TypeError(f"run: expected mmljax.catalogue.Identity rows; got {type(row).__name__}")
    workers = min(os.cpu_count() or 1, 4) if workers is None else check_int(workers, "run", "workers", minimum=1)
    _check_sizes(sizes, "run")
    check_int(seed, "run", "seed", minimum=0)
    check_int(draws, "run", "draws", minimum=1)
    require_x64("mmljax.catalogue.run")

    def one(row: Identity) -> IdentityReport:
        report = run_identity(row, sizes=sizes, seed=seed, draws=draws)
        if progress is not None:
            progress(row)
        return report

    if workers == 1 or len(rows) <= 1:
        return [one(row) for row in rows]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mmljax-check") as pool:
        return list(pool.map(one, rows))
