"""Curve fitting, the lectures' opening problem: polynomial feature-basis regression of degree 0..K.

1. Noisy samples of `sin(2πx)`: fitted curves for selected degrees; training and held-out error
   versus degree over repeated draws (training error falls monotonically, held-out error is
   U-shaped).
2. The closed-form (QR), gradient-descent and Newton fits of the same polynomial agreeing.
3. The same on a NIST StRD dataset (default Pontius): training and cross-validated error versus
   degree, the certified fit's correct digits, and the iterative solvers agreeing with it.
4. Fits as JAX functions: percentile bootstrap bands from one `jax.vmap` of thousands of refits, and
   the ridge λ chosen by gradient descent on the held-out error through the fit's own derivative
   (implicit differentiation), drawn against a grid sweep of the same curve.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

if __package__ in (None, ""):  # run as `python experiments/curve_fitting.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp
import numpy as np
import optax

import mmljax as mj
from experiments import _common

NAME = "curve_fitting"
DESCRIPTION = (
    "Polynomial regression of degree 0..K: U-shaped held-out error; closed form, GD and Newton agree; NIST StRD."
)

QUICK = dict(
    n_train=12,
    n_test=200,
    noise=0.25,
    max_degree=10,
    draws=3,
    shown=(0, 1, 3, 9),
    agree_degrees=(3,),
    gd_steps=20_000,
    strd_max_degree=4,
    folds=4,
    boot_degree=3,
    boot_draws=200,
    ridge_degree=9,
    ridge_grid=25,
    log_ridge_range=(-14.0, 4.0),
    log_ridge_start=-8.0,
    hyper_steps=150,
    hyper_lr=0.2,
)
FULL = dict(
    n_train=20,
    n_test=1000,
    noise=0.25,
    max_degree=18,
    draws=200,
    shown=(0, 1, 3, 9, 15),
    agree_degrees=(1, 3, 5),
    gd_steps=400_000,
    strd_max_degree=8,
    folds=10,
    boot_degree=3,
    boot_draws=5000,
    ridge_degree=12,
    ridge_grid=61,
    log_ridge_range=(-16.0, 4.0),
    log_ridge_start=-8.0,
    hyper_steps=200,
    hyper_lr=0.2,
)


def add_arguments(p):
    p.add_argument("--strd", default="Pontius", help="NIST StRD polynomial dataset (default Pontius)")


def _rmse(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def _polyval(coef, x):
    return np.polynomial.polynomial.polyval(np.asarray(x), np.asarray(coef))


def degree_sweep(cfg: dict, seed: int) -> dict:
    """Training / held-out RMSE of the least-squares polynomial of each degree, over `draws` data sets."""
    degrees = list(range(cfg["max_degree"] + 1))
    train = np.zeros((cfg["draws"], len(degrees)))
    test = np.zeros_like(train)
    truth = np.zeros_like(train)
    warned = 0
    for r in range(cfg["draws"]):
        tr = mj.data.synthetic_sine(cfg["n_train"], noise=cfg["noise"], seed=seed * 100_003 + 2 * r)
        te = mj.data.synthetic_sine(cfg["n_test"], noise=cfg["noise"], seed=seed * 100_003 + 2 * r + 1)
        for j, d in enumerate(degrees):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                fit = mj.solvers.polyfit(tr.x, tr.y, d, method="svd")
            warned += len(caught)
            train[r, j] = _rmse(_polyval(fit.coefficients, tr.x), tr.y)
            test[r, j] = _rmse(_polyval(fit.coefficients, te.x), te.y)
            truth[r, j] = _rmse(_polyval(fit.coefficients, te.x), te.truth(te.x))
    return {"degrees": degrees, "train_rmse": train, "test_rmse": test, "truth_rmse": truth, "solver_warnings": warned}


def _fit_iteratively(t, y, degree: int, gd_steps: int, seed: int) -> dict:
    """Closed form, gradient descent and Newton on `½ mean (y − Φθ)²` with Φ the polynomial basis of t."""
    basis = mj.models.basis.polynomial(degree, "increasing")
    y_j = jnp.asarray(y)
    t_j = jnp.asarray(t)

    def loss(p):
        return 0.5 * mj.losses.mse(mj.models.basis.apply(p, t_j), y_j)

    p0 = mj.models.basis.init(jax.random.PRNGKey(seed), basis)
    closed = mj.solvers.polyfit(t, y, degree)
    p_star = mj.models.basis.BasisParams(jnp.asarray(closed.coefficients), None, None, basis)
    L_star = float(loss(p_star))
    gd = mj.solvers.gradient_descent(loss, p0, max_steps=gd_steps, tol=1e-11)
    nt = mj.solvers.newton(loss, p0, tol=1e-12)
    coef = np.asarray(closed.coefficients)
    fitted = np.asarray(closed.fitted)

    def summary(res):
        th = np.asarray(res.params.theta)
        pred = np.asarray(mj.models.basis.apply(res.params, t_j))
        return {
            "steps": int(res.steps),
            "converged": bool(res.converged),
            "loss": float(res.loss),
            "loss_gap": float(res.loss) - L_star,
            "coef_max_abs_diff": float(np.max(np.abs(th - coef))),
            "fitted_rel_diff": float(np.linalg.norm(pred - fitted) / np.linalg.norm(fitted)),
            "history_gap": np.maximum(np.asarray(res.history) - L_star, 0.0),
            "coefficients": th,
        }

    return {
        "degree": degree,
        "closed_form": {
            "coefficients": coef,
            "loss": L_star,
            "rank": int(closed.rank),
            "condition_number": float(closed.condition_number),
            "method": closed.method,
        },
        "gradient_descent": {**summary(gd), "step_size": float(gd.step_size)},
        "newton": summary(nt),
    }


def strd_study(name: str, cfg: dict, seed: int) -> dict:
    ds = mj.data.load_strd(name)
    if ds.kind != "polynomial":
        raise ValueError(
            f"--strd {name}: a polynomial (one-predictor) dataset is needed for curve fitting; "
            "try Pontius, Norris, Filip, NoInt1 or Wampler1-5"
        )
    x, y = ds.x, ds.y
    certified = ds.fit()
    scores = mj.data.strd_scores(ds, certified)
    degrees = list(range(max(cfg["strd_max_degree"], ds.degree) + 1))
    rng = np.random.default_rng(seed)
    folds = np.array_split(rng.permutation(ds.n), cfg["folds"])
    train, cv = [], []
    for d in degrees:
        fit = mj.solvers.polyfit(x, y, d)
        train.append(_rmse(fit.fitted, y))
        sq = 0.0
        for k in range(len(folds)):
            held = folds[k]
            keep = np.concatenate([f for j, f in enumerate(folds) if j != k])
            c = mj.solvers.polyfit(x[keep], y[keep], d, method="svd").coefficients
            sq += float(np.sum((_polyval(c, x[held]) - y[held]) ** 2))
        cv.append(float(np.sqrt(sq / ds.n)))
    # Iterative solvers on inputs mapped to [-1, 1] (the monomial basis of raw x is far too ill-conditioned).
    centre, half = (x.max() + x.min()) / 2, (x.max() - x.min()) / 2
    t = (x - centre) / half
    agree = _fit_iteratively(t, y, ds.degree, cfg["gd_steps"], seed)
    return {
        "dataset": ds.name,
        "difficulty": ds.difficulty,
        "n": ds.n,
        "certified_degree": ds.degree,
        "degrees": degrees,
        "train_rmse": train,
        "cv_rmse": cv,
        "folds": cfg["folds"],
        "certified_digits": scores,
        "certified_coefficients": ds.certified_coefficients,
        "coefficients": certified.coefficients,
        "x_scaling": {"centre": centre, "half_width": half},
        "agreement": agree,
    }


def _plot_fits(ctx, cfg, sweep_seed):
    tr = mj.data.synthetic_sine(cfg["n_train"], noise=cfg["noise"], seed=sweep_seed)
    grid = np.linspace(0, 1, 400)
    shown = [d for d in cfg["shown"] if d <= cfg["max_degree"]]
    fig, axes = _common.figure(1, len(shown), width=3.0, height=2.8, sharey=True)
    for ax, d in zip(axes[0], shown):
        c = mj.solvers.polyfit(tr.x, tr.y, d, method="svd").coefficients
        ax.plot(grid, tr.truth(grid), "k--", lw=1, label="truth sin(2πx)")
        ax.plot(grid, _polyval(c, grid), "C1", lw=1.5, label=f"degree {d} fit")
        ax.plot(tr.x, tr.y, "o", ms=4, color="C0", label="training data")
        ax.set_ylim(-2, 2)
        ax.set_title(f"degree {d}")
        ax.set_xlabel("x")
    axes[0, 0].set_ylabel("y")
    axes[0, 0].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"Least-squares polynomial fits to {cfg['n_train']} noisy samples (σ = {cfg['noise']})")
    ctx.save_figure(fig, "curve_fitting_fits.png")


def _plot_error(ctx, sweep, cfg):
    d = np.asarray(sweep["degrees"])
    fig, ax = _common.figure(width=5.2, height=3.4)
    for key, label, color in (
        ("train_rmse", "training", "C0"),
        ("test_rmse", "held-out", "C3"),
        ("truth_rmse", "vs noise-free truth", "C2"),
    ):
        a = np.asarray(sweep[key])
        ax.plot(d, np.median(a, axis=0), "o-", color=color, ms=3, label=f"{label} (median)")
        ax.fill_between(d, np.quantile(a, 0.25, axis=0), np.quantile(a, 0.75, axis=0), color=color, alpha=0.2)
    ax.axhline(cfg["noise"], color="gray", ls=":", lw=1, label="noise σ")
    ax.set_yscale("log")
    ax.set_ylim(top=min(ax.get_ylim()[1], 20 * cfg["noise"]))  # keep the U visible next to the blow-up
    ax.set_xlabel("polynomial degree")
    ax.set_ylabel("RMSE")
    ax.set_title(f"Error vs degree over {cfg['draws']} draws (bands: quartiles)")
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "curve_fitting_error_vs_degree.png")


def _plot_agreement(ctx, agreements):
    fig, axes = _common.figure(1, 2, width=4.2, height=3.2)
    ax = axes[0, 0]
    for i, a in enumerate(agreements):
        g = np.asarray(a["gradient_descent"]["history_gap"])
        ax.semilogy(np.arange(len(g)), np.maximum(g, 1e-17), color=f"C{i}", label=f"GD, degree {a['degree']}")
        n = np.asarray(a["newton"]["history_gap"])
        ax.semilogy(
            np.arange(len(n)), np.maximum(n, 1e-17), "s--", color=f"C{i}", ms=5, label=f"Newton, degree {a['degree']}"
        )
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("iteration")
    ax.set_ylabel("L(θ_k) − L(θ*)  (θ* closed form)")
    ax.set_title("Loss gap to the closed-form fit")
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    a = agreements[-1]
    c = np.asarray(a["closed_form"]["coefficients"])
    j = np.arange(c.size)
    ax.bar(j, c, color="0.8", label="closed form (QR)")
    ax.plot(j, a["gradient_descent"]["coefficients"], "o", color="C0", label="gradient descent")
    ax.plot(j, a["newton"]["coefficients"], "x", color="C3", ms=8, label="Newton")
    ax.set_xlabel("coefficient index j (θ_j multiplies t^j)")
    ax.set_ylabel("θ_j")
    ax.set_title(f"Degree {a['degree']}: the three fits agree")
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "curve_fitting_solvers.png")


def _plot_strd(ctx, st):
    ds = mj.data.load_strd(st["dataset"])
    fig, axes = _common.figure(1, 3, width=3.6, height=3.1)
    ax = axes[0, 0]
    lo = max(st["certified_degree"] - 1, 0)
    for d, color, marker in ((lo, "C1", "o"), (st["certified_degree"], "C3", "s")):
        res = mj.solvers.polyfit(ds.x, ds.y, d).residuals
        ax.plot(ds.x, res, marker, ms=3, color=color, label=f"degree {d} (RMSE {_rmse(res, 0):.2g})")
    ax.axhline(0, color="gray", lw=0.8)
    ax.set_yscale("symlog", linthresh=float(st["train_rmse"][st["certified_degree"]]))
    ax.set_xlabel(ds.feature_names[0] if ds.feature_names else "x")
    ax.set_ylabel("residual y − fit")
    ax.set_title(f"NIST {st['dataset']} ({st['difficulty']}): residuals", fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    ax.semilogy(st["degrees"], st["train_rmse"], "o-", ms=3, label="training")
    ax.semilogy(st["degrees"], st["cv_rmse"], "s-", ms=3, label=f"{st['folds']}-fold cross-validated")
    ax.axvline(st["certified_degree"], color="gray", ls=":", label="certified model")
    ax.set_xlabel("polynomial degree")
    ax.set_ylabel("RMSE")
    ax.set_title("Error vs degree")
    ax.legend(fontsize=7)
    ax = axes[0, 2]
    ag = st["agreement"]
    labels = ["coef.", "std. err.", "resid. SD", "R²", "GD fit", "Newton fit"]
    digits = [st["certified_digits"][k] for k in ("coefficients", "standard_errors", "residual_sd", "r_squared")]
    for k in ("gradient_descent", "newton"):
        rel = ag[k]["fitted_rel_diff"]
        digits.append(float(min(16.0, -np.log10(max(rel, 1e-16)))))
    ax.bar(range(len(digits)), digits, color=["C2"] * 4 + ["C0", "C3"])
    ax.set_xticks(range(len(digits)), labels, rotation=30, fontsize=7)
    ax.set_ylabel("correct digits")
    ax.set_ylim(0, 16)
    ax.set_title("Closed form vs certified;\niterative fits vs closed form", fontsize=9)
    ctx.save_figure(fig, "curve_fitting_strd.png")


# ---------------------------------------------------------------- fits as JAX functions: bootstrap, hypergradient


def bootstrap_bands(cfg: dict, seed: int) -> dict:
    """Percentile bootstrap bands of the degree-`boot_degree` polynomial from `jax.vmap` of `boot_draws` refits."""
    tr = mj.data.synthetic_sine(cfg["n_train"], noise=cfg["noise"], seed=seed * 100_003 + 7)
    x, y = jnp.asarray(tr.x), jnp.asarray(tr.y)
    n, degree, draws = x.shape[0], cfg["boot_degree"], cfg["boot_draws"]
    rows = jax.random.randint(jax.random.PRNGKey(seed), (draws, n), 0, n)
    grid = jnp.linspace(0.0, 1.0, 200)

    @jax.jit
    def refit_all(rows):
        def one(r):
            fit = mj.solvers.polyfit(x[r], y[r], degree, method="svd")  # a resample may repeat points
            return fit.coefficients, fit.rank

        return jax.vmap(one)(rows)

    t0 = time.perf_counter()
    jax.block_until_ready(refit_all(rows))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    coefs, ranks = jax.block_until_ready(refit_all(rows))
    warm = time.perf_counter() - t0
    curves = jax.vmap(lambda c: jnp.polyval(c[::-1], grid))(coefs)  # (draws, grid)
    lo, med, hi = np.quantile(np.asarray(curves), [0.025, 0.5, 0.975], axis=0)
    full = mj.solvers.polyfit(tr.x, tr.y, degree)
    # the same refits one by one, for the speed-up and to show vmap gives the same coefficients
    check = min(draws, 20)
    loop = np.stack(
        [
            np.asarray(mj.solvers.polyfit(np.asarray(x)[r], np.asarray(y)[r], degree, method="svd").coefficients)
            for r in np.asarray(rows[:check])
        ]
    )
    truth = np.sin(2 * np.pi * np.asarray(grid))
    return {
        "degree": degree,
        "draws": draws,
        "n": int(n),
        "x": tr.x,
        "y": tr.y,
        "grid": np.asarray(grid),
        "lower": lo,
        "median": med,
        "upper": hi,
        "fit": _polyval(full.coefficients, grid),
        "coverage_of_truth": float(np.mean((truth >= lo) & (truth <= hi))),
        "min_rank": int(np.min(ranks)),
        "first_call_s": first,
        "warm_s": warm,
        "per_fit_us": 1e6 * warm / draws,
        "vmap_vs_loop_max_rel": float(np.max(np.abs(np.asarray(coefs[:check]) - loop) / (np.abs(loop) + 1e-300))),
    }


def ridge_hypergradient(cfg: dict, seed: int) -> dict:
    """Choose the ridge λ of a degree-`ridge_degree` fit by gradient descent on the held-out error w.r.t. log λ.

    The hypergradient d(validation MSE)/d log λ flows through the fit itself (implicit differentiation of the
    ridge normal equations); the same curve is swept on a grid of λ with `jax.vmap` to show where the descent ends.
    """
    tr = mj.data.synthetic_sine(cfg["n_train"], noise=cfg["noise"], seed=seed * 100_003 + 11)
    va = mj.data.synthetic_sine(cfg["n_test"], noise=cfg["noise"], seed=seed * 100_003 + 12)
    degree = cfg["ridge_degree"]

    def design(x):  # monomials of t = 2x - 1 in [-1, 1]: a well-conditioned basis on the data's range
        return (2 * jnp.asarray(x) - 1)[:, None] ** jnp.arange(degree + 1)

    P_tr, y_tr, P_va, y_va = design(tr.x), jnp.asarray(tr.y), design(va.x), jnp.asarray(va.y)

    def validation_mse(log_ridge):
        beta = mj.solvers.least_squares(P_tr, y_tr, ridge=jnp.exp(log_ridge)).coefficients
        return jnp.mean((P_va @ beta - y_va) ** 2)

    value_and_grad = jax.jit(jax.value_and_grad(validation_mse))
    grid = jnp.linspace(cfg["log_ridge_range"][0], cfg["log_ridge_range"][1], cfg["ridge_grid"])
    sweep = np.asarray(jax.jit(jax.vmap(validation_mse))(grid))
    # the hypergradient against a central difference at the start
    start = jnp.asarray(cfg["log_ridge_start"], dtype=grid.dtype)
    h = 1e-4
    fd = (validation_mse(start + h) - validation_mse(start - h)) / (2 * h)
    g0 = value_and_grad(start)[1]
    opt = optax.adam(cfg["hyper_lr"])
    state, theta, path = opt.init(start), start, []
    for _ in range(cfg["hyper_steps"]):
        v, g = value_and_grad(theta)
        path.append((float(theta), float(v)))
        updates, state = opt.update(g, state)
        theta = optax.apply_updates(theta, updates)
    v_end = float(validation_mse(theta))
    path.append((float(theta), v_end))
    best = int(np.argmin(sweep))
    return {
        "degree": degree,
        "grid_log_ridge": np.asarray(grid),
        "grid_validation_mse": sweep,
        "grid_best_log_ridge": float(grid[best]),
        "grid_best_mse": float(sweep[best]),
        "descent_log_ridge": [p[0] for p in path],
        "descent_mse": [p[1] for p in path],
        "final_log_ridge": float(theta),
        "final_mse": v_end,
        "hypergradient_at_start": float(g0),
        "finite_difference_at_start": float(fd),
        "hypergradient_vs_fd_rel": float(abs(g0 - fd) / max(abs(fd), 1e-300)),
        "unregularised_mse": float(validation_mse(jnp.asarray(-40.0))),
    }


def _plot_bootstrap(ctx, b):
    fig, ax = _common.figure(width=5.2, height=3.4)
    ax.fill_between(b["grid"], b["lower"], b["upper"], color="C1", alpha=0.3, label="95% bootstrap band")
    ax.plot(b["grid"], b["fit"], "C1", lw=1.5, label=f"degree {b['degree']} fit")
    ax.plot(b["grid"], np.sin(2 * np.pi * b["grid"]), "k--", lw=1, label="truth sin(2πx)")
    ax.plot(b["x"], b["y"], "o", ms=4, color="C0", label="training data")
    ax.set_ylim(-2, 2)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(f"{b['draws']} bootstrap refits in one jax.vmap ({b['per_fit_us']:.0f} µs per fit, warm)", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    ctx.save_figure(fig, "curve_fitting_bootstrap.png")


def _plot_hypergradient(ctx, h):
    fig, ax = _common.figure(width=5.2, height=3.4)
    ax.semilogy(h["grid_log_ridge"], h["grid_validation_mse"], "-", color="0.4", label="grid sweep (vmap over λ)")
    ax.semilogy(
        h["descent_log_ridge"],
        h["descent_mse"],
        "o-",
        ms=3,
        color="C3",
        lw=0.8,
        label="gradient descent on log λ (hypergradient)",
    )
    ax.plot([h["final_log_ridge"]], [h["final_mse"]], "*", ms=12, color="C3")
    ax.set_xlabel("log λ")
    ax.set_ylabel("validation MSE")
    ax.set_title(f"Ridge λ of a degree-{h['degree']} fit chosen through the fit's derivative", fontsize=9)
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "curve_fitting_ridge_hypergradient.png")


def body(ctx: _common.Context) -> dict:
    cfg = dict(QUICK if ctx.quick else FULL)
    with ctx.phase(f"degree sweep 0..{cfg['max_degree']} over {cfg['draws']} draws of {cfg['n_train']} points"):
        sweep = degree_sweep(cfg, ctx.seed)
    med_test = np.median(sweep["test_rmse"], axis=0)
    best = int(np.argmin(med_test))
    with ctx.phase("plots"):
        _plot_fits(ctx, cfg, ctx.seed * 100_003)
        _plot_error(ctx, sweep, cfg)

    with ctx.phase(f"closed form vs gradient descent vs Newton at degrees {cfg['agree_degrees']}"):
        tr = mj.data.synthetic_sine(cfg["n_train"], noise=cfg["noise"], seed=ctx.seed * 100_003)
        t = 2 * tr.x - 1  # [0, 1] -> [-1, 1]: keeps the Gram matrix well conditioned for gradient descent
        agreements = [_fit_iteratively(t, tr.y, d, cfg["gd_steps"], ctx.seed) for d in cfg["agree_degrees"]]
    with ctx.phase("plots"):
        _plot_agreement(ctx, agreements)

    with ctx.phase(f"NIST StRD {ctx.args.strd}"):
        st = strd_study(ctx.args.strd, cfg, ctx.seed)
    with ctx.phase("plots"):
        _plot_strd(ctx, st)

    with ctx.phase(f"{cfg['boot_draws']} bootstrap refits in one jax.vmap"):
        boot = bootstrap_bands(cfg, ctx.seed)
    with ctx.phase(f"ridge λ by the hypergradient vs a grid of {cfg['ridge_grid']}"):
        hyper = ridge_hypergradient(cfg, ctx.seed)
    with ctx.phase("plots"):
        _plot_bootstrap(ctx, boot)
        _plot_hypergradient(ctx, hyper)
    return {
        "config": cfg | {"strd": ctx.args.strd, "sweep_method": "svd", "t": "2x - 1"},
        "sweep": {
            **sweep,
            "median_train_rmse": np.median(sweep["train_rmse"], axis=0),
            "median_test_rmse": med_test,
            "best_degree": best,
        },
        "agreement": agreements,
        "strd": st,
        "bootstrap": boot,
        "hypergradient": hyper,
    }


def main(argv: list[str] | None = None) -> dict:
    return _common.run(NAME, DESCRIPTION, body, argv, add_arguments)


if __name__ == "__main__":
    _common.cli(main)
