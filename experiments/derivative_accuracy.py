"""How accurate is each derivative witness? Hand formulas vs autodiff vs finite differences.

1. Across the identity catalogue (`mmljax.catalogue`): the relative error of every hand-derived
   derivative against autodiff (jacfwd/jacrev) and against central finite differences, and the
   observed Taylor-remainder order, as one histogram per witness; the known-wrong rows (kept so
   the checker shows it rejects them) stand apart.
2. The classic finite-difference V-curve: error of the forward and central difference of
   `sin` at `x = 1` versus the step `h`, in float32 and float64 — truncation error (slope 1 or 2)
   on the right, rounding error (slope −1) on the left, the best step near `eps^(1/2)` and
   `eps^(1/3)` — with autodiff's error (no step at all) for reference.
3. The Taylor-remainder test: `|f(x + h v) − f(x) − h J v|` shrinks like `h²` for a correct
   Jacobian and like `h` for a wrong one.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python experiments/derivative_accuracy.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp
import numpy as np

import mmljax as mj
from experiments import _common

NAME = "derivative_accuracy"
DESCRIPTION = "Hand vs autodiff vs finite differences over the catalogue; the finite-difference V-curve in float32/64."

QUICK = dict(catalogue_rows=8, sizes="first", draws=1, n_steps=49)
# Medium sizes are left out: checking them hung inside XLA:CPU executions on this 2-core machine.
FULL = dict(catalogue_rows=None, sizes="small", draws=3, n_steps=161)

X0 = 1.0  # the V-curve's point: f = sin, f' = cos 1, f'' = −sin 1, f''' = −cos 1
FLOOR = 1e-17  # errors of exactly zero are drawn at this level on log axes


def _pick_rows(limit: int | None):
    """Every catalogue row (full) or an evenly spaced sample plus every known-wrong row (quick)."""
    rows = list(mj.catalogue.all_identities())
    if limit is None or limit >= len(rows):
        return rows
    stride = len(rows) / limit
    picked = {int(i * stride) for i in range(limit)}
    picked |= {i for i, r in enumerate(rows) if r.expect_fail}
    return [rows[i] for i in sorted(picked)]


def _mutant(row):
    """The row with its hand derivative doubled: the lectures' erratum kind of mistake, to be rejected."""
    twice = lambda *a, _d=row.derivative: jax.tree_util.tree_map(lambda t: 2 * t, _d(*a))  # noqa: E731
    return dataclasses.replace(row, name=f"{row.name} [mutant: derivative ×2]", derivative=twice, expect_fail=True)


def catalogue_study(cfg: dict, seed: int) -> dict:
    rows = _pick_rows(cfg["catalogue_rows"])
    rows += [_mutant(r) for r in rows if r.derivative is not None and not r.expect_fail]
    # One worker thread: concurrent XLA CPU computations from several Python threads deadlocked here
    # (2 cores, medium sizes: every thread waiting in np.asarray of its result, no CPU used).
    groups: dict[tuple, list] = {}
    for row in rows:
        sizes = {
            "first": tuple(row.sizes[:1]),
            "small": tuple(row.sizes),
            "small+medium": tuple(row.sizes) + tuple(row.medium_sizes),
        }[cfg["sizes"]]
        groups.setdefault(sizes, []).append(row)
    by_name = {}
    for sizes, group in groups.items():
        for row, rep in zip(group, mj.catalogue.run(group, sizes=sizes, seed=seed, draws=cfg["draws"], workers=1)):
            d = rep.to_dict()
            d["expect_fail"] = bool(row.expect_fail)
            d["mutant"] = "[mutant:" in row.name
            by_name[row.name] = d
    reports = [by_name[row.name] for row in rows]
    derivs = [r for r in reports if r["kind"] != "minimiser"]
    correct = [r for r in derivs if not r["expect_fail"]]
    summary = {
        "rows_total": len(mj.catalogue.all_identities()),
        "rows_checked": sum(not r["mutant"] for r in reports),
        "mutants_checked": sum(r["mutant"] for r in reports),
        "mutants_rejected": sum(r["mutant"] and r["status"] == "known wrong" for r in reports),
        "passed": sum(r["passed"] for r in reports),
        "failed": [r["name"] for r in reports if not r["passed"]],
        "known_wrong_rejected": [r["name"] for r in reports if r["expect_fail"] and r["status"] == "known wrong"],
        "worst_autodiff_rel_correct": max((r["autodiff_rel"] or 0.0 for r in correct), default=None),
        "worst_finite_diff_rel_correct": max((r["finite_diff_rel"] or 0.0 for r in correct), default=None),
        "best_autodiff_rel_known_wrong": min(
            (r["autodiff_rel"] for r in derivs if r["expect_fail"] and r["autodiff_rel"] is not None), default=None
        ),
    }
    return {"reports": reports, "summary": summary}


def _slope(h, e, mask) -> float:
    if mask.sum() < 3:
        return float("nan")
    return float(np.polyfit(np.log10(h[mask]), np.log10(e[mask]), 1)[0])


def v_curve(cfg: dict) -> dict:
    """Forward/central difference errors of d sin/dx at X0 versus the step, per dtype."""
    exact = math.cos(X0)
    out = {}
    for dtype in (jnp.float32, jnp.float64):
        name = jnp.dtype(dtype).name
        eps = float(jnp.finfo(dtype).eps)
        hs = np.logspace(-16 if dtype == jnp.float64 else -9, 0, cfg["n_steps"])
        x = jnp.asarray([X0], dtype)
        f = lambda z: jnp.sum(jnp.sin(z))  # noqa: E731
        h_arr = jnp.asarray(hs, dtype)

        @jax.jit
        def both(h_arr):
            forward = jax.vmap(lambda h: (f(x + h) - f(x)) / h)(h_arr)
            central = jax.vmap(lambda h: mj.finite_diff.fd_gradient(f, x, step=h)[0])(h_arr)
            return forward, central

        fwd, cen = (np.abs(np.asarray(a, np.float64) - exact) / abs(exact) for a in both(h_arr))
        ad = abs(float(jax.grad(f)(x)[0]) - exact) / abs(exact)
        h_default = float(mj.finite_diff.central_step(x)[0])
        default_err = abs(float(mj.finite_diff.fd_gradient(f, x)[0]) - exact) / abs(exact)
        res = {
            "eps": eps,
            "steps": hs,
            "autodiff_rel": ad,
            "default_central_step": h_default,
            "default_central_rel": default_err,
        }
        # Theory: truncation |f''| h / 2 (forward), |f'''| h² / 6 (central); rounding ~ eps |f| / h.
        # Minimising the sums: h = sqrt(2 eps |f| / |f''|) and h = (3 eps |f| / |f'''|)^(1/3).
        f0, f2, f3 = abs(math.sin(X0)), abs(math.sin(X0)), abs(math.cos(X0))
        theory = {"forward": math.sqrt(2 * eps * f0 / f2), "central": (3 * eps * f0 / f3) ** (1 / 3)}
        for scheme, err in (("forward", fwd), ("central", cen)):
            e = np.maximum(err, FLOOR)
            j = int(np.argmin(e))
            h_opt = hs[j]
            res[scheme] = {
                "rel_error": err,
                "best_step": float(h_opt),
                "best_rel_error": float(err[j]),
                "theory_best_step": theory[scheme],
                # well right of the optimum: truncation; well left: rounding
                "truncation_slope": _slope(hs, e, (hs > 30 * h_opt) & (hs < 0.1) & (e > 10 * eps)),
                "rounding_slope": _slope(hs, e, (hs < h_opt / 30) & (e < 0.1)),
            }
        out[name] = res
    return out


def taylor_study() -> dict:
    """Taylor remainders of a correct and a transposed Jacobian of f(x) = sin(A x)."""
    rng = np.random.default_rng(1)
    A = jnp.asarray(rng.standard_normal((4, 4)))
    x = jnp.asarray(rng.standard_normal(4))
    v = jnp.asarray(rng.standard_normal(4))
    f = lambda z: jnp.sin(A @ z)  # noqa: E731
    J = jnp.cos(A @ x)[:, None] * A
    out = {}
    for label, JJ in (("correct J = diag(cos(Ax)) A", J), ("wrong J = Aᵀ diag(cos(Ax))", J.T)):
        r = mj.taylor_test(f, x, v, JJ @ v, n_steps=12)
        out[label] = {
            "ok": bool(r.ok),
            "order": r.order,
            "steps": r.steps,
            "remainders": r.remainders,
            "noise_floor": r.noise_floor,
        }
    return out


def _log_hist(ax, values, bins, label, color):
    v = np.log10(np.maximum(np.asarray([x for x in values if x is not None], float), FLOOR))
    if v.size:
        ax.hist(v, bins=bins, color=color, alpha=0.75, label=f"{label} ({v.size})")


def _plot_catalogue(ctx, cat):
    reps = [r for r in cat["reports"] if r["kind"] != "minimiser"]
    good = [r for r in reps if not r["expect_fail"]]
    wrong = [r for r in reps if r["expect_fail"]]
    fig, axes = _common.figure(1, 4, width=3.3, height=3.0)
    bins = np.arange(-17.5, 1.5, 0.5)
    for ax, key, title, tol in (
        (axes[0, 0], "jacfwd", "hand vs jacfwd", 1e-10),
        (axes[0, 1], "jacrev", "hand vs jacrev", 1e-10),
        (axes[0, 2], "finite_diff", "hand vs central differences", 1e-6),
    ):
        _log_hist(ax, [r["witnesses"].get(key) for r in good], bins, "correct rows", "C0")
        _log_hist(ax, [r["witnesses"].get(key) for r in wrong], bins, "known wrong / ×2 mutants", "C3")
        note = " (Hessians: 1e-4)" if key == "finite_diff" else ""
        ax.axvline(np.log10(tol), color="k", ls="--", lw=1, label=f"float64 tolerance {tol:g}{note}")
        ax.set_xlabel("log10 relative error, worst draw (exact: −17)")
        ax.set_ylabel("catalogue rows")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=6)
    ax = axes[0, 3]
    order_bins = np.arange(0.0, 4.01, 0.125)
    for rows, label, color in ((good, "correct rows", "C0"), (wrong, "known wrong / mutants", "C3")):
        o = np.asarray([r["taylor_order"] for r in rows if r["taylor_order"] is not None], float)
        if o.size:
            ax.hist(np.clip(o, 0, 4), bins=order_bins, color=color, alpha=0.75, label=f"{label} ({o.size})")
    ax.axvline(2.0, color="k", ls="--", lw=1, label="order 2 (correct)")
    ax.set_xlabel("observed Taylor-remainder order")
    ax.set_ylabel("catalogue rows")
    ax.set_title("Taylor test (above rounding level)", fontsize=9)
    ax.legend(fontsize=6)
    fig.suptitle(
        f"Identity catalogue in float64: {len(good)} derivative rows and {len(wrong)} wrong ones "
        "(known-wrong rows, and each row with its derivative doubled)",
        fontsize=9,
    )
    ctx.save_figure(fig, "derivative_accuracy_catalogue.png")


def _plot_v_curve(ctx, vc, taylor):
    fig, axes = _common.figure(1, 3, width=3.8, height=3.2)
    for ax, name in zip(axes[0, :2], ("float32", "float64")):
        r = vc[name]
        h = np.asarray(r["steps"])
        for scheme, color in (("forward", "C0"), ("central", "C3")):
            e = np.maximum(np.asarray(r[scheme]["rel_error"]), FLOOR)
            ax.loglog(h, e, ".-", ms=3, lw=1, color=color, label=f"{scheme}: best h = {r[scheme]['best_step']:.0e}")
        eps = r["eps"]
        ax.loglog(h, np.minimum(eps / h, 1e3), ":", color="0.5", lw=1, label="rounding ε/h")
        ax.axhline(max(r["autodiff_rel"], FLOOR), color="C2", lw=1.5, label="autodiff (no step)")
        ax.axvline(r["default_central_step"], color="k", ls="--", lw=0.8, label="mmljax default central step")
        ax.set_ylim(FLOOR / 10, 10)
        ax.set_xlabel("step h")
        ax.set_ylabel("relative error of d sin/dx at x = 1")
        ax.set_title(f"{name}: truncation vs rounding", fontsize=10)
        ax.legend(fontsize=6, loc="lower left")
    ax = axes[0, 2]
    for (label, t), color in zip(taylor.items(), ("C0", "C3")):
        ax.loglog(
            t["steps"],
            np.maximum(t["remainders"], FLOOR),
            "o-",
            ms=3,
            color=color,
            label=f"{label}: order {t['order']:.2f}",
        )
    ax.set_xlabel("step h")
    ax.set_ylabel("|f(x+hv) − f(x) − h J v|")
    ax.set_title("Taylor remainder: h² if J is right", fontsize=10)
    ax.legend(fontsize=6)
    ctx.save_figure(fig, "derivative_accuracy_v_curve.png")


def body(ctx: _common.Context) -> dict:
    cfg = dict(QUICK if ctx.quick else FULL)
    with ctx.phase("finite-difference V-curves (float32, float64)"):
        vc = v_curve(cfg)
        taylor = taylor_study()
    with ctx.phase("identity catalogue"):
        cat = catalogue_study(cfg, ctx.seed)
    with ctx.phase("plots"):
        _plot_catalogue(ctx, cat)
        _plot_v_curve(ctx, vc, taylor)
    return {"config": cfg, "dtype": "float32 and float64", "v_curve": vc, "taylor": taylor, "catalogue": cat}


def main(argv: list[str] | None = None) -> dict:
    return _common.run(NAME, DESCRIPTION, body, argv)


if __name__ == "__main__":
    _common.cli(main)
