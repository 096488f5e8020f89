"""Critical points: minima, maxima, saddles and degenerate points, and local versus global minima.

1. Five functions of two variables with a critical point at the origin — a minimum `x² + y²`, a
   maximum `−x² − y²`, a saddle `x² − y²`, a degenerate minimum `x⁴ + y²` and the monkey saddle
   `x³ − 3xy²` (zero Hessian) — classified by `classify_critical_point`, with the curvature
   `vᵀHv` along `v = (cos φ, sin φ)` as a function of the angle: positive for every direction only
   at a strict minimum; zero in some direction makes the second-order test inconclusive.
2. Gradient descent from many starts on a non-convex 1-D loss (two minima of different depth)
   and on a small MLP's loss: which minimum each start reaches and the loss there; the end points
   are polished by Newton's method and classified.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python experiments/critical_points.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp
import numpy as np

import mmljax as mj
from experiments import _common

NAME = "critical_points"
DESCRIPTION = (
    "Classify minima/maxima/saddles/degenerate points (vᵀHv vs angle); GD from many starts: local vs global minima."
)

QUICK = dict(
    angles=72,
    starts_1d=41,
    gd_steps_1d=1500,
    mlp_sizes=(1, 2, 1),
    mlp_n=24,
    mlp_noise=0.05,
    mlp_weight_decay=1e-4,
    mlp_init_scale=3.0,
    mlp_starts=16,
    gd_steps_mlp=2000,
    mlp_step=0.1,
    clusters_classified=4,
)
FULL = dict(
    angles=360,
    starts_1d=401,
    gd_steps_1d=5000,
    mlp_sizes=(1, 2, 1),
    mlp_n=24,
    mlp_noise=0.05,
    mlp_weight_decay=1e-4,
    mlp_init_scale=3.0,
    mlp_starts=256,
    gd_steps_mlp=5000,
    mlp_step=0.1,
    clusters_classified=8,
)

FUNCTIONS = {
    "minimum x² + y²": (lambda p: p[0] ** 2 + p[1] ** 2, "minimum"),
    "maximum −x² − y²": (lambda p: -(p[0] ** 2) - p[1] ** 2, "maximum"),
    "saddle x² − y²": (lambda p: p[0] ** 2 - p[1] ** 2, "saddle"),
    "degenerate x⁴ + y²": (lambda p: p[0] ** 4 + p[1] ** 2, "degenerate"),
    "monkey saddle x³ − 3xy²": (lambda p: p[0] ** 3 - 3 * p[0] * p[1] ** 2, "degenerate"),
}

TILT = 0.3


def loss_1d(w):
    """A double well tilted so that the left minimum is the global one: `(w² − 1)² + 0.3 w`."""
    return (w**2 - 1) ** 2 + TILT * w


def classify_functions(cfg: dict) -> dict:
    phis = np.linspace(0, 2 * np.pi, cfg["angles"], endpoint=False)
    V = jnp.asarray(np.stack([np.cos(phis), np.sin(phis)], axis=1))
    origin = jnp.zeros(2)
    out = {}
    for label, (f, expected) in FUNCTIONS.items():
        cp = mj.analysis.classify_critical_point(f, origin)
        curv = np.asarray(jax.jit(jax.vmap(lambda v: mj.second_directional_derivative(f, origin, v)))(V))
        out[label] = {
            "expected": expected,
            "kind": cp.kind,
            "eigenvalues": cp.eigenvalues,
            "grad_norm": cp.grad_norm,
            "summary": cp.summary(),
            "angles": phis,
            "vHv": curv,
            "vHv_min": float(curv.min()),
            "vHv_max": float(curv.max()),
        }
    return out


def _clusters(values: np.ndarray, tol: float) -> np.ndarray:
    """Label sorted-distinct values: two values share a label when within `tol` of each other."""
    order = np.argsort(values)
    labels = np.empty(len(values), int)
    current, last = -1, None
    for i in order:
        if last is None or values[i] - last > tol:
            current += 1
        labels[i] = current
        last = values[i]
    return labels


def many_starts_1d(cfg: dict) -> dict:
    starts = np.linspace(-2.0, 2.0, cfg["starts_1d"])
    # Σ_i loss(w_i) is separable: gradient descent on it is independent descent from every start,
    # in one compiled loop. Step 0.02 < 2 / max loss'' on [-2, 2] (= 2/44) keeps every start stable.
    res = mj.solvers.gradient_descent(
        lambda W: jnp.sum(loss_1d(W)), jnp.asarray(starts), step_size=0.02, max_steps=cfg["gd_steps_1d"], tol=1e-10
    )
    ends = np.asarray(res.params)
    labels = _clusters(ends, 1e-3)
    minima = []
    for c in range(labels.max() + 1):
        i = int(np.flatnonzero(labels == c)[0])
        cp = mj.analysis.classify_critical_point(lambda w: loss_1d(w[0]), jnp.asarray(ends[i : i + 1]))
        minima.append(
            {
                "w": float(ends[i]),
                "loss": float(cp.loss),
                "kind": cp.kind,
                "grad_norm": cp.grad_norm,
                "curvature": float(cp.max_eigenvalue),
                "n_starts": int(np.sum(labels == c)),
            }
        )
    best = int(np.argmin([m["loss"] for m in minima]))
    for i, m in enumerate(minima):
        m["global"] = i == best
    return {
        "starts": starts,
        "ends": ends,
        "label": labels,
        "minima": minima,
        "gd_steps": int(res.steps),
        "converged": bool(res.converged),
        "max_grad_norm_per_start": float(res.grad_norm),
    }


def _mlp_problem(cfg: dict, seed: int):
    """Two steps of different heights, `tanh(8(x + ½)) + 0.7 tanh(8(x − ½))` plus noise, for a 2-unit MLP.

    The loss is the MSE plus a small weight decay `λ Σ ||A_l||² + ||b_l||²`: without it the poorer
    solutions (one unit saturating into a step) have no finite minimiser — the weights grow for ever
    — and there would be no critical point to classify.
    """
    rng = np.random.default_rng(seed)
    x = np.linspace(-1, 1, cfg["mlp_n"])
    y = np.tanh(8 * (x + 0.5)) + 0.7 * np.tanh(8 * (x - 0.5)) + cfg["mlp_noise"] * rng.standard_normal(x.size)
    X, Y = jnp.asarray(x[:, None]), jnp.asarray(y)

    def loss(p):
        return mj.losses.ridge_mse(mj.models.mlp.apply(p, X), Y, p.layers, cfg["mlp_weight_decay"])

    return x, y, loss


def many_starts_mlp(cfg: dict, seed: int) -> dict:
    x, y, loss = _mlp_problem(cfg, seed)
    keys = jax.random.split(jax.random.PRNGKey(seed), cfg["mlp_starts"])
    # Wider than the default initialisation, so that the starts spread over the basins.
    stacked0 = jax.jit(
        jax.vmap(
            lambda k: jax.tree_util.tree_map(
                lambda a: cfg["mlp_init_scale"] * a, mj.models.mlp.init(k, list(cfg["mlp_sizes"]), "tanh")
            )
        )
    )(keys)
    per_start = jax.vmap(loss)

    def total(P):
        return jnp.sum(per_start(P))

    # Separable again: the sum over starts descends every network independently in one loop.
    gd = mj.solvers.gradient_descent(
        total, stacked0, step_size=cfg["mlp_step"], max_steps=cfg["gd_steps_mlp"], tol=1e-12
    )
    gd_losses = np.asarray(jax.jit(per_start)(gd.params))
    # Newton polishes every end point to a critical point to rounding level, so the second-order test
    # applies. The Hessian of the sum is block diagonal, so the Newton system is each network's own;
    # Newton-CG solves it with Hessian-vector products (only the CG and step-length coefficients are
    # shared between the networks), much cheaper than the dense Hessian of all of them together.
    nt = mj.solvers.newton(total, gd.params, max_steps=100, tol=1e-10, method="cg")
    final = nt.params
    losses = np.asarray(jax.jit(per_start)(final))
    labels = _clusters(losses, 1e-8 + 1e-6 * float(np.median(losses)))
    take = lambda tree, i: jax.tree_util.tree_map(lambda a: a[i], tree)  # noqa: E731
    n_cl = int(labels.max() + 1)
    chosen = sorted(set(np.linspace(0, n_cl - 1, min(cfg["clusters_classified"], n_cl)).round().astype(int)))
    classified = []
    grid = np.linspace(-1, 1, 200)
    curves = {}
    for c in chosen:
        i = int(np.flatnonzero(labels == c)[0])
        cp = mj.analysis.classify_critical_point(loss, take(final, i))
        classified.append(
            {
                "cluster": int(c),
                "start": i,
                "loss": float(cp.loss),
                "n_starts": int(np.sum(labels == c)),
                "kind": cp.kind,
                "grad_norm": cp.grad_norm,
                "min_eigenvalue": cp.min_eigenvalue,
                "max_eigenvalue": cp.max_eigenvalue,
                "n_zero": cp.n_zero,
                "summary": cp.summary(),
            }
        )
        curves[int(c)] = np.asarray(mj.models.mlp.apply(take(final, i), jnp.asarray(grid[:, None])))
    # The sum's gradient stacks every network's own, so its norm bounds each of theirs.
    return {
        "x": x,
        "y": y,
        "sizes": list(cfg["mlp_sizes"]),
        "gd_loss": gd_losses,
        "final_loss": losses,
        "max_grad_norm": float(nt.grad_norm),
        "cluster": labels,
        "n_clusters": n_cl,
        "classified": classified,
        "grid": grid,
        "curves": {str(k): v for k, v in curves.items()},
        "gd_steps": int(gd.steps),
        "newton_steps": int(nt.steps),
        "newton_converged": bool(nt.converged),
    }


def _plot_classification(ctx, cls):
    n = len(cls)
    fig, axes = _common.figure(2, n, width=2.6, height=2.4)
    g = np.linspace(-1.2, 1.2, 101)
    A, B = np.meshgrid(g, g)
    for j, (label, r) in enumerate(cls.items()):
        f = FUNCTIONS[label][0]
        Z = np.asarray(f(jnp.asarray(np.stack([A, B]))))
        ax = axes[0, j]
        ax.contourf(A, B, Z, levels=20, cmap="RdBu_r")
        ax.plot(0, 0, "k+", ms=8)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("x", fontsize=8)
        ax.set_ylabel("y", fontsize=8)
        ax.set_aspect("equal")
        ax = axes[1, j]
        deg = np.degrees(np.asarray(r["angles"]))
        v = np.asarray(r["vHv"])
        ax.plot(deg, v, color="C0")
        ax.fill_between(deg, 0, v, where=v > 0, color="C2", alpha=0.3, label="vᵀHv > 0")
        ax.fill_between(deg, 0, v, where=v < 0, color="C3", alpha=0.3, label="vᵀHv < 0")
        ax.axhline(0, color="k", lw=0.8)
        ax.set_ylim(-2.6, 2.6)
        ax.set_xlabel("direction angle φ [deg]", fontsize=8)
        ax.set_ylabel("vᵀ H v at the origin", fontsize=8)
        ax.set_title(f"classified: {r['kind']}", fontsize=9, color="k" if r["kind"] == r["expected"] else "red")
    axes[1, 0].legend(fontsize=7)
    ctx.save_figure(fig, "critical_points_classification.png")


def _plot_minima(ctx, one, mlp):
    fig, axes = _common.figure(1, 3, width=3.8, height=3.2)
    ax = axes[0, 0]
    w = np.linspace(-2, 2, 400)
    ax.plot(w, np.asarray(loss_1d(jnp.asarray(w))), color="0.3", lw=1.5)
    starts, labels = np.asarray(one["starts"]), np.asarray(one["label"])
    for c, m in enumerate(one["minima"]):
        sel = labels == c
        color = "C2" if m["global"] else "C1"
        ax.plot(
            starts[sel],
            np.asarray(loss_1d(jnp.asarray(starts[sel]))),
            "o",
            ms=3,
            color=color,
            label=f"{m['n_starts']} starts → {'global' if m['global'] else 'local'} min "
            f"w={m['w']:.3f}, L={m['loss']:.3f}",
        )
        ax.plot(m["w"], m["loss"], "*", ms=14, color=color, mec="k")
    ax.set_ylim(-0.6, 3)
    ax.set_xlabel("w")
    ax.set_ylabel("L(w) = (w² − 1)² + 0.3 w")
    ax.set_title("Gradient descent from each start", fontsize=10)
    ax.legend(fontsize=6, loc="upper center")
    ax = axes[0, 1]
    losses = np.asarray(mlp["final_loss"])
    order = np.argsort(losses)
    ax.plot(np.arange(len(losses)), losses[order], "o", ms=3, color="C0")
    ax.margins(y=0.25)
    for c in mlp["classified"]:
        rank = int(np.flatnonzero(order == c["start"])[0])
        ax.annotate(
            f"{c['kind']} ({c['n_starts']} starts)",
            (rank, losses[c["start"]]),
            fontsize=7,
            xytext=(3, 6),
            textcoords="offset points",
        )
    ax.set_xlabel("start (sorted by final loss)")
    ax.set_ylabel("loss at the end point (GD, then Newton)")
    ax.set_title(f"MLP {mlp['sizes']} from {len(losses)} starts: {mlp['n_clusters']} minima", fontsize=10)
    ax = axes[0, 2]
    ax.plot(mlp["x"], mlp["y"], "o", ms=3, color="0.4", label="data")
    for c in mlp["classified"]:
        ax.plot(
            mlp["grid"],
            mlp["curves"][str(c["cluster"])],
            lw=1.3,
            label=f"{c['kind']}: loss {c['loss']:.3g} ({c['n_starts']} starts)",
        )
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("Fits at different minima", fontsize=10)
    ax.legend(fontsize=6)
    ctx.save_figure(fig, "critical_points_minima.png")


def body(ctx: _common.Context) -> dict:
    cfg = dict(QUICK if ctx.quick else FULL)
    with ctx.phase("classify five critical points"):
        cls = classify_functions(cfg)
    with ctx.phase(f"gradient descent from {cfg['starts_1d']} starts on a 1-D double well"):
        one = many_starts_1d(cfg)
    with ctx.phase(f"gradient descent from {cfg['mlp_starts']} starts on an MLP {list(cfg['mlp_sizes'])}"):
        mlp = many_starts_mlp(cfg, ctx.seed)
    with ctx.phase("plots"):
        _plot_classification(ctx, cls)
        _plot_minima(ctx, one, mlp)
    return {"config": cfg, "functions": cls, "double_well": one, "mlp": mlp}


def main(argv: list[str] | None = None) -> dict:
    return _common.run(NAME, DESCRIPTION, body, argv)


if __name__ == "__main__":
    _common.cli(main)
