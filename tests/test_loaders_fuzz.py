"""Fuzzing the file loaders: random bytes, truncations and damaged archives give a clear
`ValueError` naming the loader and the file, or a parse that is correct (equal to an independent
reading of the same bytes) — never another exception, never silently different numbers."""

from __future__ import annotations

import io
import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmljax import data

FUZZ = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

CSV = "x,z,y\n0.5,1,2.25\n-1.5,2e-3,3\n# a comment\n\n7,8,-9.125\n1e3,0.0,4\n"
NORRIS = data._strd_text("Norris")[1]


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory() as d:
        yield d


def _write(workdir: str, name: str, payload: bytes) -> str:
    path = os.path.join(workdir, name)
    with open(path, "wb") as fh:
        fh.write(payload)
    return path


def _reference_csv(text: str):
    """An independent reading of a small comma-separated text with header `x,z,y` (or None)."""
    rows = [r for r in text.splitlines() if r.strip() and not r.lstrip().startswith("#")]
    if len(rows) < 2 or rows[0].split(",") != ["x", "z", "y"]:
        return None
    vals = []
    for r in rows[1:]:
        cells = r.split(",")
        if len(cells) != 3:
            return None
        try:
            vals.append([float(c) for c in cells])
        except ValueError:
            return None
    a = np.array(vals)
    return a if np.all(np.isfinite(a)) else None


def _clear(e: Exception, loader: str, path: str) -> None:
    assert isinstance(e, ValueError), f"{type(e).__name__}: {e}"
    msg = str(e)
    assert msg.startswith(f"{loader}: {path}"), msg
    assert "\n" not in msg and len(msg) < 600, msg


@FUZZ
@given(st.binary(max_size=200))
def test_csv_random_bytes(workdir, payload):
    path = _write(workdir, "random.csv", payload)
    try:
        ds = data.load_csv(path, target=0)
    except Exception as e:  # noqa: BLE001 - the point is which exceptions come out
        _clear(e, "load_csv", path)
        return
    assert ds.X.dtype == np.float64 and ds.X.ndim == 2 and ds.y.shape == (ds.X.shape[0],)
    assert np.all(np.isfinite(ds.X)) and np.all(np.isfinite(ds.y))


@FUZZ
@given(st.text(alphabet="0123456789.,-+eE\n #xyzna_", max_size=120))
def test_csv_random_text_parses_like_an_independent_reader(workdir, body):
    text = "x,z,y\n" + body
    path = _write(workdir, "text.csv", text.encode())
    ref = _reference_csv(text)
    try:
        ds = data.load_csv(path, target="y")
    except Exception as e:  # noqa: BLE001
        _clear(e, "load_csv", path)
        assert ref is None, f"refused a file the reference reads: {text!r}"
        return
    assert ref is not None, f"parsed a file the reference refuses: {text!r}"
    np.testing.assert_array_equal(ds.X, ref[:, :2])
    np.testing.assert_array_equal(ds.y, ref[:, 2])


@FUZZ
@given(st.integers(0, len(CSV)))
def test_csv_truncations(workdir, cut):
    text = CSV[:cut]
    path = _write(workdir, "cut.csv", text.encode())
    ref = _reference_csv(text)
    try:
        ds = data.load_csv(path, target="y", features=["x", "z"])
    except Exception as e:  # noqa: BLE001
        _clear(e, "load_csv", path)
        assert ref is None
        return
    np.testing.assert_array_equal(np.column_stack([ds.X, ds.y]), ref)


def _same_strd(ds, ok) -> None:
    np.testing.assert_array_equal(ds.X, ok.X)
    np.testing.assert_array_equal(ds.y, ok.y)
    np.testing.assert_array_equal(ds.certified_coefficients, ok.certified_coefficients)
    np.testing.assert_array_equal(ds.certified_standard_errors, ok.certified_standard_errors)
    assert (ds.certified_residual_sd, ds.certified_r_squared) == (ok.certified_residual_sd, ok.certified_r_squared)


@FUZZ
@given(st.integers(0, len(NORRIS) - 1))
def test_strd_truncations_are_errors(cut):
    """A cut anywhere up to the last value is an error; a cut in the blank line after it loses nothing."""
    last_value = NORRIS.rindex("0.5") + len("0.5")
    try:
        ds = data.parse_strd(NORRIS[:cut], source="Norris.dat")
    except ValueError as e:
        assert str(e).startswith("Norris.dat: ")
        return
    assert cut > last_value
    _same_strd(ds, data.parse_strd(NORRIS, "Norris.dat"))


@FUZZ
@given(st.data())
def test_strd_damaged_lines(draw):
    """Delete, duplicate or split a line of the certified values or the data: refused (or, where the
    damage misses every value, the same numbers)."""
    lines = NORRIS.splitlines(keepends=True)
    i = draw.draw(st.integers(30, len(lines) - 1))
    if not lines[i].strip():
        return
    how = draw.draw(st.sampled_from(["delete", "duplicate", "split"]))
    if how == "delete":
        damaged = lines[:i] + lines[i + 1 :]
    elif how == "duplicate":
        damaged = lines[: i + 1] + lines[i:]
    else:
        body = lines[i].rstrip("\n")
        k = draw.draw(st.integers(1, len(body.rstrip()) - 1))
        damaged = lines[:i] + [body[:k] + "\n", body[k:] + "\n"] + lines[i + 1 :]
    text = "".join(damaged)
    ok = data.parse_strd(NORRIS, "Norris.dat")
    try:
        ds = data.parse_strd(text, source="Norris.dat")
    except ValueError as e:
        assert str(e).startswith("Norris.dat: ")
        return
    # only changes outside the values may parse, and then to the same numbers
    _same_strd(ds, ok)


@FUZZ
@given(st.text(max_size=300))
def test_strd_random_text(text):
    with pytest.raises(ValueError, match=r"^<fuzz>: "):
        data.parse_strd(text, source="<fuzz>")


def _npz_bytes() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, X=np.arange(12.0).reshape(6, 2) / 7, y=np.linspace(-1, 1, 6))
    return buf.getvalue()


NPZ = _npz_bytes()


def _npz_outcome(workdir, payload: bytes):
    path = _write(workdir, "fuzz.npz", payload)
    try:
        return data.load_npz(path)
    except Exception as e:  # noqa: BLE001
        _clear(e, "load_npz", path)
        return None


@FUZZ
@given(st.binary(max_size=300))
def test_npz_random_bytes(workdir, payload):
    assert _npz_outcome(workdir, payload) is None or payload[:2] == b"PK"


@FUZZ
@given(st.integers(0, len(NPZ) - 1))
def test_npz_truncations_are_errors(workdir, cut):
    assert _npz_outcome(workdir, NPZ[:cut]) is None


@FUZZ
@given(st.integers(0, len(NPZ) - 1), st.integers(1, 255))
def test_npz_flipped_byte_is_an_error_or_the_same_arrays(workdir, pos, flip):
    damaged = bytearray(NPZ)
    damaged[pos] ^= flip
    ds = _npz_outcome(workdir, bytes(damaged))
    if ds is not None:
        np.testing.assert_array_equal(ds.X, np.arange(12.0).reshape(6, 2) / 7)
        np.testing.assert_array_equal(ds.y, np.linspace(-1, 1, 6))
