"""Checkpoints of `minimize`: a header that fingerprints the run, a checksummed payload, atomic writes.

File layout: the magic line `MMLJAX-CHECKPOINT-2`, one line of JSON (the header), then the payload
(the leaves of `{params, opt_state, step, history}` as `.npy` records, `equinox.tree_serialise_leaves`).
The header holds `fingerprint` — everything that determines the trajectory: the parameter structure
(tree, shapes, dtypes) and a hash of `params0`, the data's shapes, dtypes and a content hash, the
optimiser (its functions' names and the constants in their closures: learning rates, betas, ...,
and the structure of its initial state), the loss function's identity (module, qualified name and a
hash of its code where Python exposes it), `max_steps`, `batch_size` and the key — and
`payload_sha256`, the checksum of the payload. Loading compares both and names what differs.
Reading never unpickles (`numpy.load` with `allow_pickle=False`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import numpy as np

from .._io import atomic_write_bytes

MAGIC = b"MMLJAX-CHECKPOINT-2\n"
ANY_MAGIC = b"MMLJAX-CHECKPOINT-"
FORMAT = 2


def _hash_bytes(*chunks: bytes) -> str:
    h = hashlib.sha256()
    for c in chunks:
        h.update(c)
    return h.hexdigest()[:32]


def tree_fingerprint(tree: Any) -> dict:
    """Structure, shapes, dtypes and a content hash of a pytree of arrays (host copies)."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    arrays = [np.asarray(leaf) for leaf in leaves]
    return {
        "structure": str(treedef),
        "shapes": [list(a.shape) for a in arrays],
        "dtypes": [a.dtype.str for a in arrays],
        "sha256": _hash_bytes(*(np.ascontiguousarray(a).tobytes() for a in arrays)),
    }


def _constants(fn: Any, depth: int = 0, seen: set | None = None) -> list:
    """Numbers, strings and nested functions' constants found in a function's closure (recursively)."""
    seen = set() if seen is None else seen
    if depth > 6 or id(fn) in seen or (depth > 0 and _module_level(fn)):
        return []
    seen.add(id(fn))
    out: list = []
    cells = getattr(fn, "__closure__", None) or ()
    names = getattr(getattr(fn, "__code__", None), "co_freevars", ())
    for name, cell in zip(names, cells):
        try:
            v = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(v, (bool, int, float, str)) or v is None:
            out.append([name, v if not isinstance(v, float) else repr(v)])
        elif isinstance(v, (np.ndarray, jax.Array)) and np.size(v) <= 64:
            out.append([name, np.asarray(v).tolist()])
        elif callable(v):
            out.append([name, _function_name(v), _constants(v, depth + 1, seen)])
        elif isinstance(v, (tuple, list)):
            out.append(
                [
                    name,
                    [(_function_name(x), _constants(x, depth + 1, seen)) if callable(x) else repr(x) for x in v][:32],
                ]
            )
    return out


def _module_level(fn: Any) -> bool:
    """A named function of a module (`mmljax.models.basis.apply`): its name identifies it; what its own
    closure holds (decorators' caches, wrappers) is an implementation detail, not part of a run."""
    qualname = getattr(fn, "__qualname__", "")
    return bool(qualname) and "<locals>" not in qualname and "<lambda>" not in qualname


def _function_name(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


def _stable_repr(obj: Any) -> str:
    """`repr` without memory addresses (`<function f at 0x7f...>`), which differ between processes and runs."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(obj))


def function_identity(fn: Callable) -> dict:
    """The identity of a loss function where Python exposes it: its name and a hash of its code and constants."""
    ident = {"name": _function_name(fn)}
    call = vars(type(fn)).get("__call__")  # a callable object (an equinox module): its method's code
    code = getattr(fn, "__code__", None) or getattr(call, "__code__", None)
    if code is not None:
        consts = repr([c for c in code.co_consts if isinstance(c, (int, float, str, bytes, tuple))])
        ident["code_sha256"] = _hash_bytes(code.co_code, consts.encode())
        ident["closure"] = json.dumps(_constants(fn), sort_keys=True, default=_stable_repr)
    return ident


def optimizer_identity(optimizer: Any, opt_state: Any) -> dict:
    """What optax exposes of an optimiser: the functions, the constants in their closures (learning rate,
    betas, eps, ...), and the structure, shapes and content of its initial state."""
    return {
        "init": _function_name(optimizer.init),
        "update": _function_name(optimizer.update),
        "hyperparameters": json.dumps(
            _constants(optimizer.init) + _constants(optimizer.update), sort_keys=True, default=_stable_repr
        ),
        "initial_state": tree_fingerprint(opt_state),
    }


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def is_checkpoint(path: str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(len(ANY_MAGIC)) == ANY_MAGIC


def refuse_foreign(path: str, where: str) -> None:
    """Refuse to run when `path` exists and is not an mmljax checkpoint (it would be overwritten)."""
    if os.path.isdir(path):
        raise ValueError(f"{where}: checkpoint {path} is a directory; pass a file path")
    if os.path.exists(path) and not is_checkpoint(path):
        raise ValueError(
            f"{where}: {path} exists and is not an mmljax checkpoint; refusing to overwrite it — choose "
            f"another checkpoint path (or move the file away)"
        )


def save(path: str, fingerprint: dict, state: Any) -> None:
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, state)
    payload = buf.getvalue()
    header = {
        "format": FORMAT,
        "fingerprint": fingerprint,
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "payload_bytes": len(payload),
    }
    atomic_write_bytes(path, MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + payload)


def load(path: str, fingerprint: dict, like: Any, where: str) -> Any:
    """The saved state, after checking the magic, the header's fingerprint and the payload's checksum."""
    with open(path, "rb") as fh:
        raw = fh.read()
    fix = "delete it, choose another checkpoint path, or pass resume=False to start over (it will be overwritten)"
    if not raw.startswith(ANY_MAGIC):
        raise ValueError(f"{where}: {path} is not an mmljax checkpoint; refusing to read or overwrite it")
    if not raw.startswith(MAGIC):
        raise ValueError(f"{where}: checkpoint {path} was written in an older format; {fix}")
    head, _, payload = raw[len(MAGIC) :].partition(b"\n")
    try:
        saved = json.loads(head)
        saved_fp, digest = saved["fingerprint"], saved["payload_sha256"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{where}: checkpoint {path} has an unreadable header (corrupt); {fix}") from None
    a, b = _flatten(saved_fp), _flatten(fingerprint)
    diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if diff:
        shown = "; ".join(_difference(k, a.get(k), b.get(k)) for k in diff[:6])
        raise ValueError(
            f"{where}: checkpoint {path} belongs to a different run — {', '.join(diff)} differ ({shown}); {fix}"
        )
    if hashlib.sha256(payload).hexdigest() != digest:
        raise ValueError(
            f"{where}: checkpoint {path} is corrupt: the payload's checksum does not match its header "
            f"({len(payload)} bytes, expected {saved.get('payload_bytes')}); {fix}"
        )
    try:
        return eqx.tree_deserialise_leaves(io.BytesIO(payload), like)
    except Exception as e:  # a payload that matches its checksum but not the state's layout
        raise ValueError(f"{where}: checkpoint {path} is unreadable ({type(e).__name__}: {e}); {fix}") from None


def _short(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _difference(key: str, saved: Any, now: Any) -> str:
    """`key: saved ... vs now ...`, for long strings around the first character where they differ."""
    if isinstance(saved, str) and isinstance(now, str) and max(len(saved), len(now)) > 60:
        i = next((j for j, (x, y) in enumerate(zip(saved, now)) if x != y), min(len(saved), len(now)))
        lo = max(i - 25, 0)
        return f"{key}: at character {i}, saved ...{saved[lo : i + 35]!r}... vs now ...{now[lo : i + 35]!r}..."
    return f"{key}: saved {_short(saved)} vs now {_short(now)}"


__all__ = [
    "save",
    "load",
    "refuse_foreign",
    "tree_fingerprint",
    "function_identity",
    "optimizer_identity",
]
