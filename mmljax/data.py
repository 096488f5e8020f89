"""Datasets: NIST StRD with certified values, CSV/NPZ loading with validation, synthetic curves.

Every loader returns float64 numpy arrays (`X (n, d)`, `y (n,)`) in a small frozen dataclass.
Reading a file never executes or unpickles anything; a bad file raises `ValueError` naming the
file, the line (or row) and the problem.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.resources
import io
import math
import os
import re
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np

from ._validate import check_bool, check_int, check_real

STRD_NAMES = (
    "Norris",
    "Pontius",
    "NoInt1",
    "NoInt2",
    "Filip",
    "Longley",
    "Wampler1",
    "Wampler2",
    "Wampler3",
    "Wampler4",
    "Wampler5",
)


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Observations `X (n, d)` (float64) and targets `y (n,)`, with names and where they came from."""

    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    target_name: str
    source: str

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    @property
    def x(self) -> np.ndarray:
        """The single predictor as a 1-D `(n,)` array (only when `d == 1`)."""
        if self.X.shape[1] != 1:
            raise ValueError(f"{self.source}: has {self.X.shape[1]} predictors; use .X (n, d) instead of .x")
        return self.X[:, 0]


@dataclasses.dataclass(frozen=True)
class StrdDataset(Dataset):
    """A NIST StRD linear least-squares dataset with its certified results (15 significant digits).

    `kind` is "polynomial" (one predictor, `polyfit(x, y, degree, intercept=...)`) or "linear"
    (`linear_regression(X, y)`); `certified_coefficients` are `B0..Bk` (`B1..Bk` without intercept),
    `certified_standard_errors` their standard deviations; `r_squared` is uncentred when there
    is no intercept (NoInt1/2), as NIST reports it.
    """

    name: str = ""
    kind: str = "polynomial"
    degree: int = 1
    intercept: bool = True
    certified_coefficients: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    certified_standard_errors: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    certified_residual_sd: float = 0.0
    certified_r_squared: float = 0.0
    difficulty: str = ""

    def fit(self, **kwargs: Any):
        """Fit the dataset's model with `polyfit`/`linear_regression` (keyword arguments passed on)."""
        from .solvers import linear_regression, polyfit

        if self.kind == "polynomial":
            return polyfit(self.x, self.y, self.degree, intercept=self.intercept, **kwargs)
        return linear_regression(self.X, self.y, intercept=self.intercept, **kwargs)


def log_relative_error(estimate: Any, certified: Any, cap: float = 15.0) -> np.ndarray | np.float64:
    """LRE = -log10(|est - cert| / |cert|) (or -log10|est| where cert == 0), capped at `cap`.

    The number of correct significant digits; elementwise (a `np.float64` for scalar inputs), 0 for a non-finite
    estimate.
    """
    est = np.asarray(estimate, dtype=np.float64)
    cert = np.asarray(certified, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.where(cert == 0, np.abs(est), np.abs(est - cert) / np.abs(cert))
        lre = -np.log10(err)
    lre = np.where(np.isfinite(est), lre, 0.0)
    return np.clip(np.nan_to_num(lre, nan=0.0, posinf=cap), 0.0, cap)


def strd_scores(dataset: StrdDataset, result: Any) -> dict[str, float]:
    """Worst LRE (digits) of a fit against the certified values of a StRD dataset.

    **Returns:** `{"coefficients", "standard_errors", "residual_sd", "r_squared"}`, each the
    minimum LRE over its entries (capped at 15).
    """
    return {
        "coefficients": float(log_relative_error(result.coefficients, dataset.certified_coefficients).min()),
        "standard_errors": float(log_relative_error(result.standard_errors, dataset.certified_standard_errors).min()),
        "residual_sd": float(log_relative_error(result.residual_sd, dataset.certified_residual_sd)),
        "r_squared": float(log_relative_error(result.r_squared, dataset.certified_r_squared)),
    }


# ---------------------------------------------------------------------------------- NIST StRD


def _strd_text(name: str) -> tuple[str, str]:
    lookup = {n.lower(): n for n in STRD_NAMES}
    key = str(name).lower().removesuffix(".dat")
    if key not in lookup:
        raise ValueError(f"load_strd: unknown dataset {name!r}; available: {', '.join(STRD_NAMES)}")
    canonical = lookup[key]
    res = importlib.resources.files("mmljax").joinpath("datasets", "strd", f"{canonical}.dat")
    return canonical, res.read_text(encoding="ascii")


_STRD_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _strd_float(token: str, source: str, lineno: int, line: str) -> float:
    """A number as NIST writes it (`-0.262323073774029`, `0.429796848199937E-03`): nothing else."""
    if not _STRD_NUMBER.fullmatch(token):
        raise ValueError(f"{source}: line {lineno}: {token!r} is not a number (in {line.strip()!r})")
    v = float(token)
    if not math.isfinite(v):
        raise ValueError(f"{source}: line {lineno}: {token!r} overflows float64 (in {line.strip()!r})")
    return v


def _header_count(head: str, pattern: str) -> int | None:
    m = re.search(pattern, head)
    return int(m.group(1)) if m else None


def parse_strd(text: str, source: str = "<strd>") -> StrdDataset:
    """Parse the text of a NIST StRD linear-regression `.dat` file (the format `load_strd` reads).

    The header's line ranges ("Certified Values (lines a to b)", "Data (lines c to d)") and counts
    ("N Observations", "K Parameters", "P Predictor Variable(s)") are cross-checked against the
    body, and every value must be a complete number, so a truncated or damaged file is refused.

    **Raises:** `TypeError` when `text` is not a string; `ValueError` naming `source` and the line
    for a missing or inconsistent header, a file that ends early or mid-line, a malformed or
    non-finite number, a ragged data row or certified values that do not match the data.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_strd: text must be a str (the file's contents); got {type(text).__name__}")
    lines = text.splitlines()
    head = "\n".join(lines[:12])
    cert_m = re.search(r"Certified Values\s*\(lines\s+(\d+)\s+to\s+(\d+)\)", head)
    data_m = re.search(r"Data\s*\(lines\s+(\d+)\s+to\s+(\d+)\)", head)
    if not cert_m or not data_m:
        raise ValueError(
            f"{source}: not a NIST StRD file (no 'Certified Values (lines a to b)' / "
            f"'Data (lines c to d)' in the header)"
        )
    c0, c1 = int(cert_m.group(1)), int(cert_m.group(2))
    d0, d1 = int(data_m.group(1)), int(data_m.group(2))
    if not (1 <= c0 <= c1 < d0 <= d1):
        raise ValueError(
            f"{source}: header line ranges are inconsistent: certified values on lines {c0}-{c1}, "
            f"data on lines {d0}-{d1} (expected 1 <= a <= b < c <= d)"
        )
    if len(lines) < d1:
        raise ValueError(
            f"{source}: the file has {len(lines)} lines but its header puts data on lines "
            f"{d0} to {d1}: the file is truncated"
        )
    if len(lines) <= d1 and not text.endswith(("\n", "\r")):
        raise ValueError(
            f"{source}: line {len(lines)}: the file ends mid-line (no final newline): the file is "
            f"truncated, possibly mid-number ({lines[-1].strip()[-40:]!r})"
        )
    full_head = "\n".join(lines[: c0 - 1])
    n_obs = _header_count(full_head, r"(\d+)\s+Observations")
    n_par = _header_count(full_head, r"(\d+)\s+Parameters")
    n_pred = _header_count(full_head, r"(\d+)\s+Predictor Variables?")
    coefs: dict[int, tuple[float, float]] = {}
    sd = r2 = None
    for lineno in range(c0, c1 + 1):
        line = lines[lineno - 1]
        tokens = line.split()
        if tokens and re.fullmatch(r"B\d+", tokens[0]):
            if len(tokens) != 3:
                raise ValueError(
                    f"{source}: line {lineno}: a certified parameter needs 'Bk estimate std-error'; "
                    f"got {line.strip()!r}"
                )
            k = int(tokens[0][1:])
            if k in coefs:
                raise ValueError(f"{source}: line {lineno}: parameter {tokens[0]} is certified twice")
            coefs[k] = (_strd_float(tokens[1], source, lineno, line), _strd_float(tokens[2], source, lineno, line))
        elif tokens[:2] == ["Standard", "Deviation"] and len(tokens) >= 3 and sd is None:
            sd = _strd_float(tokens[2], source, lineno, line)
        elif tokens and tokens[0] == "R-Squared":
            if len(tokens) < 2:
                raise ValueError(f"{source}: line {lineno}: R-Squared without a value")
            r2 = _strd_float(tokens[1], source, lineno, line)
    if not coefs or sd is None or r2 is None:
        raise ValueError(f"{source}: lines {c0}-{c1}: missing certified parameters, residual SD or R-squared")
    keys = sorted(coefs)
    if keys != list(range(keys[0], keys[0] + len(keys))) or keys[0] not in (0, 1):
        raise ValueError(
            f"{source}: lines {c0}-{c1}: certified parameters must be B0..Bk or B1..Bk; got "
            f"{', '.join(f'B{k}' for k in keys)}"
        )
    if n_par is not None and n_par != len(keys):
        raise ValueError(f"{source}: the header announces {n_par} parameters but lines {c0}-{c1} certify {len(keys)}")
    rows = []
    for lineno in range(d0, d1 + 1):
        line = lines[lineno - 1]
        tokens = line.split()
        if not tokens:
            raise ValueError(f"{source}: line {lineno}: blank line inside the data (lines {d0} to {d1})")
        rows.append([_strd_float(t, source, lineno, line) for t in tokens])
        if len(rows[-1]) != len(rows[0]):
            raise ValueError(f"{source}: line {lineno}: {len(rows[-1])} values, expected {len(rows[0])} like line {d0}")
    for lineno in range(d1 + 1, len(lines) + 1):
        if lines[lineno - 1].strip():
            raise ValueError(
                f"{source}: line {lineno}: unexpected content after the data, which ends on line {d1} "
                f"({lines[lineno - 1].strip()[:40]!r})"
            )
    data = np.array(rows, dtype=np.float64)
    if data.shape[1] < 2:
        raise ValueError(
            f"{source}: line {d0}: a data row needs the response and at least one predictor; "
            f"got {data.shape[1]} value(s)"
        )
    if n_obs is not None and n_obs != data.shape[0]:
        raise ValueError(
            f"{source}: the header announces {n_obs} observations but lines {d0}-{d1} hold {data.shape[0]}"
        )
    y, X = data[:, 0], data[:, 1:]
    if n_pred is not None and n_pred != X.shape[1]:
        raise ValueError(
            f"{source}: the header announces {n_pred} predictor variable(s) but the data rows have {X.shape[1]}"
        )
    intercept = keys[0] == 0
    kind = "polynomial" if X.shape[1] == 1 else "linear"
    if kind == "linear" and X.shape[1] != len(keys) - intercept:
        raise ValueError(
            f"{source}: {len(keys)} certified parameters do not fit {X.shape[1]} predictors "
            f"{'with' if intercept else 'without'} an intercept"
        )
    diff = re.search(r"(Lower|Average|Higher) Level of Difficulty", text)
    name = re.search(r"Dataset Name:\s*(\S+)", text)
    return StrdDataset(
        X=X,
        y=y,
        feature_names=tuple(f"x{j + 1}" if X.shape[1] > 1 else "x" for j in range(X.shape[1])),
        target_name="y",
        source=source,
        name=name.group(1) if name else source,
        kind=kind,
        degree=len(keys) - (1 if intercept else 0) if kind == "polynomial" else 1,
        intercept=intercept,
        certified_coefficients=np.array([coefs[k][0] for k in keys]),
        certified_standard_errors=np.array([coefs[k][1] for k in keys]),
        certified_residual_sd=float(sd),
        certified_r_squared=float(r2),
        difficulty=diff.group(1).lower() if diff else "",
    )


def load_strd(name: str) -> StrdDataset:
    """One of the 11 NIST StRD linear least-squares datasets, with its certified values.

    **Arguments:** `name`, one of `STRD_NAMES` (case-insensitive): Norris, Pontius, NoInt1,
    NoInt2, Filip, Longley, Wampler1-5.

    **Returns:** a `StrdDataset` (`X (n, d)`, `y (n,)`, `certified_coefficients`, ...); `.fit()`
    fits its model. The files ship inside the package.
    """
    canonical, text = _strd_text(name)
    return parse_strd(text, source=f"{canonical}.dat")


# ---------------------------------------------------------------------------------- CSV and NPZ


def _read_text(path: str | os.PathLike, where: str) -> str:
    if not os.path.exists(path):
        raise FileNotFoundError(f"{where}: {path}: no such file")
    if os.path.isdir(path):
        raise ValueError(f"{where}: {path}: is a directory, expected a file")
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ValueError(
            f"{where}: {path}: line {line}: not UTF-8 text (byte {raw[e.start]:#04x}); is this really a CSV file?"
        ) from None


def _column_key(key: Any, where: str, what: str) -> None:
    if isinstance(key, bool) or not isinstance(key, (str, int, np.integer)):
        raise TypeError(
            f"{where}: {what} must be a column name (str) or a 0-based index (int); got {key!r} ({type(key).__name__})"
        )


def load_csv(
    path: str | os.PathLike,
    target: str | int,
    *,
    features: list[str | int] | None = None,
    delimiter: str = ",",
    header: bool = True,
) -> Dataset:
    """Read a numeric CSV file: one column is the target, the others (or `features`) the predictors.

    **Arguments:** `path`; `target` the target column (header name, or 0-based index); `features`
    the predictor columns (default: all others); `delimiter`; `header` whether the first non-blank
    line names the columns (otherwise they are called `c0, c1, ...`). Blank lines and lines
    starting with `#` are skipped.

    **Returns:** a `Dataset` with `X (n, d)` and `y (n,)` in float64.

    **Raises:** `ValueError` naming the file, line and column for an empty file, a ragged row, a
    non-numeric cell or NaN/Inf, and for a missing target/feature column (listing the columns), a
    feature that is the target column, or a feature given twice; `TypeError` for options of the
    wrong type (`features` must be a list of names or indices, not a single string).
    """
    where = "load_csv"
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{where}: path must be a file name (str or os.PathLike); got {type(path).__name__}")
    _column_key(target, where, "target")
    if features is not None:
        if isinstance(features, (str, bytes, int)) or not isinstance(features, (list, tuple)):
            raise TypeError(
                f"{where}: features must be a list of column names or indices; got {features!r} — "
                f"for one column write features=[{features!r}]"
            )
        for f in features:
            _column_key(f, where, "feature")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '\r\n"':
        raise ValueError(f"{where}: delimiter must be one character (not a quote or newline); got {delimiter!r}")
    header = check_bool(header, where, "header")
    text = _read_text(path, where)
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise ValueError(f"{where}: {path}: line {line}: NUL byte — a binary file, not CSV text")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    records = []
    try:
        for row in reader:
            records.append((reader.line_num, row))
    except csv.Error as e:
        raise ValueError(f"{where}: {path}: line {reader.line_num}: malformed CSV ({e})") from None
    records = [
        (ln, row) for ln, row in records if row and any(c.strip() for c in row) and not row[0].lstrip().startswith("#")
    ]
    if not records:
        raise ValueError(f"{where}: {path}: the file is empty (no header, no data rows)")
    if header:
        names = [c.strip() for c in records[0][1]]
        records = records[1:]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"{where}: {path}: line 1: duplicate column name(s) {dup}")
    else:
        names = [f"c{j}" for j in range(len(records[0][1]))]
    if not records:
        raise ValueError(f"{where}: {path}: no data rows after the header")

    def column(key: str | int, what: str) -> int:
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            if not -len(names) <= key < len(names):
                raise ValueError(
                    f"{where}: {path}: {what} column index {key} is out of range "
                    f"(the file has {len(names)} columns: {names})"
                )
            return int(key) % len(names)
        if key not in names:
            raise ValueError(f"{where}: {path}: no {what} column {key!r}; the columns are {names}")
        return names.index(key)

    t = column(target, "target")
    if features is not None:
        cols = [column(f, "feature") for f in features]
        if t in cols:
            raise ValueError(
                f"{where}: {path}: the target column {names[t]!r} is also listed in features "
                f"({list(features)!r}); a predictor cannot be the target"
            )
        dup = sorted({names[j] for j in cols if cols.count(j) > 1})
        if dup:
            raise ValueError(f"{where}: {path}: feature column(s) {dup} listed more than once in features")
    else:
        cols = [j for j in range(len(names)) if j != t]
    if not cols:
        raise ValueError(f"{where}: {path}: no feature columns besides the target {names[t]!r}")
    values = np.empty((len(records), len(names)))
    for i, (lineno, row) in enumerate(records):
        if len(row) != len(names):
            raise ValueError(
                f"{where}: {path}: line {lineno}: ragged row with {len(row)} fields, "
                f"expected {len(names)} ({'like the header' if header else 'like the first row'})"
            )
        for j, cell in enumerate(row):
            try:
                if "_" in cell:  # float() reads "1_000" as 1000: not a number in a data file
                    raise ValueError
                v = float(cell)
            except ValueError:
                raise ValueError(
                    f"{where}: {path}: line {lineno}, column {names[j]!r}: non-numeric value {cell.strip()!r}"
                ) from None
            if not math.isfinite(v):
                raise ValueError(
                    f"{where}: {path}: line {lineno}, column {names[j]!r}: {cell.strip()!r} is "
                    f"NaN/Inf; remove or impute the row"
                )
            values[i, j] = v
    return Dataset(
        X=values[:, cols],
        y=values[:, t],
        feature_names=tuple(names[j] for j in cols),
        target_name=names[t],
        source=str(path),
    )


def load_npz(path: str | os.PathLike, *, x_key: str = "X", y_key: str = "y") -> Dataset:
    """Read `X (n, d)` (or `(n,)`) and `y (n,)` from a numpy `.npz` archive, never unpickling.

    **Raises:** `ValueError` naming the file for a non-archive, a missing key (listing the keys),
    object arrays, non-numeric arrays, mismatched rows, or NaN/Inf (with the first bad rows).
    """
    where = "load_npz"
    if not os.path.exists(path):
        raise FileNotFoundError(f"{where}: {path}: no such file")
    if os.path.isdir(path):
        raise ValueError(f"{where}: {path}: is a directory, expected an .npz file")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f"{where}: {path}: not a readable .npz archive ({e})") from None
    except Exception as e:  # numpy's readers raise a variety of errors on damaged input
        raise ValueError(f"{where}: {path}: not a readable .npz archive ({type(e).__name__}: {e})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(
            f"{where}: {path}: a single .npy array, expected an .npz archive with keys {x_key!r} and {y_key!r}"
        )
    with archive:
        keys = list(archive.keys())
        arrays = {}
        for key in (x_key, y_key):
            if key not in keys:
                raise ValueError(f"{where}: {path}: no array {key!r}; the archive holds {keys}")
            try:
                arr = archive[key]
            except ValueError as e:  # object arrays refuse to load without pickle
                if "pickle" in str(e).lower():
                    raise ValueError(
                        f"{where}: {path}: array {key!r} cannot be read without unpickling "
                        f"({e}); store plain numeric arrays"
                    ) from None
                raise ValueError(f"{where}: {path}: array {key!r} is damaged ({e})") from None
            except Exception as e:  # a damaged member: bad CRC, truncated stream, bad .npy header
                raise ValueError(f"{where}: {path}: array {key!r} is damaged ({type(e).__name__}: {e})") from None
            if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
                raise ValueError(f"{where}: {path}: array {key!r} has dtype {arr.dtype}; expected real numbers")
            arrays[key] = arr.astype(np.float64)
    X, y = arrays[x_key], arrays[y_key]
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or y.ndim != 1:
        raise ValueError(
            f"{where}: {path}: expected {x_key!r} of shape (n, d) and {y_key!r} of shape (n,); "
            f"got {X.shape} and {y.shape}"
        )
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"{where}: {path}: {x_key!r} has {X.shape[0]} rows but {y_key!r} has {y.shape[0]}")
    if X.shape[0] == 0:
        raise ValueError(f"{where}: {path}: the arrays are empty (0 rows)")
    for key, arr in ((x_key, X), (y_key, y)):
        bad = ~np.isfinite(arr)
        if bad.any():
            rows = np.unique(np.nonzero(bad)[0])
            raise ValueError(f"{where}: {path}: array {key!r} has NaN/Inf in row(s) {rows[:10].tolist()}")
    return Dataset(
        X=X, y=y, feature_names=tuple(f"x{j}" for j in range(X.shape[1])), target_name=y_key, source=str(path)
    )


# ---------------------------------------------------------------------------------- synthetic curves


@dataclasses.dataclass(frozen=True)
class SyntheticDataset(Dataset):
    """A synthetic curve-fitting problem: `truth(x)` is the noise-free curve, `coefficients` (if any) its parameters."""

    truth: Callable[[np.ndarray], np.ndarray] | None = None
    coefficients: np.ndarray | None = None
    noise: float = 0.0


def _synthetic(
    x: np.ndarray, truth: Callable, noise: float, seed: int, source: str, coefficients: Any = None
) -> SyntheticDataset:
    noise = check_real(noise, source, "noise", minimum=0.0)
    rng = np.random.default_rng(seed)
    y = truth(x) + noise * rng.standard_normal(x.shape[0])
    return SyntheticDataset(
        X=x[:, None],
        y=y,
        feature_names=("x",),
        target_name="y",
        source=source,
        truth=truth,
        coefficients=None if coefficients is None else np.asarray(coefficients, float),
        noise=float(noise),
    )


def _xs(n: int, x_range: tuple[float, float], seed: int, where: str) -> np.ndarray:
    n = check_int(n, where, "n", minimum=1)
    check_int(seed, where, "seed", minimum=0)
    if isinstance(x_range, (str, bytes)) or not hasattr(x_range, "__len__") or len(x_range) != 2:
        raise TypeError(f"{where}: x_range must be a pair (low, high); got {x_range!r}")
    lo, hi = (check_real(v, where, "x_range", allow_inf=False) for v in x_range)
    if not hi > lo:
        raise ValueError(f"{where}: x_range must be (low, high) with low < high; got {x_range}")
    return np.sort(np.random.default_rng([seed, 1]).uniform(lo, hi, int(n)))


def synthetic_line(
    n: int = 20, slope: float = 2.0, *, noise: float = 0.1, x_range=(0.0, 1.0), seed: int = 0
) -> SyntheticDataset:
    """Lecture 1.2's problem: `y = a x + noise` (a line through the origin), `a = slope`."""
    x = _xs(n, x_range, seed, "synthetic_line")
    slope = check_real(slope, "synthetic_line", "slope")
    return _synthetic(x, lambda x: slope * np.asarray(x), noise, seed, "synthetic_line", [slope])


def synthetic_polynomial(
    n: int = 30, coefficients=(1.0, -2.0, 0.5, 1.0), *, noise: float = 0.1, x_range=(-1.0, 1.0), seed: int = 0
) -> SyntheticDataset:
    """Lecture 1.3's problem: `y = θ0 + θ1 x + θ2 x² + θ3 x³ + noise` (coefficients in increasing order)."""
    if np.iscomplexobj(coefficients):
        raise TypeError("synthetic_polynomial: coefficients must be real numbers; got complex")
    try:
        coef = np.asarray(coefficients, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"synthetic_polynomial: coefficients must be real numbers; got {coefficients!r}") from None
    if not np.all(np.isfinite(coef)):
        raise ValueError(f"synthetic_polynomial: coefficients must be finite; got {coefficients!r}")
    if coef.ndim != 1 or coef.size == 0:
        raise ValueError(f"synthetic_polynomial: coefficients must be a non-empty 1-D sequence; got shape {coef.shape}")
    x = _xs(n, x_range, seed, "synthetic_polynomial")
    return _synthetic(
        x, lambda x: np.polynomial.polynomial.polyval(np.asarray(x), coef), noise, seed, "synthetic_polynomial", coef
    )


def synthetic_sine(n: int = 25, *, noise: float = 0.2, x_range=(0.0, 1.0), seed: int = 0) -> SyntheticDataset:
    """The classic curve-fitting demo: `y = sin(2πx) + noise` (for polynomial, RBF and Fourier features)."""
    x = _xs(n, x_range, seed, "synthetic_sine")
    return _synthetic(x, lambda x: np.sin(2 * np.pi * np.asarray(x)), noise, seed, "synthetic_sine")


# NIST StRD nonlinear regression problems (implemented in mmljax.strd_nls)
from .strd_nls import STRD_NLS_NAMES as STRD_NLS_NAMES  # noqa: E402
from .strd_nls import StrdNonlinearProblem as StrdNonlinearProblem  # noqa: E402
from .strd_nls import load_strd_nls as load_strd_nls  # noqa: E402
from .strd_nls import parse_strd_nls as parse_strd_nls  # noqa: E402
