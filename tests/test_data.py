"""Data loading: CSV/NPZ happy paths and every bad-file error naming file, line/row and problem."""

import numpy as np
import pytest

from mmljax.data import (
    load_csv,
    load_npz,
    load_strd,
    synthetic_line,
    synthetic_polynomial,
    synthetic_sine,
)
from mmljax.solvers import linear_regression, polyfit


def _write(tmp_path, text, name="d.csv", mode="w"):
    path = tmp_path / name
    if mode == "w":
        path.write_text(text)
    else:
        path.write_bytes(text)
    return path


def test_load_csv_reads_target_and_features(tmp_path):
    path = _write(tmp_path, "# a comment\nx1,x2,y\n1,2,3\n\n4, 5 ,6.5\n7,8,9e0\n")
    ds = load_csv(path, target="y")
    assert ds.feature_names == ("x1", "x2") and ds.target_name == "y" and ds.source == str(path)
    np.testing.assert_array_equal(ds.X, [[1, 2], [4, 5], [7, 8]])
    np.testing.assert_array_equal(ds.y, [3, 6.5, 9])
    assert ds.X.dtype == np.float64 and ds.n == 3
    by_index = load_csv(path, target=0, features=["y"])
    np.testing.assert_array_equal(by_index.y, [1, 4, 7])
    np.testing.assert_array_equal(by_index.x, [3, 6.5, 9])
    no_header = load_csv(_write(tmp_path, "1;2\n3;4\n", "n.csv"), target=-1, header=False, delimiter=";")
    assert no_header.feature_names == ("c0",) and no_header.target_name == "c1"
    with pytest.raises(ValueError, match="has 2 predictors; use .X"):
        _ = ds.x


@pytest.mark.parametrize(
    "text, kwargs, match",
    [
        ("", {}, r"d\.csv: the file is empty"),
        ("\n\n# only comments\n", {}, "the file is empty"),
        ("x,y\n", {}, "no data rows after the header"),
        ("x,y\n1,2\n3\n", {}, r"line 3: ragged row with 1 fields, expected 2"),
        ("x,y\n1,2\n3,4,5\n", {}, r"line 3: ragged row with 3 fields"),
        ("x,y\n1,2\n3,abc\n", {}, r"line 3, column 'y': non-numeric value 'abc'"),
        ("x,y\n1,nan\n", {}, r"line 2, column 'y': 'nan' is NaN/Inf"),
        ("x,y\ninf,1\n", {}, r"line 2, column 'x': 'inf' is NaN/Inf"),
        ("x,y\n1,2\n", {"target": "z"}, r"no target column 'z'; the columns are \['x', 'y'\]"),
        ("x,y\n1,2\n", {"target": 5}, "target column index 5 is out of range"),
        ("x,y\n1,2\n", {"features": ["w"]}, "no feature column 'w'"),
        ("y\n1\n", {}, "no feature columns besides the target 'y'"),
        ("x,x,y\n1,2,3\n", {}, r"line 1: duplicate column name\(s\) \['x'\]"),
    ],
)
def test_bad_csv_files_name_file_line_and_problem(tmp_path, text, kwargs, match):
    path = _write(tmp_path, text)
    kwargs = {"target": "y", **kwargs}
    with pytest.raises(ValueError, match=match) as info:
        load_csv(path, **kwargs)
    assert str(path) in str(info.value)


def test_csv_file_system_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_csv(tmp_path / "missing.csv", target="y")
    with pytest.raises(ValueError, match="is a directory"):
        load_csv(tmp_path, target="y")
    with pytest.raises(ValueError, match=r"line 2: not UTF-8 text"):
        load_csv(_write(tmp_path, b"x,y\n\xff\xfe,1\n", "bin.csv", mode="wb"), target="y")


def test_load_npz_reads_arrays_without_pickle(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.arange(6.0).reshape(3, 2), y=np.array([1, 2, 3]))
    ds = load_npz(path)
    assert ds.X.shape == (3, 2) and ds.y.dtype == np.float64 and ds.target_name == "y"
    np.savez(tmp_path / "one.npz", inputs=np.arange(3.0), out=np.ones(3))
    assert load_npz(tmp_path / "one.npz", x_key="inputs", y_key="out").X.shape == (3, 1)


def test_load_npz_refuses_object_arrays_and_never_unpickles(tmp_path):
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('unpickled!')",))

    path = tmp_path / "evil.npz"
    np.savez(path, X=np.array([Boom(), 1], dtype=object), y=np.ones(2))
    with pytest.raises(ValueError, match=r"evil\.npz: array 'X' cannot be read without unpickling"):
        load_npz(path)


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"X": np.ones((3, 2))}, r"no array 'y'; the archive holds \['X'\]"),
        ({"X": np.ones((3, 2)), "y": np.ones(4)}, "'X' has 3 rows but 'y' has 4"),
        ({"X": np.ones((3, 2)), "y": np.array([1.0, np.nan, np.inf])}, r"'y' has NaN/Inf in row\(s\) \[1, 2\]"),
        ({"X": np.ones((3, 2, 1)), "y": np.ones(3)}, r"expected 'X' of shape \(n, d\)"),
        ({"X": np.array(["a", "b"]), "y": np.ones(2)}, "has dtype <U1; expected real numbers"),
        ({"X": np.ones((0, 2)), "y": np.ones(0)}, "empty"),
    ],
)
def test_bad_npz_files(tmp_path, arrays, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=match):
        load_npz(path)


def test_npz_that_is_not_an_archive(tmp_path):
    with pytest.raises(ValueError, match=r"not\.npz: not a readable \.npz archive"):
        load_npz(_write(tmp_path, "hello", "not.npz"))
    np.save(tmp_path / "single.npy", np.ones(3))
    with pytest.raises(ValueError, match="a single .npy array"):
        load_npz(tmp_path / "single.npy")
    with pytest.raises(FileNotFoundError):
        load_npz(tmp_path / "missing.npz")


def test_synthetic_generators_are_reproducible_and_fit_back():
    a, b = synthetic_polynomial(40, seed=3), synthetic_polynomial(40, seed=3)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.y, synthetic_polynomial(40, seed=4).y)
    clean = synthetic_polynomial(40, (1.0, -2.0, 0.5, 1.0), noise=0.0)
    np.testing.assert_array_equal(clean.y, clean.truth(clean.x))
    np.testing.assert_allclose(polyfit(clean.x, clean.y, 3).coefficients, clean.coefficients, rtol=1e-13)
    line = synthetic_line(30, slope=2.0, noise=0.0)
    np.testing.assert_allclose(linear_regression(line.X, line.y, intercept=False).coefficients, [2.0], rtol=1e-14)
    sine = synthetic_sine(25, noise=0.2)
    assert sine.X.shape == (25, 1) and 0 <= sine.x.min() and sine.x.max() <= 1
    resid = sine.y - sine.truth(sine.x)
    assert 0.1 < resid.std() < 0.3  # the noise level asked for
    with pytest.raises(ValueError, match="noise must be"):
        synthetic_sine(noise=-1)
    with pytest.raises(ValueError, match="x_range must be"):
        synthetic_line(x_range=(1, 0))


def test_strd_and_csv_round_trip(tmp_path):
    ds = load_strd("Longley")
    lines = ["y," + ",".join(ds.feature_names)] + [
        ",".join(repr(float(v)) for v in (yy, *row)) for yy, row in zip(ds.y, ds.X)
    ]
    path = _write(tmp_path, "\n".join(lines) + "\n", "longley.csv")
    back = load_csv(path, target="y")
    np.testing.assert_array_equal(back.X, ds.X)
    np.testing.assert_array_equal(back.y, ds.y)
