"""The loss landscape of a two-parameter linear model `f(x) = a x + b` under the mean squared error.

Contours of `L(a, b)` with the negative-gradient field; gradient-descent paths for step sizes
below, near and beyond the stability limit `2/λ_max` (smooth, oscillating, diverging); Newton's
single step to the minimum; the Hessian's eigenvectors at the minimum (the axes of the contour
ellipses); and a directional-derivative panel: the slope of `L` along `v` equals `(dL/dθ) v`, by
autodiff, by the gradient, and by finite differences.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python experiments/loss_landscape.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp
import numpy as np

import mmljax as mj
from experiments import _common

NAME = "loss_landscape"
DESCRIPTION = "Two-parameter linear model: contours, gradient field, GD paths around 2/λ_max, Newton, Hessian, slopes."

QUICK = dict(
    n=20, noise=0.3, x_range=(0.5, 2.5), steps=40, grid=80, arrows=13, angles=24, step_factors=(0.3, 1.0, 1.9, 2.1)
)
FULL = dict(
    n=200,
    noise=0.3,
    x_range=(0.5, 2.5),
    steps=200,
    grid=300,
    arrows=21,
    angles=360,
    step_factors=(0.1, 0.3, 1.0, 1.5, 1.9, 1.99, 2.01, 2.1),
)


def _problem(cfg, seed):
    ds = mj.data.synthetic_line(cfg["n"], slope=2.0, noise=cfg["noise"], x_range=cfg["x_range"], seed=seed)
    X, y = jnp.asarray(ds.X), jnp.asarray(ds.y)

    def loss(w):
        """Mean squared error of `f(x) = a x + b`, `w = (a, b)`."""
        return mj.losses.mse(mj.models.linear.apply(mj.models.linear.LinearParams(w[:1], w[1]), X), y)

    return ds, X, y, loss


def body(ctx: _common.Context) -> dict:
    cfg = dict(QUICK if ctx.quick else FULL)
    ds, X, y, loss = _problem(cfg, ctx.seed)
    n = cfg["n"]

    with ctx.phase("minimum and Hessian"):
        fit = mj.solvers.linear_regression(ds.X, ds.y)
        w_star = jnp.asarray([fit.coefficients[1], fit.coefficients[0]])  # (a, b) from (B0, B1)
        L_star = float(loss(w_star))
        grad = jax.jit(mj.gradient(loss))  # one compilation for every (2,) point
        g_star = np.asarray(grad(w_star))
        H = np.asarray(jax.jit(mj.hessian_matrix(loss))(w_star))
        # The model's hand Hessian is of ½ Σ r², in ravel_vec order (theta, then bias) = (a, b).
        H_hand = (2.0 / n) * np.asarray(
            jax.jit(lambda w: mj.models.linear.hand_hessian(mj.models.linear.LinearParams(w[:1], w[1]), X, y))(w_star)
        )
        lam, V = np.linalg.eigh(H)
        lam_max = float(lam[-1])
        check = mj.check_minimiser(loss, w_star)

    # Start up the valley, off both eigen-directions, so every behaviour shows.
    w0 = w_star + jnp.asarray(-1.2 * V[:, 0] * np.sqrt(lam_max / lam[0]) * 0.25 + 0.25 * V[:, 1])
    w0 = jnp.asarray(np.round(np.asarray(w0), 2))

    with ctx.phase("gradient-descent paths"):
        etas = np.asarray(cfg["step_factors"]) / lam_max
        k = len(etas)

        # GD with step η on L is GD with step 1 on ηL: stacking the paths as one separable loss
        # Σ_i η_i L(w_i) runs every step size in one compiled loop (one compilation, not k).
        def stacked(W):
            return jnp.sum(jnp.asarray(etas) * jax.vmap(loss)(W))

        res = mj.solvers.gradient_descent(
            stacked, jnp.tile(w0, (k, 1)), step_size=1.0, max_steps=cfg["steps"], tol=0.0, trajectory=True
        )
        paths = np.asarray(res.trajectory)  # (steps + 1, k, 2)
        path_loss = np.asarray(jax.jit(jax.vmap(jax.vmap(loss)))(jnp.asarray(paths)))  # (steps + 1, k)
    runs = []
    for i, (eta, f) in enumerate(zip(etas, cfg["step_factors"])):
        err = np.linalg.norm(paths[:, i, :] - np.asarray(w_star), axis=1)
        rate_pred = float(np.max(np.abs(1 - eta * lam)))
        tail = err[-10:]
        rate_obs = float(np.exp(np.mean(np.diff(np.log(np.maximum(tail, 1e-300)))))) if tail[-1] > 1e-12 else 0.0
        runs.append(
            {
                "step_size": float(eta),
                "step_times_lambda_max": float(f),
                "behaviour": "diverges" if f > 2 else ("oscillates" if f > 1 else "monotone"),
                "initial_gap": float(path_loss[0, i] - L_star),
                "final_gap": float(path_loss[-1, i] - L_star),
                "final_distance": float(err[-1]),
                "predicted_rate": rate_pred,
                "observed_rate": rate_obs,
            }
        )

    with ctx.phase("Newton"):
        nt = mj.solvers.newton(loss, w0, trajectory=True)
        newton_path = np.asarray(nt.trajectory)

    with ctx.phase("landscape grid and gradient field"):
        pts = np.vstack(
            [paths[:, i, :] for i, r in enumerate(runs) if r["behaviour"] != "diverges"] + [[np.asarray(w0)]]
        )
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        pad = 0.25 * (hi - lo) + 0.1
        ga = np.linspace(lo[0] - pad[0], hi[0] + pad[0], cfg["grid"])
        gb = np.linspace(lo[1] - pad[1], hi[1] + pad[1], cfg["grid"])
        A, B = np.meshgrid(ga, gb)
        surface = jax.jit(jax.vmap(loss))
        Z = np.asarray(surface(jnp.asarray(np.stack([A.ravel(), B.ravel()], axis=1)))).reshape(A.shape)
        qa = np.linspace(ga[0], ga[-1], cfg["arrows"])
        qb = np.linspace(gb[0], gb[-1], cfg["arrows"])
        QA, QB = np.meshgrid(qa, qb)
        G = np.asarray(jax.jit(jax.vmap(mj.gradient(loss)))(jnp.asarray(np.stack([QA.ravel(), QB.ravel()], 1))))

    with ctx.phase("directional derivatives"):
        phis = np.linspace(0, 2 * np.pi, cfg["angles"], endpoint=False)
        Vs = jnp.asarray(np.stack([np.cos(phis), np.sin(phis)], axis=1))
        g0 = grad(w0)
        slopes_ad = np.asarray(jax.jit(jax.vmap(lambda v: mj.directional_derivative(loss, w0, v)))(Vs))
        slopes_grad = np.asarray(Vs @ g0)
        slopes_fd = np.asarray(jax.jit(jax.vmap(lambda v: mj.finite_diff.fd_directional(loss, w0, v)))(Vs))
        scale = float(np.max(np.abs(slopes_grad)))
        v_steep = -np.asarray(g0) / np.linalg.norm(np.asarray(g0))
        hs = np.linspace(-0.6, 0.6, 61)
        v_slice = np.asarray(Vs[cfg["angles"] // 8])
        slice_vals = np.asarray(surface(w0 + jnp.asarray(hs)[:, None] * jnp.asarray(v_slice)))
        slice_slope = float(slopes_ad[cfg["angles"] // 8])

    with ctx.phase("plots"):
        _plot_paths(ctx, A, B, Z, QA, QB, G, paths, runs, newton_path, w_star, w0, lam, V, path_loss, L_star)
        _plot_directional(
            ctx, phis, slopes_ad, slopes_grad, slopes_fd, g0, hs, slice_vals, slice_slope, float(loss(w0)), v_slice
        )

    return {
        "config": cfg,
        "data": {"x": ds.x, "y": ds.y},
        "minimum": {
            "w_star": w_star,
            "loss": L_star,
            "grad_norm": float(np.linalg.norm(g_star)),
            "check_minimiser_ok": bool(check.ok),
        },
        "hessian": {
            "H": H,
            "H_hand": H_hand,
            "hand_vs_autodiff_rel": float(np.max(np.abs(H - H_hand)) / np.max(np.abs(H))),
            "eigenvalues": lam,
            "eigenvectors": V,
            "condition_number": float(lam[-1] / lam[0]),
            "stability_limit_step": 2.0 / lam_max,
        },
        "start": w0,
        "gradient_descent": runs,
        "newton": {
            "steps": int(nt.steps),
            "converged": bool(nt.converged),
            "path": newton_path,
            "final_distance": float(np.linalg.norm(newton_path[-1] - np.asarray(w_star))),
            "first_step_distance": float(
                np.linalg.norm(newton_path[min(1, len(newton_path) - 1)] - np.asarray(w_star))
            ),
        },
        "directional": {
            "angles": phis,
            "autodiff": slopes_ad,
            "gradient_dot_v": slopes_grad,
            "finite_diff": slopes_fd,
            "autodiff_vs_gradient_rel": float(np.max(np.abs(slopes_ad - slopes_grad)) / scale),
            "finite_diff_vs_gradient_rel": float(np.max(np.abs(slopes_fd - slopes_grad)) / scale),
            "steepest_slope": float(np.min(slopes_grad)),
            "gradient_norm": float(np.linalg.norm(np.asarray(g0))),
            "steepest_direction": v_steep,
        },
    }


DIVERGING_SHOWN = 10


def _plot_paths(ctx, A, B, Z, QA, QB, G, paths, runs, newton_path, w_star, w0, lam, V, path_loss, L_star):
    fig, axes = _common.figure(1, 2, width=4.6, height=4.0)
    ax = axes[0, 0]
    levels = L_star + np.geomspace(0.01 * (path_loss[0, 0] - L_star), Z.max() - L_star, 18)
    ax.contour(A, B, Z, levels=levels, cmap="viridis", linewidths=0.7)
    gn = np.linalg.norm(G, axis=1, keepdims=True)
    Gu = -G / np.where(gn > 0, gn, 1)
    ax.quiver(QA.ravel(), QB.ravel(), Gu[:, 0], Gu[:, 1], color="0.6", scale=30, width=0.003)
    for i, r in enumerate(runs):
        # A diverging path leaves the picture within a few steps: show only its start.
        p = paths[: DIVERGING_SHOWN + 1 if r["behaviour"] == "diverges" else None, i, :]
        ax.plot(p[:, 0], p[:, 1], ".-", ms=2.5, lw=0.9, color=f"C{i}")
    ax.plot(newton_path[:, 0], newton_path[:, 1], "k*--", ms=9, lw=1.2, label="Newton: one step")
    ws = np.asarray(w_star)
    # Eigenvectors of the Hessian at the minimum, drawn with length ∝ 1/sqrt(λ): the contour ellipse's axes.
    size = 0.3 * (A.max() - A.min())
    centre = np.array([A.mean(), B.mean()])
    for j in range(2):
        d = V[:, j] * size * np.sqrt(lam[0] / lam[j])
        d = d if np.dot(d, centre - ws) >= 0 else -d  # point into the picture
        ax.annotate("", xy=ws + d, xytext=ws, arrowprops=dict(arrowstyle="->", color="crimson", lw=1.5))
        ax.text(*(ws + d), f" v{j + 1}, λ={lam[j]:.3g}", color="crimson", fontsize=7)
    ax.plot(*ws, "x", color="crimson", ms=8, label="minimum θ* (closed form)")
    ax.set_xlim(A.min(), A.max())
    ax.set_ylim(B.min(), B.max())
    ax.set_xlabel("slope a")
    ax.set_ylabel("intercept b")
    ax.set_title("MSE contours, −∇L field, descent paths", fontsize=10)
    ax.legend(fontsize=7, loc="lower left")
    ax = axes[0, 1]
    for i, r in enumerate(runs):
        ax.semilogy(
            np.maximum(path_loss[:, i] - L_star, 1e-18),
            color=f"C{i}",
            label=f"GD, η = {r['step_times_lambda_max']:.3g}/λmax ({r['behaviour']})",
        )
    ax.set_xlabel("iteration")
    ax.set_ylabel("L(θ_k) − L(θ*)")
    ax.set_title(f"Stable iff η < 2/λmax = {2 / lam[-1]:.3g}", fontsize=10)
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "loss_landscape_paths.png")


def _plot_directional(ctx, phis, ad, gv, fd, g0, hs, slice_vals, slice_slope, L0, v_slice):
    fig, axes = _common.figure(1, 2, width=4.2, height=3.3)
    ax = axes[0, 0]
    deg = np.degrees(phis)
    ax.plot(deg, gv, "-", color="0.3", lw=2, label="(dL/dθ) v")
    ax.plot(deg, ad, "o", ms=4, mfc="none", color="C0", label="autodiff jvp")
    ax.plot(deg, fd, "x", ms=4, color="C3", label="central difference")
    ax.axhline(-float(np.linalg.norm(np.asarray(g0))), color="C2", ls=":", label="−‖∇L‖ (steepest descent)")
    ax.set_xlabel("direction angle φ of v = (cos φ, sin φ)  [deg]")
    ax.set_ylabel("slope of L along v")
    ax.set_title("Directional derivative at the start", fontsize=10)
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    ax.plot(hs, slice_vals, color="C0", label="L(θ0 + h v)")
    ax.plot(hs, L0 + slice_slope * hs, "--", color="C3", label=f"tangent, slope (dL/dθ)v = {slice_slope:.3g}")
    ax.set_xlabel("h")
    ax.set_ylabel("loss")
    ax.set_title(f"Slice along v = ({v_slice[0]:.2f}, {v_slice[1]:.2f})", fontsize=10)
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "loss_landscape_directional.png")


def main(argv: list[str] | None = None) -> dict:
    return _common.run(NAME, DESCRIPTION, body, argv)


if __name__ == "__main__":
    _common.cli(main)
