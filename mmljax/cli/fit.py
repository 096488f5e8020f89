"""`mmljax fit`: least-squares fits with their statistics; by default the NIST StRD accuracy table."""

from __future__ import annotations

import argparse
import functools
import io
import math
import platform
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._output import check_outputs, plot_format, write_output

NAME = "fit"
HELP = "fit StRD datasets or your own data by least squares (LRE table, coefficients, statistics)"
DESCRIPTION = """\
Linear least squares accurate to the last digits the data support (Householder QR, then Björck
refinement of the augmented system in double-double arithmetic; polynomials fitted on x mapped
to [-1, 1] and mapped back exactly).

  mmljax fit                         all 11 NIST StRD datasets: log relative error (LRE, correct
                                     digits) of coefficients, standard errors, residual SD and R²
                                     against the certified values; exit 0 only if every dataset
                                     reaches 12 digits (coefficients) and 10 (the rest)
  mmljax fit --compare               ... plus numpy.linalg.lstsq and the normal equations
  mmljax fit --dataset Filip         one dataset: coefficients with standard errors, certified
                                     values and LRE, R², residual SD, condition number, method,
                                     and the second-order check of the fitted loss
  mmljax fit --csv data.csv --target y --features poly:3 --plot fit.png --json fit.json

Features (--features): linear (all feature columns, with intercept), poly:K (degree-K polynomial
of the single feature column), rbf:K (intercept + K Gaussian bumps spread over the range),
fourier:K (1, cos(w_j x), sin(w_j x) for j = 1..K, w_j = 2 pi j / range).
Exit status: 0 success, 1 an accuracy bar missed, 2 usage or data error (including an output that
cannot be written or would overwrite the input file).
"""

COEF_BAR, STAT_BAR = 12.0, 10.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--dataset",
        metavar="NAME",
        help="one NIST StRD dataset (Norris, Pontius, NoInt1, NoInt2, Filip, Longley, Wampler1-5)",
    )
    src.add_argument("--csv", metavar="FILE", help="a CSV file with a header row (needs --target)")
    p.add_argument("--target", metavar="COL", help="target column of --csv (name or 0-based index)")
    p.add_argument(
        "--features",
        metavar="SPEC",
        help="linear | poly:K | rbf:K | fourier:K (default: linear for --csv, the certified model for --dataset)",
    )
    p.add_argument(
        "--method",
        default="auto",
        choices=("auto", "qr", "svd", "cholesky", "normal"),
        help="least-squares method (default: auto)",
    )
    p.add_argument("--ridge", type=float, default=0.0, help="ridge penalty (not on the intercept; default 0)")
    p.add_argument(
        "--compare",
        action="store_true",
        help="StRD table: add numpy.linalg.lstsq and the normal equations on the raw design",
    )
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON (atomically)")
    p.add_argument(
        "--nonlinear",
        action="store_true",
        help="NIST StRD nonlinear regression by Levenberg–Marquardt "
        "(--dataset: a problem name, names separated by commas, or a NIST file path)",
    )
    p.add_argument("--plot", metavar="PATH", help="save a plot of the data, the fit and the residuals")


# ------------------------------------------------------------------------------------------ fits


@dataclass
class _Fit:
    label: str
    result: Any
    x: np.ndarray | None  # 1-D input for plots (None for several predictors)
    y: np.ndarray
    predict: Callable | None  # x grid -> fitted curve (1-D input only)
    check_basis: np.ndarray  # the well-conditioned basis the loss is checked in
    check_residual: np.ndarray  # residual (augmented with the ridge rows) at the solution
    certified: Any = None  # StrdDataset or None


def _parse_features(spec: str | None) -> tuple[str, int]:
    if spec is None or spec == "linear":
        return "linear", 0
    m = re.fullmatch(r"(poly|rbf|fourier):(\d+)", spec)
    if not m or int(m.group(2)) < 1:
        raise ValueError(f"--features must be linear, poly:K, rbf:K or fourier:K with K >= 1; got {spec!r}")
    return m.group(1), int(m.group(2))


def _check_parts(kind: str, data, result, ridge: float, degree: int = 0, intercept: bool = True):
    """The factorised basis and residual of the fitted loss (ridge rows appended), for the check."""
    b, u, penalised = (np.asarray(a) for a in _basis_program()(kind, np.asarray(data), degree, intercept))
    r = np.asarray(result.residuals, dtype=np.float64)
    if ridge > 0:
        pen = np.flatnonzero(penalised)
        s = math.sqrt(ridge)
        b = np.vstack([b, s * u[pen]])
        r = np.concatenate([r, -s * np.asarray(result.coefficients, np.float64)[pen]])
    return b, r


@functools.cache
def _basis_program():
    """`(kind, data, degree, intercept) -> (b, u, penalised)`: the solver's equilibrated basis of a design (see
    `mmljax.linalg.basis`) as one compiled program per shape; run operation by operation, each operation would
    compile a program of its own."""
    import jax

    from ..linalg import basis as _basis

    def build(kind, data, degree, intercept):
        if kind == "polynomial":
            design = _basis.polynomial(data, degree, intercept)
        elif kind == "affine":
            design = _basis.affine(data, intercept)
        else:
            design = _basis.general(data)
        design = _basis.equilibrate(design)
        return design.b.hi, design.u.hi, np.asarray(design.penalised)

    return jax.jit(build, static_argnums=(0, 2, 3))


def _fit_polynomial(label, x, y, degree, intercept, method, ridge, certified=None) -> _Fit:
    from ..solvers import polyfit

    res = polyfit(x, y, degree, intercept=intercept, method=method, ridge=ridge)
    coef = np.asarray(res.coefficients, np.float64)
    first = 0 if intercept else 1
    predict = lambda g: np.polynomial.polynomial.polyval(g, np.concatenate([[0.0] * first, coef]))  # noqa: E731
    b, r = _check_parts("polynomial", x, res, ridge, degree, intercept)
    return _Fit(label, res, x, y, predict, b, r, certified)


def _fit_linear(label, X, y, intercept, method, ridge, certified=None) -> _Fit:
    from ..solvers import linear_regression

    res = linear_regression(X, y, intercept=intercept, method=method, ridge=ridge)
    b, r = _check_parts("affine", X, res, ridge, intercept=intercept)
    x = X[:, 0] if X.shape[1] == 1 else None
    coef = np.asarray(res.coefficients, np.float64)
    predict = None
    if x is not None:
        predict = (lambda g: coef[0] + coef[1] * g) if intercept else (lambda g: coef[0] * g)
    return _Fit(label, res, x, y, predict, b, r, certified)


def _fit_basis(label, x, y, kind, K, method, ridge) -> _Fit:
    import jax.numpy as jnp

    from ..models import basis as mb
    from ..solvers import least_squares

    lo, hi = float(x.min()), float(x.max())
    span = hi - lo if hi > lo else 1.0
    if kind == "rbf":
        centres = np.linspace(lo, hi, K)
        ell = span / max(K - 1, 1)
        fb = mb.rbf(centres, ell)
        features = lambda g: np.column_stack([np.ones(len(g)), np.asarray(mb.design_matrix(fb, jnp.asarray(g)))])  # noqa: E731
        names = ("B0",) + tuple(f"rbf{j + 1}" for j in range(K))
    else:
        fb = mb.fourier(2 * np.pi * np.arange(1, K + 1) / span)
        features = lambda g: np.asarray(mb.design_matrix(fb, jnp.asarray(g)))  # noqa: E731
        names = ("B0",) + tuple(f"cos{j}" for j in range(1, K + 1)) + tuple(f"sin{j}" for j in range(1, K + 1))
    Phi = features(x)
    res = least_squares(Phi, y, method=method, ridge=ridge)
    res = _renamed(res, names)
    b, r = _check_parts("general", Phi, res, ridge)
    coef = np.asarray(res.coefficients, np.float64)
    return _Fit(label, res, x, y, lambda g: features(g) @ coef, b, r)


def _renamed(res, names):
    import dataclasses

    return dataclasses.replace(res, names=names)


def _strd_fit(ds, method: str, ridge: float) -> _Fit:
    if ds.kind == "polynomial":
        return _fit_polynomial(ds.name, ds.x, ds.y, ds.degree, ds.intercept, method, ridge, ds)
    return _fit_linear(ds.name, ds.X, ds.y, ds.intercept, method, ridge, ds)


def _data_fit(label, X, y, features, method, ridge) -> _Fit:
    kind, K = _parse_features(features)
    if kind == "linear":
        return _fit_linear(label, X, y, True, method, ridge)
    if X.shape[1] != 1:
        raise ValueError(
            f"--features {features} needs exactly one feature column; the data have {X.shape[1]} "
            f"(choose one with a smaller CSV, or use --features linear)"
        )
    if kind == "poly":
        return _fit_polynomial(label, X[:, 0], y, K, True, method, ridge)
    return _fit_basis(label, X[:, 0], y, kind, K, method, ridge)


def _critical_check(fit: _Fit):
    """Classify the fitted loss ½||r − B δ||² at δ = 0, in the well-conditioned basis the solver
    used: a linear change of variables, so the kind (minimum, saddle, ...) is that of the loss
    in the natural coefficients (Sylvester's law of inertia), without its rounding trouble."""
    import jax.numpy as jnp

    from ..analysis import classify_critical_point

    B, r = jnp.asarray(fit.check_basis), jnp.asarray(fit.check_residual)
    return classify_critical_point(lambda d: 0.5 * jnp.sum((r - B @ d) ** 2), jnp.zeros(B.shape[1]))


# ------------------------------------------------------------------------------------------ output


def _scores(fit: _Fit) -> dict[str, float] | None:
    from ..data import strd_scores

    return strd_scores(fit.certified, fit.result) if fit.certified is not None else None


def _passes(scores: dict[str, float]) -> bool:
    return (
        scores["coefficients"] >= COEF_BAR
        and min(scores["standard_errors"], scores["residual_sd"], scores["r_squared"]) >= STAT_BAR
    )


def _raw_design(ds) -> np.ndarray:
    if ds.kind == "polynomial":
        first = 0 if ds.intercept else 1
        return np.column_stack([ds.x**j for j in range(first, ds.degree + 1)])
    return np.column_stack([np.ones(ds.n), ds.X]) if ds.intercept else ds.X


def _compare_scores(ds) -> dict[str, float]:
    from ..data import log_relative_error

    A = _raw_design(ds)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        lstsq = np.linalg.lstsq(A, ds.y, rcond=None)[0]
        try:
            normal = np.linalg.solve(A.T @ A, A.T @ ds.y)
        except np.linalg.LinAlgError:
            normal = np.full(A.shape[1], np.nan)
    return {
        "numpy_lstsq": float(log_relative_error(lstsq, ds.certified_coefficients).min()),
        "normal_equations": float(log_relative_error(normal, ds.certified_coefficients).min()),
    }


def _table_mode(args, console) -> tuple[int, dict]:
    from rich.table import Table

    from ..data import STRD_NAMES, load_strd

    table = Table(
        title=f"mmljax fit — NIST StRD, float64, method={args.method}: log relative error (correct digits; "
        f"bar {COEF_BAR:g} for coefficients, {STAT_BAR:g} for standard errors (SE), residual SD, R²)",
        caption="cond: of the centred/scaled design actually factorised; steps: refinement corrections"
        + (
            "; lstsq, normal eq.: numpy.linalg.lstsq and the normal equations on the raw design" if args.compare else ""
        ),
    )
    cols = ["dataset", "n", "p", "difficulty", "coef", "SE", "res. SD", "R²", "cond", "steps"]
    if args.compare:
        cols += ["lstsq", "normal eq."]
    cols.append("result")
    for c in cols:
        table.add_column(c, justify="left" if c in ("dataset", "difficulty", "result") else "right", no_wrap=True)
    entries, ok_all = [], True
    for name in STRD_NAMES:
        ds = load_strd(name)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                fit = _strd_fit(ds, args.method, args.ridge)
            except ValueError as e:  # e.g. Cholesky breaking down: a failed row, not a crash
                fit, err = None, str(e)
        if fit is None:
            ok_all = False
            row = [name, str(ds.n), str(len(ds.certified_coefficients)), ds.difficulty] + ["—"] * 6
            comp = _compare_scores(ds) if args.compare else {}
            if args.compare:
                row += [f"{comp['numpy_lstsq']:.1f}", f"{comp['normal_equations']:.1f}"]
            table.add_row(*row, "[bold red]failed[/]")
            entries.append({"dataset": name, "ok": False, "error": err, **({"compare": comp} if comp else {})})
            continue
        s = _scores(fit)
        ok = _passes(s)
        ok_all &= ok
        row = [
            name,
            str(ds.n),
            str(len(ds.certified_coefficients)),
            ds.difficulty,
            *(f"{s[k]:.1f}" for k in ("coefficients", "standard_errors", "residual_sd", "r_squared")),
            f"{fit.result.condition_number:.2g}",
            str(fit.result.refinement_steps),
        ]
        comp = _compare_scores(ds) if args.compare else {}
        if args.compare:
            row += [f"{comp['numpy_lstsq']:.1f}", f"{comp['normal_equations']:.1f}"]
        table.add_row(*row, "[green]ok[/]" if ok else "[bold red]below bar[/]")
        entries.append(
            {
                "dataset": name,
                "ok": ok,
                "lre": s,
                "method": fit.result.method,
                "condition_number": fit.result.condition_number,
                "refinement_steps": fit.result.refinement_steps,
                "warnings": [str(w.message) for w in caught],
                **({"compare": comp} if comp else {}),
            }
        )
    console.print(table)
    return (0 if ok_all else 1), {"mode": "strd-table", "ok": ok_all, "datasets": entries}


def _single_mode(fit: _Fit, console, args) -> tuple[int, dict]:
    from rich.table import Table

    res = fit.result
    coef = np.atleast_1d(np.asarray(res.coefficients, np.float64))
    se = np.atleast_1d(np.asarray(res.standard_errors, np.float64))
    table = Table(
        title=f"{fit.label}: least squares, method {res.method} ({res.refinement_steps} refinement steps), float64"
    )
    cols = ["", "estimate", "std. error"]
    cert = fit.certified
    if cert is not None:
        from ..data import log_relative_error

        cols += ["certified", "LRE", "certified SE", "LRE (SE)"]
        lre = log_relative_error(coef, cert.certified_coefficients)
        lre_se = log_relative_error(se, cert.certified_standard_errors)
    for c in cols:
        table.add_column(c, justify="right")
    for j, name in enumerate(res.names or [f"B{j}" for j in range(coef.size)]):
        row = [name, f"{coef[j]:.15e}", f"{se[j]:.15e}"]
        if cert is not None:
            row += [
                f"{cert.certified_coefficients[j]:.15e}",
                f"{lre[j]:.1f}",
                f"{cert.certified_standard_errors[j]:.15e}",
                f"{lre_se[j]:.1f}",
            ]
        table.add_row(*row)
    console.print(table)
    console.print(
        f"R² = {float(res.r_squared):.15g} ({'centred' if res.intercept else 'uncentred'}), "
        f"residual SD = {float(res.residual_sd):.15g}, n = {res.n_observations}, dof = {res.dof:g}",
        highlight=False,
    )
    console.print(
        f"rank {res.rank} of {coef.size}, condition number {res.condition_number:.3g} "
        f"(of the centred/scaled, equilibrated design), method {res.method}"
        + (f", ridge {res.ridge:g}" if res.ridge else ""),
        highlight=False,
    )
    cp = _critical_check(fit)
    style = "green" if cp.kind == "minimum" else "yellow"
    console.print(f"critical-point check of the fitted loss: [{style}]{cp.summary()}[/]", highlight=False)
    out = {
        "mode": "single",
        "label": fit.label,
        "method": res.method,
        "coefficients": coef.tolist(),
        "standard_errors": se.tolist(),
        "names": list(res.names),
        "r_squared": float(res.r_squared),
        "residual_sd": float(res.residual_sd),
        "rank": res.rank,
        "condition_number": res.condition_number,
        "refinement_steps": res.refinement_steps,
        "ridge": res.ridge,
        "critical_point": {
            "kind": cp.kind,
            "grad_norm": cp.grad_norm,
            "min_eigenvalue": cp.min_eigenvalue,
            "max_eigenvalue": cp.max_eigenvalue,
        },
    }
    status = 0
    if cert is not None:
        s = _scores(fit)
        ok = _passes(s)
        console.print(
            f"worst LRE: coefficients {s['coefficients']:.1f}, standard errors {s['standard_errors']:.1f}, "
            f"residual SD {s['residual_sd']:.1f}, R² {s['r_squared']:.1f} — "
            + ("[green]meets the bar[/]" if ok else "[bold red]below the bar[/]"),
            highlight=False,
        )
        out.update({"lre": s, "ok": ok})
        status = 0 if ok else 1
    return status, out


def _plot(fit: _Fit, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .._io import atomic_write_bytes

    res = fit.result
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(7, 6), sharex=fit.x is not None, gridspec_kw={"height_ratios": [2, 1]}
    )
    resid = np.asarray(res.residuals, np.float64)
    if fit.x is not None:
        order = np.argsort(fit.x)
        top.plot(fit.x, fit.y, "o", ms=3, label="data")
        grid = np.linspace(fit.x.min(), fit.x.max(), 400)
        if fit.predict is not None:
            top.plot(grid, fit.predict(grid), "-", label="fit")
        else:
            top.plot(fit.x[order], np.asarray(res.fitted)[order], "-", label="fit")
        bottom.plot(fit.x, resid, "o", ms=3)
        bottom.set_xlabel("x")
    else:
        top.plot(np.asarray(res.fitted), fit.y, "o", ms=3, label="observed vs fitted")
        lims = [min(fit.y.min(), np.min(res.fitted)), max(fit.y.max(), np.max(res.fitted))]
        top.plot(lims, lims, "-", lw=1, label="y = fitted")
        top.set_xlabel("fitted")
        bottom.plot(resid, "o", ms=3)
        bottom.set_xlabel("observation")
    top.set_ylabel("y")
    top.set_title(f"{fit.label}: R² = {float(res.r_squared):.6g}, residual SD = {float(res.residual_sd):.3g}")
    top.legend()
    bottom.axhline(0, color="k", lw=0.8)
    bottom.set_ylabel("residual")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=plot_format(path), dpi=120)
    plt.close(fig)
    write_output("--plot", path, lambda: atomic_write_bytes(path, buf.getvalue()))


def run(args: argparse.Namespace) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    from rich.console import Console

    from .._io import atomic_write_json
    from .._json import json_safe
    from ..data import load_csv, load_strd

    if not math.isfinite(args.ridge) or args.ridge < 0:
        raise ValueError(f"--ridge must be a finite number >= 0; got {args.ridge}")
    if args.target is not None and args.csv is None:
        raise ValueError("--target goes with --csv FILE")
    if args.csv is not None and args.target is None:
        raise ValueError("--csv needs --target COL (the column to predict)")
    if args.plot is not None and args.dataset is None and args.csv is None:
        raise ValueError("--features and --plot need --dataset NAME or --csv FILE")
    # Outputs are checked before any work: never over the input CSV, a known image format, a writable place.
    check_outputs([("--json", args.json, "file"), ("--plot", args.plot, "plot")], inputs=[args.csv] if args.csv else [])
    console = Console()
    if not console.is_terminal:  # files and pipes: do not squeeze tables into 80 columns
        console = Console(width=150)
    if args.nonlinear:
        from . import fit_nonlinear

        return fit_nonlinear.run(args, console)
    if args.dataset is None and args.csv is None:
        if args.features is not None or args.plot is not None:
            raise ValueError("--features and --plot need --dataset NAME or --csv FILE")
        status, out = _table_mode(args, console)
    else:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if args.csv is not None:
                target: Any = int(args.target) if re.fullmatch(r"-?\d+", args.target) else args.target
                ds = load_csv(args.csv, target=target)
                fit = _data_fit(args.csv, ds.X, ds.y, args.features, args.method, args.ridge)
            else:
                ds = load_strd(args.dataset)
                if args.features is None:
                    fit = _strd_fit(ds, args.method, args.ridge)
                else:
                    fit = _data_fit(ds.name, ds.X, ds.y, args.features, args.method, args.ridge)
            status, out = _single_mode(fit, console, args)
        for w in caught:
            console.print(f"[yellow]warning:[/] {w.message}", highlight=False)
        if args.plot:
            _plot(fit, args.plot)
            console.print(f"plot written to {args.plot}", highlight=False)
    if args.json:
        doc = json_safe(
            {"schema": "mmljax.fit/1", **out, "versions": {"jax": jax.__version__, "python": platform.python_version()}}
        )
        write_output("--json", args.json, lambda: atomic_write_json(args.json, doc))
    return status
