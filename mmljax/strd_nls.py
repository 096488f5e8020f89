"""NIST StRD nonlinear regression problems: the file format, the models, the certified values.

`load_strd_nls(name_or_path)` reads one of the 20 problems shipped with mmljax (by name) or any
file in NIST's nonlinear-regression format (by path) into an `StrdNonlinearProblem`: the data, both
starting points, the certified parameters, standard deviations, residual sum of squares, residual
standard deviation and degrees of freedom, and the model as a JAX function `model(params, x)`.

The shipped problems use hand-written models. For any other file the model is read from the
`y = ...` formula in its header by a safe parser: Python's `ast` with a whitelist of operators
(`+ - * / **`, unary minus), the functions `exp log cos sin arctan sqrt`, the constant `pi`, the
parameters `b1..bk` and the predictors `x` (or `x1`, `x2`, ...). Nothing in a file is ever executed.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.resources
import os
import re
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np

__all__ = [
    "STRD_NLS_NAMES",
    "StrdNonlinearProblem",
    "load_strd_nls",
    "parse_strd_nls",
    "parse_model",
    "nls_log_relative_error",
]

_WHERE = "load_strd_nls"

STRD_NLS_NAMES = (
    "Misra1a",
    "Chwirut2",
    "Lanczos3",
    "Gauss1",
    "Gauss2",
    "DanWood",
    "Misra1b",
    "Kirby2",
    "Hahn1",
    "Nelson",
    "Lanczos1",
    "Gauss3",
    "Misra1c",
    "Misra1d",
    "ENSO",
    "MGH09",
    "Thurber",
    "Rat42",
    "MGH10",
    "Rat43",
)


# ----------------------------------------------------------------------------------- hand-written models


def _gauss(b, x):
    return (
        b[0] * jnp.exp(-b[1] * x)
        + b[2] * jnp.exp(-((x - b[3]) ** 2) / b[4] ** 2)
        + b[5] * jnp.exp(-((x - b[6]) ** 2) / b[7] ** 2)
    )


def _lanczos(b, x):
    return b[0] * jnp.exp(-b[1] * x) + b[2] * jnp.exp(-b[3] * x) + b[4] * jnp.exp(-b[5] * x)


def _cubic_ratio(b, x):
    return (b[0] + b[1] * x + b[2] * x**2 + b[3] * x**3) / (1 + b[4] * x + b[5] * x**2 + b[6] * x**3)


def _enso(b, x):
    w = 2 * jnp.pi * x
    return (
        b[0]
        + b[1] * jnp.cos(w / 12)
        + b[2] * jnp.sin(w / 12)
        + b[4] * jnp.cos(w / b[3])
        + b[5] * jnp.sin(w / b[3])
        + b[7] * jnp.cos(w / b[6])
        + b[8] * jnp.sin(w / b[6])
    )


MODELS: dict[str, Callable[[Any, Any], Any]] = {
    "Misra1a": lambda b, x: b[0] * (1 - jnp.exp(-b[1] * x)),
    "Chwirut2": lambda b, x: jnp.exp(-b[0] * x) / (b[1] + b[2] * x),
    "Lanczos3": _lanczos,
    "Gauss1": _gauss,
    "Gauss2": _gauss,
    "DanWood": lambda b, x: b[0] * x ** b[1],
    "Misra1b": lambda b, x: b[0] * (1 - (1 + b[1] * x / 2) ** (-2)),
    "Kirby2": lambda b, x: (b[0] + b[1] * x + b[2] * x**2) / (1 + b[3] * x + b[4] * x**2),
    "Hahn1": _cubic_ratio,
    "Nelson": lambda b, x: b[0] - b[1] * x[:, 0] * jnp.exp(-b[2] * x[:, 1]),
    "Lanczos1": _lanczos,
    "Gauss3": _gauss,
    "Misra1c": lambda b, x: b[0] * (1 - (1 + 2 * b[1] * x) ** (-0.5)),
    "Misra1d": lambda b, x: b[0] * b[1] * x * (1 + b[1] * x) ** (-1),
    "ENSO": _enso,
    "MGH09": lambda b, x: b[0] * (x**2 + x * b[1]) / (x**2 + x * b[2] + b[3]),
    "Thurber": _cubic_ratio,
    "Rat42": lambda b, x: b[0] / (1 + jnp.exp(b[1] - b[2] * x)),
    "MGH10": lambda b, x: b[0] * jnp.exp(b[1] / (x + b[2])),
    "Rat43": lambda b, x: b[0] / (1 + jnp.exp(b[1] - b[2] * x)) ** (1 / b[3]),
}


# ------------------------------------------------------------------------------------------- the problem


@dataclasses.dataclass(frozen=True)
class StrdNonlinearProblem:
    """One NIST StRD nonlinear regression problem.

    - `x`: predictors, `(n,)` for one predictor or `(n, k)` for several (Nelson: `(n, 2)`);
      `y (n,)`: the response as the model states it (Nelson's `log y`; `y_raw` keeps the file's values).
    - `start1`, `start2` `(p,)`: NIST's starting points (far, near).
    - `certified_params`, `certified_standard_errors` `(p,)`; `certified_rss`,
      `certified_residual_sd`, `dof` (degrees of freedom), `n_observations`.
    - `model(params, x)`: the model as a JAX function of `params (p,)` and `x`; `formula`: the
      file's formula text; `response`: "y" or "log(y)"; `difficulty`: "lower"/"average"/"higher".
    - `residuals(params, data)`: `data = (x, y)`, residuals `y - model(params, x)` (use with
      `nonlinear_least_squares(problem.residuals, start, problem.args)`).
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    y_raw: np.ndarray
    start1: np.ndarray
    start2: np.ndarray
    certified_params: np.ndarray
    certified_standard_errors: np.ndarray
    certified_rss: float
    certified_residual_sd: float
    dof: int  # as the file states it (Rat43's says 9; its certified residual SD uses n - p = 11)
    n_observations: int
    model: Callable[[Any, Any], Any]
    formula: str
    response: str
    difficulty: str
    source: str

    @property
    def n_params(self) -> int:
        return int(self.certified_params.shape[0])

    @property
    def starts(self) -> tuple[np.ndarray, np.ndarray]:
        return (self.start1, self.start2)

    @property
    def args(self) -> tuple[np.ndarray, np.ndarray]:
        """`(x, y)`: the data to pass as `args` to `residuals`."""
        return (self.x, self.y)

    def residuals(self, params: Any, data: Any) -> Any:
        x, y = data
        return y - self.model(params, x)

    def scores(self, result: Any, cap: float = 11.0) -> dict[str, float]:
        """LREs (capped at `cap`, the certified digits) of a fit's parameters (minimum), standard errors
        (minimum) and residual SD; `None` where the result lacks the field."""
        out = {"params": float(np.min(nls_log_relative_error(_flat(result.params), self.certified_params, cap)))}
        se = getattr(result, "standard_errors", None)
        out["standard_errors"] = (
            None
            if se is None
            else float(np.min(nls_log_relative_error(_flat(se), self.certified_standard_errors, cap)))
        )
        sd = getattr(result, "residual_sd", None)
        out["residual_sd"] = (
            None
            if sd is None
            else float(nls_log_relative_error(np.asarray(sd, dtype=np.float64), self.certified_residual_sd, cap))
        )
        return out


def _flat(tree: Any) -> np.ndarray:
    return np.ravel(np.asarray(tree, dtype=np.float64))


def nls_log_relative_error(estimate: Any, certified: Any, cap: float = 11.0) -> np.ndarray:
    """`-log10(|est - cert| / |cert|)` elementwise, capped at `cap` (NaN/Inf estimates score 0)."""
    est = np.asarray(estimate, dtype=np.float64)
    cert = np.asarray(certified, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(est - cert) / np.abs(cert)
        lre = -np.log10(rel)
    lre = np.where(np.isfinite(est), lre, 0.0)
    return np.clip(np.nan_to_num(lre, nan=0.0, posinf=cap), 0.0, cap)


# -------------------------------------------------------------------------------------- the safe parser

_FUNCTIONS = {"exp": jnp.exp, "log": jnp.log, "cos": jnp.cos, "sin": jnp.sin, "arctan": jnp.arctan, "sqrt": jnp.sqrt}
_BINARY = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}
_UNARY = {ast.USub: lambda a: -a, ast.UAdd: lambda a: a}


def parse_model(formula: str, n_params: int, n_predictors: int = 1, source: str = "<formula>") -> Callable:
    """Compile a NIST model formula (the right-hand side, e.g. `b1*(1-exp[-b2*x])`) into `model(params, x)`.

    Square brackets are read as parentheses. Only the whitelisted operators, functions (`exp log cos
    sin arctan sqrt`), `pi`, numbers, `b1..b{n_params}` and `x` (one predictor) or `x1..x{k}` are
    accepted; anything else is a ValueError naming the element. The formula is never executed as
    Python: it is parsed into a tree and evaluated node by node with `jax.numpy`.
    """
    text = formula.replace("[", "(").replace("]", ")").strip()
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as e:
        raise ValueError(f"{source}: cannot parse the model formula {formula!r}: {e.msg}") from None

    def check(node):
        if isinstance(node, ast.Expression):
            return check(node.body)
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY:
                raise ValueError(f"{source}: operator {type(node.op).__name__} is not allowed in a model formula")
            check(node.left)
            check(node.right)
        elif isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY:
                raise ValueError(f"{source}: operator {type(node.op).__name__} is not allowed in a model formula")
            check(node.operand)
        elif isinstance(node, ast.Call):
            if (
                not isinstance(node.func, ast.Name)
                or node.func.id not in _FUNCTIONS
                or node.keywords
                or len(node.args) != 1
            ):
                name = node.func.id if isinstance(node.func, ast.Name) else ast.dump(node.func)
                raise ValueError(
                    f"{source}: function {name!r} is not allowed in a model formula "
                    f"(allowed: {', '.join(_FUNCTIONS)}, one argument each)"
                )
            check(node.args[0])
        elif isinstance(node, ast.Name):
            _symbol(node.id)
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise ValueError(f"{source}: constant {node.value!r} is not allowed in a model formula")
        else:
            raise ValueError(f"{source}: {type(node).__name__} is not allowed in a model formula")

    def _symbol(name: str):
        if name == "pi":
            return ("pi", None)
        m = re.fullmatch(r"b(\d+)", name)
        if m and 1 <= int(m.group(1)) <= n_params:
            return ("b", int(m.group(1)) - 1)
        if name == "x" and n_predictors == 1:
            return ("x", None)
        m = re.fullmatch(r"x(\d+)", name)
        if m and 1 <= int(m.group(1)) <= n_predictors:
            return ("x", int(m.group(1)) - 1)
        raise ValueError(
            f"{source}: unknown name {name!r} in the model formula (expected b1..b{n_params}, "
            + ("x" if n_predictors == 1 else f"x1..x{n_predictors}")
            + ", pi or a function)"
        )

    check(tree)

    def evaluate(node, b, x):
        if isinstance(node, ast.Expression):
            return evaluate(node.body, b, x)
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](evaluate(node.left, b, x), evaluate(node.right, b, x))
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](evaluate(node.operand, b, x))
        if isinstance(node, ast.Call):
            return _FUNCTIONS[node.func.id](evaluate(node.args[0], b, x))
        if isinstance(node, ast.Name):
            kind, i = _symbol(node.id)
            if kind == "pi":
                return jnp.pi
            if kind == "b":
                return b[i]
            return x if i is None else x[:, i]
        return float(node.value)

    def model(params, x):
        return evaluate(tree, params, x)

    model.__doc__ = f"NIST model {text} (parsed)"
    return model


# ------------------------------------------------------------------------------------------- the reader

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][-+]?\d+)?"


def _float(token: str) -> float:
    return float(token.replace("D", "E").replace("d", "e"))


def parse_strd_nls(text: str, source: str = "<strd-nls>") -> StrdNonlinearProblem:
    """Parse the text of a NIST StRD nonlinear-regression `.dat` file.

    Uses the hand-written model when the dataset's name is one of `STRD_NLS_NAMES` and the file's
    formula otherwise. **Raises:** ValueError naming `source` and the line for a malformed or
    truncated file.
    """
    lines = text.splitlines()
    name_m = re.search(r"Dataset Name:\s*(\S+)", text)
    name = name_m.group(1) if name_m else os.path.splitext(os.path.basename(source))[0]

    def err(lineno: int | None, msg: str) -> ValueError:
        where = f"{source}: line {lineno}" if lineno is not None else source
        return ValueError(f"{where}: {msg}")

    # model formula: the first 'y = ...' / 'log[y] = ...' after 'Model:', up to the '+ e' that ends it
    model_at = next((i for i, ln in enumerate(lines) if ln.strip().startswith("Model:")), None)
    if model_at is None:
        raise err(None, "not a NIST StRD nonlinear file (no 'Model:' section)")
    formula_lines, lhs, first_line = [], None, None
    for i in range(model_at + 1, min(model_at + 20, len(lines))):
        ln = lines[i].strip()
        if lhs is None:
            m = re.match(r"^(y|log\s*[\[(]\s*y\s*[\])])\s*=\s*(.*)$", ln)
            if m:
                lhs, first_line = m.group(1), i + 1
                formula_lines.append(m.group(2))
        else:
            formula_lines.append(ln)
        if lhs is not None and re.search(r"\+\s*e\s*$", formula_lines[-1]):
            break
    else:
        raise err(model_at + 1, "no model formula 'y = ... + e' found after 'Model:'")
    formula = re.sub(r"\+\s*e\s*$", "", " ".join(formula_lines)).strip()
    response = "y" if lhs == "y" else "log(y)"

    # parameter table: 'b1 = start1 start2 certified sd'
    params: dict[int, tuple[float, float, float, float]] = {}
    table_line = None
    for i, ln in enumerate(lines):
        m = re.match(r"^\s*b(\d+)\s*=\s*(.*)$", ln)
        if m and i > model_at:
            toks = m.group(2).split()
            if len(toks) != 4 or not all(re.fullmatch(_NUM, t) for t in toks):
                raise err(i + 1, f"expected 'b{m.group(1)} = start1 start2 certified std.dev'; got {ln.strip()!r}")
            params[int(m.group(1))] = tuple(_float(t) for t in toks)
            table_line = table_line or i + 1
    if not params:
        raise err(None, "no parameter table ('b1 = start1 start2 certified std.dev') found")
    keys = sorted(params)
    if keys != list(range(1, len(keys) + 1)):
        raise err(table_line, f"parameters must be b1..b{len(keys)}; got {', '.join(f'b{k}' for k in keys)}")

    def stat(label: str, integer: bool = False):
        for i, ln in enumerate(lines):
            if ln.strip().startswith(label):
                toks = ln.split(":", 1)[1].split()
                if not toks or not re.fullmatch(_NUM, toks[0]):
                    raise err(i + 1, f"cannot read the value of {label!r} from {ln.strip()!r}")
                v = _float(toks[0])
                return int(v) if integer else v
        raise err(None, f"missing {label!r}")

    rss = stat("Residual Sum of Squares")
    sd = stat("Residual Standard Deviation")
    dof = stat("Degrees of Freedom", integer=True)
    nobs = stat("Number of Observations", integer=True)

    data_at = None
    for i, ln in enumerate(lines):
        if re.match(r"^Data:\s+y\b", ln):
            data_at = i
    if data_at is None:
        raise err(None, "no data header 'Data:  y  x' found")
    columns = lines[data_at].split()[1:]
    rows = []
    for i in range(data_at + 1, len(lines)):
        toks = lines[i].split()
        if not toks:
            continue
        if not all(re.fullmatch(_NUM, t) for t in toks):
            raise err(i + 1, f"non-numeric value in the data row {lines[i].strip()!r}")
        if len(toks) != len(columns):
            raise err(i + 1, f"{len(toks)} value(s) in a data row, expected {len(columns)} ({' '.join(columns)})")
        rows.append([_float(t) for t in toks])
    if len(rows) != nobs:
        raise err(
            len(lines),
            f"the file is truncated or malformed: {len(rows)} data row(s), the header says {nobs} observations",
        )
    data = np.asarray(rows, dtype=np.float64)
    y_raw = data[:, 0]
    x = data[:, 1] if data.shape[1] == 2 else data[:, 1:]
    y = np.log(y_raw) if response == "log(y)" else y_raw
    if not 0 < dof <= nobs:
        raise err(None, f"degrees of freedom {dof} must be in 1..{nobs} (the number of observations)")

    if name in MODELS:
        model = MODELS[name]
    else:
        model = parse_model(formula, len(keys), 1 if x.ndim == 1 else x.shape[1], source=f"{source}: line {first_line}")
    diff = re.search(r"(Lower|Average|Higher) Level of Difficulty", text)
    table = np.asarray([params[k] for k in keys], dtype=np.float64)
    return StrdNonlinearProblem(
        name=name,
        x=x,
        y=y,
        y_raw=y_raw,
        start1=table[:, 0].copy(),
        start2=table[:, 1].copy(),
        certified_params=table[:, 2].copy(),
        certified_standard_errors=table[:, 3].copy(),
        certified_rss=float(rss),
        certified_residual_sd=float(sd),
        dof=int(dof),
        n_observations=int(nobs),
        model=model,
        formula=formula,
        response=response,
        difficulty=diff.group(1).lower() if diff else "",
        source=source,
    )


def load_strd_nls(name_or_path: str | os.PathLike) -> StrdNonlinearProblem:
    """A NIST StRD nonlinear regression problem: one of the 20 shipped (by name, case-insensitive, see
    `STRD_NLS_NAMES`) or any file in the NIST format (by path; its model parsed from the formula).

    **Returns:** a `StrdNonlinearProblem`. **Raises:** ValueError for an unknown name or a malformed
    file (naming the file and line), FileNotFoundError for a missing path.
    """
    key = str(name_or_path)
    lookup = {n.lower(): n for n in STRD_NLS_NAMES}
    stem = key.lower().removesuffix(".dat")
    if stem in lookup and os.path.sep not in key:
        canonical = lookup[stem]
        res = importlib.resources.files("mmljax").joinpath("datasets", "strd_nls", f"{canonical}.dat")
        return parse_strd_nls(res.read_text(encoding="ascii"), source=f"{canonical}.dat")
    if not os.path.exists(key):
        if os.path.sep in key or key.endswith(".dat"):
            raise FileNotFoundError(f"{_WHERE}: {key}: no such file")
        raise ValueError(f"{_WHERE}: unknown problem {key!r}; shipped: {', '.join(STRD_NLS_NAMES)} (or give a path)")
    if os.path.isdir(key):
        raise ValueError(f"{_WHERE}: {key}: is a directory, expected a NIST .dat file")
    with open(key, "rb") as fh:
        raw = fh.read()
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ValueError(f"{_WHERE}: {key}: line {line}: not ASCII text; is this a NIST StRD file?") from None
    return parse_strd_nls(text, source=key)
