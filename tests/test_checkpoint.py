"""minimize's checkpoints cannot be confused or corrupted silently, never clobber a foreign file, keep
permissions and clean up after killed runs; the atomic writer underneath."""

import os
import stat
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mmljax._io import atomic_write_bytes
from mmljax.solvers import minimize


def loss(p, batch):
    return 0.5 * jnp.mean((batch["y"] - batch["X"] @ p["w"] - p["b"]) ** 2)


def other_loss(p, batch):
    return 0.5 * jnp.mean((batch["y"] - batch["X"] @ p["w"] - p["b"]) ** 2) + 1e-3 * jnp.sum(p["w"] ** 2)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((32, 2))
    return {"X": jnp.asarray(X), "y": jnp.asarray(X @ np.array([1.0, -1.0]) + 0.5)}


P0 = {"b": jnp.zeros(()), "w": jnp.zeros(2)}
SGD = optax.sgd(0.1)


def run(path, data, **kw):
    base = dict(
        optimizer=SGD, max_steps=10, args=data, batch_size=8, checkpoint=path, checkpoint_every=5, progress=False
    )
    base.update(kw)
    opt = base.pop("optimizer")
    f = base.pop("loss", loss)
    p0 = base.pop("params0", P0)
    return minimize(f, p0, opt, **base)


def test_a_checkpoint_of_another_run_is_refused_naming_what_differs(data, tmp_path):
    path = tmp_path / "c.ckpt"
    first = run(path, data)
    again = run(path, data)  # same run: resumed at its end, same answer
    assert np.array_equal(first.params["w"], again.params["w"])
    changed = {k: np.asarray(v).copy() for k, v in data.items()}
    changed["y"][3] += 1e-9  # same shapes, different content
    cases = [
        (dict(args={k: jnp.asarray(v) for k, v in changed.items()}), r"args\.sha256"),
        (dict(optimizer=optax.sgd(0.2)), r"optimizer\.hyperparameters"),
        (dict(optimizer=optax.adam(0.1)), r"optimizer\.init"),
        (dict(loss=other_loss), r"loss\.name"),
        (dict(key=jax.random.PRNGKey(1)), r"\bkey\b"),
        (dict(batch_size=4), "batch_size"),
        (dict(params0={"b": jnp.ones(()), "w": jnp.zeros(2)}), r"params0\.sha256"),
        (dict(params0={"b": jnp.zeros(()), "w": jnp.zeros((2, 1))}), r"params0\.s"),
    ]
    for kw, fragment in cases:
        with pytest.raises(ValueError, match=rf"belongs to a different run — .*{fragment}.*resume=False"):
            run(path, data, **kw)


def test_a_flipped_byte_in_the_payload_is_detected(data, tmp_path):
    path = tmp_path / "c.ckpt"
    run(path, data)
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0x01  # inside the last saved array (the history)
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="is corrupt: the payload's checksum does not match"):
        run(path, data)
    path.write_bytes(bytes(raw[:40]))  # a torn header
    with pytest.raises(ValueError, match="unreadable header"):
        run(path, data)
    fresh = run(path, data, resume=False)  # an mmljax checkpoint may be replaced on request
    assert fresh.steps == 10


@pytest.mark.parametrize("resume", [True, False])
def test_a_foreign_file_is_never_overwritten(data, tmp_path, resume):
    path = tmp_path / "notes.txt"
    path.write_text("precious")
    with pytest.raises(ValueError, match="is not an mmljax checkpoint; refusing to overwrite"):
        run(path, data, resume=resume)
    assert path.read_text() == "precious"
    with pytest.raises(ValueError, match="is a directory"):
        run(tmp_path, data, resume=resume)


def test_permissions_are_kept_and_new_files_get_the_umask_mode(data, tmp_path):
    path = tmp_path / "c.ckpt"
    old = os.umask(0o022)
    try:
        run(path, data)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
        os.chmod(path, 0o640)
        run(path, data, resume=False)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    finally:
        os.umask(old)


def test_stale_temporary_files_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".c.ckpt.{pid}.abc123.tmp"
    stale.write_bytes(b"x" * 1000)
    live = tmp_path / f".c.ckpt.{os.getppid()}.def456.tmp"  # a running process's: left alone
    live.write_bytes(b"y")
    other = tmp_path / f".d.ckpt.{pid}.abc123.tmp"  # another file's: left alone
    other.write_bytes(b"z")
    atomic_write_bytes(tmp_path / "c.ckpt", b"new")
    assert not stale.exists() and live.exists() and other.exists()
    assert (tmp_path / "c.ckpt").read_bytes() == b"new"


def test_reading_never_unpickles(data, tmp_path):
    """A payload with a pickled object array (checksum made to match) is refused, not executed."""
    import hashlib
    import io
    import json

    path = tmp_path / "c.ckpt"
    run(path, data)
    raw = path.read_bytes()
    magic, rest = raw.split(b"\n", 1)
    head, payload = rest.split(b"\n", 1)
    buf = io.BytesIO()
    np.save(buf, np.array([object()], dtype=object), allow_pickle=True)
    evil = buf.getvalue() + payload
    header = json.loads(head)
    header["payload_sha256"] = hashlib.sha256(evil).hexdigest()
    path.write_bytes(magic + b"\n" + json.dumps(header, sort_keys=True).encode() + b"\n" + evil)
    with pytest.raises(ValueError, match="is unreadable"):
        run(path, data)
