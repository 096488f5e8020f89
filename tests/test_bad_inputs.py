"""Bad inputs, one row each: the call, the exception type and a fragment of its message (which
names the function, the argument and the value), or the warning it must give.

The rows cover the public options of the checker, the derivative API, finite differences, the
models, losses, kernels, layout, the data loaders and the command line. Each row is cheap: the
errors are raised before any numerical work.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mmljax as mj
from mmljax import catalogue, cli, data, finite_diff, kernels, losses
from mmljax.catalogue import Identity, run_identity
from mmljax.models import basis, linear, mlp

X3 = jnp.linspace(0.1, 0.3, 3)
KEY = jax.random.PRNGKey(0)


def check(**kw):
    """`check_derivative` of sin with its correct derivative, with the options under test."""
    return mj.check_derivative(jnp.sin, lambda x: jnp.diag(jnp.cos(x)), kw.pop("x", X3), **kw)


class Row(NamedTuple):
    id: str
    call: Callable[[Any], Any]  # receives a temporary directory (pathlib.Path)
    raises: type
    match: str


def _file(tmp, name: str, content: str | bytes):
    path = tmp / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


NORRIS = data._strd_text("Norris")[1]
GOOD_CSV = "x,z,y\n1,2,3\n4,5,6.5\n"


def _npz_bytes() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, X=np.ones((3, 2)), y=np.ones(3))
    return buf.getvalue()


ROWS = [
    # ---- the checker: options -------------------------------------------------------------------
    Row(
        "check directions=-1",
        lambda t: check(directions=-1),
        ValueError,
        "check_derivative: directions must be >= 1; got -1",
    ),
    Row("check directions=0", lambda t: check(directions=0), ValueError, "directions must be >= 1; got 0"),
    Row("check directions=1.5", lambda t: check(directions=1.5), TypeError, "directions must be an integer; got 1.5"),
    Row(
        "check directions=True", lambda t: check(directions=True), TypeError, "directions must be an integer; got True"
    ),
    Row("check rtol<0", lambda t: check(rtol=-1e-8), ValueError, "check_derivative: rtol must be >= 0; got -1e-08"),
    Row("check rtol=nan", lambda t: check(rtol=float("nan")), ValueError, "rtol must be a finite number; got nan"),
    Row("check atol<0", lambda t: check(atol=-1.0), ValueError, "atol must be >= 0; got -1"),
    Row(
        "check fd_rtol=inf",
        lambda t: check(fd_rtol=float("inf")),
        ValueError,
        "fd_rtol must be a finite number; got inf",
    ),
    Row("check rtol str", lambda t: check(rtol="1e-8"), TypeError, "rtol must be a real number; got '1e-8'"),
    Row("check rtol complex", lambda t: check(rtol=1e-8j), TypeError, "rtol must be a real number"),
    Row("check order=3", lambda t: check(order=3), ValueError, "check_derivative: order must be <= 2; got 3"),
    Row("check order=True", lambda t: check(order=True), TypeError, "order must be an integer; got True"),
    Row("check order=1.0", lambda t: check(order=1.0), TypeError, "order must be an integer; got 1.0"),
    Row("check layout", lambda t: check(layout="row"), ValueError, "layout must be one of 'tensor', 'vec'; got 'row'"),
    Row("check seed<0", lambda t: check(seed=-1), ValueError, "seed must be >= 0; got -1"),
    Row("check seed float", lambda t: check(seed=0.5), TypeError, "seed must be an integer; got 0.5"),
    Row("check name", lambda t: check(name=3), TypeError, "check_derivative: name must be a string or None; got 3"),
    # ---- the checker: f, hand, x ------------------------------------------------------------------
    Row(
        "check f not callable",
        lambda t: mj.check_derivative(3.0, jnp.cos, X3),
        TypeError,
        "check_derivative: f must be a callable",
    ),
    Row("check x complex", lambda t: check(x=X3 + 1j), TypeError, "x is complex (complex128)"),
    Row("check x int", lambda t: check(x=jnp.arange(3)), TypeError, "x has dtype int64; derivatives need floating"),
    Row(
        "check x str",
        lambda t: check(x="abc"),
        TypeError,
        "x must be a floating-point array or a pytree of them; got 'abc'",
    ),
    Row("check x None", lambda t: check(x=None), TypeError, "got None (NoneType)"),
    Row(
        "check x NaN",
        lambda t: check(x=X3.at[1].set(jnp.nan)),
        ValueError,
        "x contains 1 NaN/Inf value(s) at indices [[1]]",
    ),
    Row(
        "check x dict NaN leaf",
        lambda t: mj.check_derivative(lambda p: jnp.sum(p["w"]), lambda p: p, {"w": X3.at[0].set(jnp.inf)}),
        ValueError,
        "x['w'] contains 1 NaN/Inf",
    ),
    Row(
        "check x dict of str",
        lambda t: mj.check_derivative(jnp.sum, jnp.ones_like, {"a": "s"}),
        TypeError,
        "a dict holding str",
    ),
    Row(
        "check f returns None",
        lambda t: mj.check_derivative(lambda x: None, jnp.cos, X3),
        TypeError,
        "f must return an array; it returned None (a missing return statement?)",
    ),
    Row(
        "check f fails",
        lambda t: mj.check_derivative(lambda x: x @ jnp.ones(5), jnp.cos, X3),
        ValueError,
        "f fails on x of shape (3,)",
    ),
    Row("check order=2 vector f", lambda t: check(order=2), ValueError, "order=2 needs a scalar function"),
    Row(
        "check hand str",
        lambda t: mj.check_derivative(jnp.sin, "cos", X3),
        TypeError,
        "check_derivative: hand must be an array (or a callable giving one)",
    ),
    # ---- derivatives ------------------------------------------------------------------------------
    Row("gradient f not callable", lambda t: mj.gradient(None), TypeError, "gradient: f must be a callable"),
    Row(
        "gradient complex x",
        lambda t: mj.gradient(jnp.sum)(X3 + 0j),
        TypeError,
        "gradient: x is complex (complex128); mmljax works with real floating arrays only",
    ),
    Row("gradient int x", lambda t: mj.gradient(jnp.sum)(jnp.arange(3)), TypeError, "gradient: x has dtype int64"),
    Row(
        "gradient str x",
        lambda t: mj.gradient(jnp.sum)("abc"),
        TypeError,
        "gradient: x must be a floating-point array; got 'abc'",
    ),
    Row(
        "gradient x NaN",
        lambda t: mj.gradient(jnp.sum)(jnp.array([1.0, jnp.nan])),
        ValueError,
        "gradient: x contains 1 NaN/Inf",
    ),
    Row(
        "gradient f -> None",
        lambda t: mj.gradient(lambda x: None)(X3),
        TypeError,
        "gradient: f must return an array; it returned None",
    ),
    Row(
        "gradient vector f",
        lambda t: mj.gradient(jnp.sin)(X3),
        ValueError,
        "gradient: f must return a scalar; it returned shape (3,)",
    ),
    Row(
        "gradient argnums out of range",
        lambda t: mj.gradient(lambda a, b: jnp.sum(a * b), argnums=2)(X3, X3),
        ValueError,
        "gradient: argnums=2 is out of range: only 2 positional argument(s) given",
    ),
    Row(
        "gradient argnums bool",
        lambda t: mj.gradient(jnp.sum, argnums=True),
        TypeError,
        "gradient: argnums must be an integer; got True",
    ),
    Row(
        "gradient argnums negative",
        lambda t: mj.gradient(jnp.sum, argnums=-1),
        ValueError,
        "gradient: argnums must be >= 0; got -1",
    ),
    Row(
        "jacobian mode",
        lambda t: mj.jacobian(jnp.sin, mode="bwd"),
        ValueError,
        "jacobian: mode must be one of 'auto', 'fwd', 'rev'; got 'bwd'",
    ),
    Row(
        "jacobian argnums out of range",
        lambda t: mj.jacobian(jnp.sin, argnums=1)(X3),
        ValueError,
        "jacobian: argnums=1 is out of range",
    ),
    Row(
        "jacobian_mode argnums out of range",
        lambda t: mj.jacobian_mode(jnp.sin, X3, argnums=3),
        ValueError,
        "jacobian_mode: argnums=3 is out of range: only 1 positional argument(s) given",
    ),
    Row(
        "jacobian_mode f -> None",
        lambda t: mj.jacobian_mode(lambda x: None, X3),
        TypeError,
        "jacobian_mode: f must return an array",
    ),
    Row(
        "jacobian_matrix f -> None",
        lambda t: mj.jacobian_matrix(lambda x: None)(X3),
        TypeError,
        "jacobian_matrix: f must return an array",
    ),
    Row("hessian vector f", lambda t: mj.hessian(jnp.sin)(X3), ValueError, "hessian: f must return a scalar"),
    Row(
        "hessian_matrix complex",
        lambda t: mj.hessian_matrix(jnp.sum)(X3 * 1j),
        TypeError,
        "hessian_matrix: x is complex",
    ),
    Row(
        "hvp vector f",
        lambda t: mj.hvp(jnp.sin, X3, X3),
        ValueError,
        "hvp: f must return a scalar; it returned shape (3,)",
    ),
    Row("hvp complex v", lambda t: mj.hvp(jnp.sum, X3, X3 * 1j), TypeError, "hvp: v is complex"),
    Row(
        "hvp v shape",
        lambda t: mj.hvp(jnp.sum, X3, jnp.ones(4)),
        ValueError,
        "hvp: v must have the shape of x: expected (3,), got (4,)",
    ),
    Row(
        "hvp v structure",
        lambda t: mj.hvp(lambda p: jnp.sum(p["a"]), {"a": X3}, X3),
        ValueError,
        "hvp: v must have the same structure as x",
    ),
    Row(
        "derivative of vector x",
        lambda t: mj.derivative(jnp.sin)(X3),
        ValueError,
        "derivative: x must be a scalar (shape ()); got shape (3,)",
    ),
    Row("derivative complex", lambda t: mj.derivative(jnp.sin)(1j), TypeError, "derivative: x is complex"),
    Row(
        "directional f -> None",
        lambda t: mj.directional_derivative(lambda x: None, X3, X3),
        TypeError,
        "directional_derivative: f must return an array",
    ),
    # ---- finite differences -----------------------------------------------------------------------
    Row(
        "fd_gradient vector f",
        lambda t: finite_diff.fd_gradient(jnp.sin, X3),
        ValueError,
        "fd_gradient: f must return a scalar",
    ),
    Row(
        "fd_jacobian step<0",
        lambda t: finite_diff.fd_jacobian(jnp.sin, X3, step=-1e-3),
        ValueError,
        "fd_jacobian: step must be positive and finite; got -0.001",
    ),
    Row(
        "fd_jacobian step nan",
        lambda t: finite_diff.fd_jacobian(jnp.sin, X3, step=float("nan")),
        ValueError,
        "step must be positive and finite",
    ),
    Row(
        "fd_jacobian dict x",
        lambda t: finite_diff.fd_jacobian(jnp.sin, {"a": X3}),
        TypeError,
        "fd_jacobian: x must be a single floating array; got a dict",
    ),
    Row(
        "fd_hessian vector f",
        lambda t: finite_diff.fd_hessian(jnp.sin, X3),
        ValueError,
        "fd_hessian: f must return a scalar",
    ),
    Row(
        "fd_directional step 0",
        lambda t: finite_diff.fd_directional(jnp.sin, X3, X3, step=0.0),
        ValueError,
        "fd_directional: step must be > 0; got 0",
    ),
    Row(
        "taylor_test n_steps",
        lambda t: finite_diff.taylor_test(jnp.sin, X3, X3, X3, n_steps=2),
        ValueError,
        "taylor_test: n_steps must be >= 3; got 2",
    ),
    Row(
        "taylor_test min_order",
        lambda t: finite_diff.taylor_test(jnp.sin, X3, X3, X3, min_order=-1.0),
        ValueError,
        "taylor_test: min_order must be > 0",
    ),
    Row(
        "central_step power",
        lambda t: finite_diff.central_step(X3, power=0),
        ValueError,
        "central_step: power must be > 0 and < 1; got 0",
    ),
    # ---- models -----------------------------------------------------------------------------------
    Row(
        "polynomial(True)",
        lambda t: basis.polynomial(True, "increasing"),
        TypeError,
        "basis.polynomial: degree must be an integer; got True (bool)",
    ),
    Row(
        "polynomial(2.0)",
        lambda t: basis.polynomial(2.0, "increasing"),
        TypeError,
        "degree must be an integer; got 2.0",
    ),
    Row("polynomial(-1)", lambda t: basis.polynomial(-1, "increasing"), ValueError, "degree must be >= 0; got -1"),
    Row("polynomial ordering", lambda t: basis.polynomial(2, "up"), ValueError, "ordering must be 'increasing'"),
    Row(
        "rbf lengthscale underflows",
        lambda t: basis.rbf([0.0, 1.0], 1e-200),
        ValueError,
        "basis.rbf: lengthscale 1e-200 squares to 0 in float64",
    ),
    Row("rbf lengthscale overflows", lambda t: basis.rbf([0.0, 1.0], 1e200), ValueError, "squares to inf"),
    Row("rbf lengthscale 0", lambda t: basis.rbf([0.0], 0.0), ValueError, "basis.rbf: lengthscale must be > 0; got 0"),
    Row(
        "rbf lengthscale nan",
        lambda t: basis.rbf([0.0], float("nan")),
        ValueError,
        "lengthscale must be a finite number",
    ),
    Row(
        "rbf lengthscale bool",
        lambda t: basis.rbf([0.0], True),
        TypeError,
        "lengthscale must be a real number; got True",
    ),
    Row(
        "rbf complex centres", lambda t: basis.rbf([0.0, 1j], 1.0), TypeError, "basis.rbf: centres must be real numbers"
    ),
    Row(
        "fourier NaN",
        lambda t: basis.fourier([1.0, float("nan")]),
        ValueError,
        "basis.fourier: frequencies contains NaN/Inf",
    ),
    Row("learned width 0", lambda t: basis.learned(2, 0), ValueError, "basis.learned: width must be >= 1; got 0"),
    Row(
        "learned activation",
        lambda t: basis.learned(2, 3, "gelu"),
        ValueError,
        "basis.learned: activation must be one of",
    ),
    Row(
        "basis.init out_features",
        lambda t: basis.init(KEY, basis.polynomial(2, "increasing"), 0),
        ValueError,
        "basis.init: out_features must be >= 1; got 0",
    ),
    Row(
        "basis.init dtype int",
        lambda t: basis.init(KEY, basis.polynomial(2, "increasing"), dtype=jnp.int32),
        TypeError,
        "basis.init: dtype must be a real floating dtype",
    ),
    Row(
        "linear.init bias=1",
        lambda t: linear.init(KEY, 3, bias=1),
        TypeError,
        "linear.init: bias must be True or False; got 1",
    ),
    Row(
        "linear.init in_features bool",
        lambda t: linear.init(KEY, True),
        TypeError,
        "linear.init: in_features must be an integer; got True",
    ),
    Row(
        "linear.init dtype",
        lambda t: linear.init(KEY, 3, dtype=jnp.complex64),
        TypeError,
        "linear.init: dtype must be a real floating dtype (float32 or float64); got complex64",
    ),
    Row("mlp.init size 0", lambda t: mlp.init(KEY, [2, 0, 1]), ValueError, "mlp.init: sizes[1] must be >= 1; got 0"),
    Row(
        "mlp.init size bool",
        lambda t: mlp.init(KEY, [2, True]),
        TypeError,
        "mlp.init: sizes[1] must be an integer; got True",
    ),
    Row("mlp.init one size", lambda t: mlp.init(KEY, [3]), ValueError, "mlp.init: sizes must be [in, hidden..., out]"),
    Row(
        "mlp.init activation",
        lambda t: mlp.init(KEY, [2, 1], "swish"),
        ValueError,
        "mlp.init: activation must be one of",
    ),
    # ---- losses and kernels -----------------------------------------------------------------------
    Row("ridge lam<0", lambda t: losses.ridge_sse(X3, X3, X3, -1.0), ValueError, "ridge_sse: lam must be >= 0"),
    Row(
        "ridge lam nan",
        lambda t: losses.ridge_half_sse(X3, X3, X3, float("nan")),
        ValueError,
        "ridge_half_sse: lam must be a finite number >= 0; got nan",
    ),
    Row(
        "ridge lam str", lambda t: losses.ridge_mse(X3, X3, X3, "1"), TypeError, "ridge_mse: lam must be a real number"
    ),
    Row("ridge lam complex", lambda t: losses.ridge_sse(X3, X3, X3, 1j), TypeError, "lam must be a real number"),
    Row(
        "ridge lam vector",
        lambda t: losses.ridge_sse(X3, X3, X3, X3),
        ValueError,
        "lam must be a scalar; got shape (3,)",
    ),
    Row(
        "sse shapes",
        lambda t: losses.sse(X3, X3[:, None]),
        ValueError,
        "sse: predictions and targets must have the same shape; got pred (3,) and y (3, 1)",
    ),
    Row(
        "sse int pred",
        lambda t: losses.sse(jnp.arange(3), jnp.arange(3)),
        TypeError,
        "sse: pred must be a floating array",
    ),
    Row(
        "gram block 0", lambda t: kernels.gram(jnp.ones((4, 3)), block=0), ValueError, "gram: block must be >= 1; got 0"
    ),
    Row(
        "gram block float",
        lambda t: kernels.gram(jnp.ones((4, 3)), block=2.5),
        TypeError,
        "gram: block must be an integer; got 2.5",
    ),
    Row(
        "least_squares_gradient block_rows bool",
        lambda t: kernels.least_squares_gradient(jnp.ones((4, 3)), jnp.ones(4), jnp.ones(3), block_rows=True),
        TypeError,
        "least_squares_gradient: block_rows must be an integer; got True",
    ),
    Row(
        "least_squares_hvp 1-D Phi",
        lambda t: kernels.least_squares_hvp(jnp.ones(4), jnp.ones(3)),
        ValueError,
        "least_squares_hvp: Phi must be a 2-D design matrix",
    ),
    Row(
        "per_example_jacobian mode",
        lambda t: kernels.per_example_jacobian(lambda p, x: p * x, mode="x"),
        ValueError,
        "per_example_jacobian: mode must be one of",
    ),
    Row(
        "gauss_newton_matrix complex params",
        lambda t: kernels.gauss_newton_matrix(lambda p, x: p * x, X3 * 1j, jnp.ones((2, 3))),
        TypeError,
        "gauss_newton_matrix: params is complex",
    ),
    # ---- layout -----------------------------------------------------------------------------------
    Row("unvec size", lambda t: mj.unvec(jnp.ones(5), (2, 3)), ValueError, "unvec: v must be 1-D with 6 elements"),
    # ---- data loaders -----------------------------------------------------------------------------
    Row(
        "csv features include target",
        lambda t: data.load_csv(_file(t, "a.csv", GOOD_CSV), "y", features=["x", "y"]),
        ValueError,
        "the target column 'y' is also listed in features",
    ),
    Row(
        "csv features include target by index",
        lambda t: data.load_csv(_file(t, "a.csv", GOOD_CSV), 2, features=["x", -1]),
        ValueError,
        "the target column 'y' is also listed in features",
    ),
    Row(
        "csv features repeated",
        lambda t: data.load_csv(_file(t, "a.csv", GOOD_CSV), "y", features=["x", 0]),
        ValueError,
        "feature column(s) ['x'] listed more than once",
    ),
    Row(
        "csv features a string",
        lambda t: data.load_csv(_file(t, "a.csv", GOOD_CSV), "y", features="x"),
        TypeError,
        "load_csv: features must be a list of column names or indices; got 'x' — for one column write",
    ),
    Row(
        "csv target bool",
        lambda t: data.load_csv(_file(t, "a.csv", GOOD_CSV), True),
        TypeError,
        "load_csv: target must be a column name (str) or a 0-based index (int); got True",
    ),
    Row(
        "csv delimiter",
        lambda t: data.load_csv(_file(t, "a.csv", GOOD_CSV), "y", delimiter=",,"),
        ValueError,
        "load_csv: delimiter must be one character",
    ),
    Row(
        "csv header=1",
        lambda t: data.load_csv(_file(t, "a.csv", GOOD_CSV), "y", header=1),
        TypeError,
        "load_csv: header must be True or False; got 1",
    ),
    Row(
        "csv binary", lambda t: data.load_csv(_file(t, "b.csv", b"x,y\n1,\x002\n"), "y"), ValueError, "line 2: NUL byte"
    ),
    Row(
        "csv not utf-8",
        lambda t: data.load_csv(_file(t, "c.csv", b"x,y\n1,2\n\xff\xfe,3\n"), "y"),
        ValueError,
        "line 3: not UTF-8 text",
    ),
    Row(
        "csv underscore number",
        lambda t: data.load_csv(_file(t, "u.csv", "x,y\n1_000,2\n"), "y"),
        ValueError,
        "line 2, column 'x': non-numeric value '1_000'",
    ),
    Row("csv missing", lambda t: data.load_csv(t / "missing.csv", "y"), FileNotFoundError, "missing.csv: no such file"),
    Row("csv a directory", lambda t: data.load_csv(t, "y"), ValueError, "is a directory, expected a file"),
    Row(
        "strd truncated mid-number",
        lambda t: data.parse_strd(NORRIS[: NORRIS.rindex("0.5") + 2], "Norris.dat"),
        ValueError,
        "Norris.dat: line 96: the file ends mid-line (no final newline): the file is truncated, possibly mid-number "
        "('0.2        0.')",
    ),
    Row(
        "strd truncated lines",
        lambda t: data.parse_strd(NORRIS[: NORRIS.index("\n", 2000) + 1], "Norris.dat"),
        ValueError,
        "Norris.dat: the file has",
    ),
    Row("strd certified value cut", lambda t: data.parse_strd(NORRIS[:1200], "Norris.dat"), ValueError, "Norris.dat: "),
    Row(
        "strd bad number",
        lambda t: data.parse_strd(NORRIS.replace("0.232818234301152", "0.2328x8234301152"), "Norris.dat"),
        ValueError,
        "Norris.dat: line 31: '0.2328x8234301152' is not a number",
    ),
    Row(
        "strd observations",
        lambda t: data.parse_strd(NORRIS.replace("36 Observations", "37 Observations"), "Norris.dat"),
        ValueError,
        "the header announces 37 observations but lines 61-96 hold 36",
    ),
    Row(
        "strd not text",
        lambda t: data.parse_strd(NORRIS.encode(), "Norris.dat"),
        TypeError,
        "parse_strd: text must be a str",
    ),
    Row("strd not strd", lambda t: data.parse_strd("hello\n", "x.dat"), ValueError, "x.dat: not a NIST StRD file"),
    Row(
        "npz random bytes", lambda t: data.load_npz(_file(t, "r.npz", b"\x00\x01garbage" * 9)), ValueError, "load_npz: "
    ),
    Row(
        "npz truncated",
        lambda t: data.load_npz(_file(t, "t.npz", _npz_bytes()[:-40])),
        ValueError,
        "not a readable .npz archive",
    ),
    Row("npz a directory", lambda t: data.load_npz(t), ValueError, "is a directory, expected an .npz file"),
    # ---- catalogue --------------------------------------------------------------------------------
    Row(
        "identity order",
        lambda t: Identity(
            name="x", source="s", f=jnp.sin, derivative=jnp.cos, order=3, sample=lambda r, n: (np.ones(n), ())
        ),
        ValueError,
        "Identity 'x': order must be 1 or 2; got 3",
    ),
    Row(
        "run_identity draws",
        lambda t: run_identity(
            Identity(name="x", source="s", f=jnp.sin, derivative=jnp.cos, sample=lambda r, n: (np.ones(()), ())),
            draws=0,
        ),
        ValueError,
        "run_identity: draws must be at least 1; got 0",
    ),
]

ROWS += [
    Row(
        "bench Settings seed",
        lambda t: __import__("mmljax.bench.case").bench.case.Settings(seed=-1),
        ValueError,
        "Settings: seed must be >= 0; got -1",
    ),
    Row(
        "bench Settings only",
        lambda t: __import__("mmljax.bench.case").bench.case.Settings(only=(("N", 0),)),
        ValueError,
        "Settings: only['N'] must be >= 1; got 0",
    ),
    Row(
        "bench TimingConfig nan",
        lambda t: __import__("mmljax.bench.timing").bench.timing.TimingConfig(min_sample_s=float("nan")),
        ValueError,
        "TimingConfig: min_sample_s must be a finite number; got nan",
    ),
    Row(
        "linear.apply x None",
        lambda t: linear.apply(linear.init(KEY, 3), None),
        TypeError,
        "linear.apply: x must be a floating array; got None",
    ),
    Row(
        "basis.design_matrix x str",
        lambda t: basis.design_matrix(basis.polynomial(2, "increasing"), "abc"),
        TypeError,
        "basis.design_matrix: x must be a floating array; got 'abc'",
    ),
    Row(
        "mlp.apply complex x",
        lambda t: mlp.apply(mlp.init(KEY, [2, 1]), jnp.ones((3, 2)) * 1j),
        TypeError,
        "mlp.apply: x must be a floating array (float32 or float64); got dtype complex128",
    ),
    Row("sse pred str", lambda t: losses.sse("a", X3), TypeError, "sse: pred must be a floating array; got 'a'"),
    Row(
        "l2_penalty complex",
        lambda t: losses.l2_penalty({"a": X3 * 1j}),
        TypeError,
        "l2_penalty: params['a'] is complex",
    ),
    Row(
        "ravel_vec str leaf",
        lambda t: mj.ravel_vec({"a": "s"}),
        TypeError,
        "ravel_vec: a leaf of the tree must be a numeric array; got 's'",
    ),
    Row(
        "taylor_test jv shape",
        lambda t: finite_diff.taylor_test(jnp.sin, X3, X3, jnp.ones(4)),
        ValueError,
        "taylor_test: jv must have the shape of f(x), (3,)",
    ),
    Row("check x empty", lambda t: check(x=jnp.ones(0)), ValueError, "x is empty (shape (0,))"),
    Row(
        "chain names a string",
        lambda t: mj.chain(jnp.ones(2), names="ab"),
        TypeError,
        "chain: names must be a sequence of strings",
    ),
    Row("chain complex stage", lambda t: mj.chain(jnp.eye(2) * 1j), TypeError, "chain: stage 1 is complex"),
    Row(
        "chain stages do not fit",
        lambda t: mj.chain(jnp.ones((2, 3)), jnp.ones((2, 2))),
        ValueError,
        "chain: stage 1 · stage 2 do not compose: (2×3) · (2×2): 3 != 2",
    ),
    Row(
        "commutation_matrix bool",
        lambda t: mj.commutation_matrix(True, 2),
        TypeError,
        "commutation_matrix: m must be an integer; got True",
    ),
    Row("unvec shape float", lambda t: mj.unvec(jnp.ones(6), (2, 3.5)), TypeError, "unvec: shape must be an integer"),
    Row(
        "synthetic n float",
        lambda t: data.synthetic_line(n=2.7),
        TypeError,
        "synthetic_line: n must be an integer; got 2.7",
    ),
    Row("synthetic n bool", lambda t: data.synthetic_sine(n=True), TypeError, "synthetic_sine: n must be an integer"),
    Row(
        "synthetic noise nan",
        lambda t: data.synthetic_line(noise=float("nan")),
        ValueError,
        "synthetic_line: noise must be a finite number; got nan",
    ),
    Row(
        "synthetic x_range",
        lambda t: data.synthetic_sine(x_range=(0.0, float("inf"))),
        ValueError,
        "synthetic_sine: x_range must be a finite number; got inf",
    ),
    Row(
        "synthetic seed",
        lambda t: data.synthetic_polynomial(seed=-2),
        ValueError,
        "synthetic_polynomial: seed must be >= 0; got -2",
    ),
    Row(
        "synthetic complex coefficients",
        lambda t: data.synthetic_polynomial(coefficients=[1, 2j]),
        TypeError,
        "synthetic_polynomial: coefficients must be real numbers",
    ),
    Row("catalogue.run seed", lambda t: catalogue.run([], seed=-1), ValueError, "run: seed must be >= 0; got -1"),
    Row("catalogue.run sizes", lambda t: catalogue.run([], sizes=(2, 0)), ValueError, "run: sizes must be >= 1; got 0"),
    Row("catalogue.run draws", lambda t: catalogue.run([], draws=True), TypeError, "run: draws must be an integer"),
    Row("catalogue.run workers", lambda t: catalogue.run([], workers=0), ValueError, "run: workers must be >= 1"),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input_raises_a_clear_error(row, tmp_path):
    with pytest.raises(row.raises) as info:
        row.call(tmp_path)
    msg = str(info.value)
    assert row.match in msg, f"expected {row.match!r} in {msg!r}"
    assert "Traceback" not in msg and len(msg) < 800


class WarnRow(NamedTuple):
    id: str
    call: Callable[[], Any]
    warning: type
    match: str


WARN_ROWS = [
    WarnRow(
        "check in float32",
        lambda: check(x=X3.astype(jnp.float32)),
        UserWarning,
        "checking in float32 only — tolerances are loose",
    ),
]


@pytest.mark.parametrize("row", WARN_ROWS, ids=[r.id for r in WARN_ROWS])
def test_questionable_input_warns(row):
    with pytest.warns(row.warning, match=row.match):
        row.call()


CLI_ROWS = [
    ("fit ridge<0", ["fit", "--dataset", "Norris", "--ridge", "-1"], "--ridge must be a finite number >= 0"),
    ("fit unknown dataset", ["fit", "--dataset", "Fillip"], "unknown dataset 'Fillip'"),
    ("fit plot format", ["fit", "--dataset", "Norris", "--plot", "x.unknownfmt"], "unknown image format 'unknownfmt'"),
    ("fit json is a dir", ["fit", "--dataset", "Norris", "--json", "."], "--json .: is a directory"),
    ("check draws", ["check", "--draws", "0"], "--draws must be at least 1; got 0"),
    ("check seed", ["check", "--seed", "-1"], "--seed must be >= 0; got -1"),
    ("check no match", ["check", "-k", "no-such-entry-anywhere"], "no catalogue entry matches"),
    ("bench samples", ["bench", "--tiny", "--samples", "2"], "--samples must be at least 5"),
    ("bench only syntax", ["bench", "--tiny", "--only", "N"], "--only expects NAME=INTEGER pairs"),
    ("bench only unknown size", ["bench", "--tiny", "--only", "Q=7"], "no selected case has a size called 'Q'"),
    ("bench case", ["bench", "--case", "nope"], "--case 'nope' matches no benchmark case"),
    ("bench seed", ["bench", "--tiny", "--seed", "-1"], "--seed must be >= 0; got -1"),
    ("bench min sample nan", ["bench", "--tiny", "--min-sample-s", "nan"], "--min-sample-s must be positive; got nan"),
]


@pytest.mark.parametrize("argv, match", [r[1:] for r in CLI_ROWS], ids=[r[0] for r in CLI_ROWS])
def test_cli_usage_errors_exit_2_with_one_line(argv, match, capsys):
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and match in err, err
    assert captured.out == ""
