"""Deep regression: learned features `σ(Ax + b)` and MLPs of increasing width and depth, fitted with optax.

1. A 1-D function: learned-basis models `f(x) = Θᵀσ(Ax + b)` of increasing width and MLPs of
   increasing depth, trained with Adam (`mmljax.solvers.minimize`): loss curves, fitted
   functions, held-out error, and the learned basis functions `σ(A_j x + b_j)` themselves.
2. A multivariate regression (4 inputs, 2 outputs) with an MLP: predictions against the truth.
3. Along training, the hand-written backpropagation gradient (`models.*.hand_gradient`) equals
   `jax.grad` of the loss (checked inside the optimiser at regular steps).
4. At the end, the Hessian spectrum by Lanczos on Hessian-vector products, compared with the
   dense eigenvalues, its trace by Hutchinson's estimator, and the second-order classification
   of the end point.
5. The same models (those with at least as many residuals as parameters) trained by
   Levenberg–Marquardt (`mmljax.solvers.nonlinear_least_squares` on the per-example residuals)
   from the same initialisation: training loss against steps and against wall time, beside Adam.

Training checkpoints to `OUT/checkpoints/`; `--resume` continues an interrupted run and ends
with exactly the parameters of an uninterrupted one (final parameters: `OUT/final_params.npz`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import sys
import time
import warnings
from pathlib import Path

if __package__ in (None, ""):  # run as `python experiments/deep_regression.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp
import numpy as np
import optax

import mmljax as mj
from experiments import _common
from mmljax.io import atomic_write_bytes, atomic_write_json

NAME = "deep_regression"
DESCRIPTION = (
    "Learned features and MLPs of growing width/depth with optax: fits, features, hand backprop = jax.grad, "
    "Hessian spectrum."
)

QUICK = dict(
    n_train=64,
    n_test=200,
    noise=0.05,
    widths=(4, 16),
    depths=(2,),
    depth_width=16,
    multi_sizes=(4, 16, 16, 2),
    multi_n=256,
    steps=2000,
    checkpoint_every=250,
    lr=1e-2,
    check_every=250,
    lanczos_iterations=40,
    trace_samples=100,
    analyse=("mlp_",),
    lm_steps=60,
    lm_models=("basis_",),
)
FULL = dict(
    n_train=200,
    n_test=1000,
    noise=0.05,
    widths=(2, 4, 8, 16, 32, 64),
    depths=(2, 3, 4),
    depth_width=32,
    multi_sizes=(4, 64, 64, 2),
    multi_n=2000,
    steps=20000,
    checkpoint_every=1000,
    lr=3e-3,
    check_every=500,
    lanczos_iterations=120,
    trace_samples=1000,
    analyse=("basis_", "mlp_", "multi_"),
    lm_steps=400,
    lm_models=("basis_", "mlp_", "multi_"),
)


def add_arguments(p):
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the checkpoints in OUT/checkpoints/ (ends with the same parameters as an "
        "uninterrupted run)",
    )
    p.add_argument(
        "--models",
        default=None,
        metavar="PREFIXES",
        help="train only the models whose names start with one of these comma-separated prefixes "
        "(e.g. basis_,mlp_d2); each keeps the initialisation it has in the full set",
    )
    p.add_argument(
        "--kill-after",
        type=int,
        default=None,
        metavar="STEPS",
        help="kill this process (SIGKILL: no clean-up) once STEPS training steps, counted over the "
        "models in order, are checkpointed — to try --resume",
    )


def truth_1d(x):
    return np.sin(3 * x) + 0.3 * np.cos(9 * x)


def _data(cfg: dict, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-1, 1, cfg["n_train"]))
    y = truth_1d(x) + cfg["noise"] * rng.standard_normal(x.size)
    xt = np.linspace(-1, 1, cfg["n_test"])
    d, k = cfg["multi_sizes"][0], cfg["multi_sizes"][-1]
    W = rng.standard_normal((d, k)) / np.sqrt(d)
    Xm = rng.standard_normal((2 * cfg["multi_n"], d))
    Z = Xm @ W
    Ym = np.stack([np.sin(2 * Z[:, 0]), 0.5 * Z[:, 1] ** 2], axis=1)[:, :k]
    Ym_noisy = Ym + cfg["noise"] * rng.standard_normal(Ym.shape)
    n = cfg["multi_n"]
    return {
        "x": x,
        "y": y,
        "x_test": xt,
        "y_test": truth_1d(xt),
        "X_multi": Xm[:n],
        "Y_multi": Ym_noisy[:n],
        "X_multi_test": Xm[n:],
        "Y_multi_test": Ym[n:],
    }


def _models(cfg: dict) -> list[dict]:
    """Each model: name, family, sizes, which data set."""
    out = [{"name": f"basis_w{w}", "family": "basis", "width": w, "depth": 1, "data": "1d"} for w in cfg["widths"]]
    out += [
        {
            "name": f"mlp_d{d}_w{cfg['depth_width']}",
            "family": "mlp",
            "depth": d,
            "data": "1d",
            "sizes": [1] + [cfg["depth_width"]] * d + [1],
        }
        for d in cfg["depths"]
    ]
    s = list(cfg["multi_sizes"])
    out.append(
        {
            "name": "multi_mlp_" + "-".join(map(str, s)),
            "family": "mlp",
            "depth": len(s) - 2,
            "data": "multi",
            "sizes": s,
        }
    )
    return out


def _init(model: dict, key):
    if model["family"] == "basis":
        return mj.models.basis.init(key, mj.models.basis.learned(1, model["width"], "tanh"))
    return mj.models.mlp.init(key, model["sizes"], "tanh")


def _apply(model: dict):
    return mj.models.basis.apply if model["family"] == "basis" else mj.models.mlp.apply


def _hand_gradient(model: dict):
    return mj.models.basis.hand_gradient if model["family"] == "basis" else mj.models.mlp.hand_gradient


def gradient_check(hand, every: int, record) -> optax.GradientTransformation:
    """An identity optax transformation that, every `every` steps, compares the incoming gradient
    (`jax.grad` of the loss, from `minimize`) with `hand(params)` and reports `(step, rel. error)`
    to the host through `record`. It must come first in the chain, where updates are raw gradients."""

    def init(params):
        return jnp.zeros((), jnp.int32)

    def update(updates, step, params=None):
        def compare(_):
            g = mj.ravel_vec(updates)[0]
            h = mj.ravel_vec(hand(params))[0]
            rel = jnp.max(jnp.abs(h - g)) / jnp.maximum(jnp.max(jnp.abs(g)), jnp.finfo(g.dtype).tiny)
            jax.debug.callback(record, step, rel)

        jax.lax.cond(step % every == 0, compare, lambda _: None, None)
        return updates, step + 1

    return optax.GradientTransformation(init, update)


def _flat(params) -> np.ndarray:
    return np.asarray(mj.ravel_vec(params)[0])


def train(ctx, cfg: dict, model: dict, data: dict, index: int, steps_before: int) -> dict:
    """Train one model with Adam (full batch), checkpointing; returns the parameters and the records."""
    if model["data"] == "1d":
        X, Y = jnp.asarray(data["x"][:, None]), jnp.asarray(data["y"])
    else:
        X, Y = jnp.asarray(data["X_multi"]), jnp.asarray(data["Y_multi"])
    n = X.shape[0]
    apply, hand_gradient = _apply(model), _hand_gradient(model)

    def loss(p):
        return mj.losses.half_sse(apply(p, X), Y) / n

    def hand(p):  # hand backprop of ½ Σ ||y − f(x)||², scaled like the loss
        return jax.tree_util.tree_map(lambda g: g / n, hand_gradient(p, X, Y))

    params0 = jax.jit(lambda key: _init(model, key))(jax.random.fold_in(jax.random.PRNGKey(ctx.seed), index))
    ckpt_dir = ctx.out / "checkpoints"
    ckpt = ckpt_dir / f"{model['name']}.ckpt"
    side = ckpt_dir / f"{model['name']}.gradcheck.json"
    records: dict[int, float] = {}
    if ctx.args.resume and side.exists() and ckpt.exists():
        records = {int(k): float(v) for k, v in json.loads(side.read_text()).items()}

    def record(step, rel):
        records[int(step)] = float(rel)

    def on_chunk(step, value):
        jax.effects_barrier()
        atomic_write_json(side, {str(k): v for k, v in sorted(records.items())})
        limit = ctx.args.kill_after
        if limit is not None and steps_before + step >= limit and step < cfg["steps"]:
            ctx.log(f"--kill-after {limit}: killing myself at step {step} of {model['name']}; rerun with --resume")
            os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
            os._exit(137)  # not reached where SIGKILL exists

    optimizer = optax.chain(gradient_check(hand, cfg["check_every"], record), optax.adam(cfg["lr"]))
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    res = mj.solvers.minimize(
        loss,
        params0,
        optimizer,
        max_steps=cfg["steps"],
        key=jax.random.PRNGKey(ctx.seed),
        checkpoint=ckpt,
        checkpoint_every=cfg["checkpoint_every"],
        resume=bool(ctx.args.resume),
        callback=on_chunk,
        progress=False,
    )
    jax.effects_barrier()
    return {
        "params": res.params,
        "loss_fn": loss,
        "history": np.asarray(res.history),
        "final_loss": float(res.loss),
        "grad_norm": float(res.grad_norm),
        "gradcheck": dict(sorted(records.items())),
        "X": X,
        "Y": Y,
    }


def _step_grid(limit: int) -> list[int]:
    """1, 2, 4, ... up to `limit` (and `limit` itself)."""
    out, k = [], 1
    while k < limit:
        out.append(k)
        k *= 2
    return out + [limit]


def adam_seconds_per_step(cfg: dict, loss, params0) -> float:
    """Warm wall time of one full-batch Adam step (a compiled `lax.scan` of steps, timed after compiling):
    the training run itself also checkpoints and checks gradients, which a timing should not count."""
    opt = optax.adam(cfg["lr"])
    n = min(cfg["steps"], 500)

    @jax.jit
    def run(p0):
        def step(carry, _):
            p, st = carry
            value, g = jax.value_and_grad(loss)(p)
            upd, st = opt.update(g, st, p)
            return (optax.apply_updates(p, upd), st), value

        (p, _), hist = jax.lax.scan(step, (p0, opt.init(p0)), None, length=n)
        return p, hist

    jax.block_until_ready(run(params0))
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        jax.block_until_ready(run(params0))
        best = min(best, time.perf_counter() - t0)
    return best / n


def train_lm(cfg: dict, model: dict, data: dict, index: int, seed: int) -> dict:
    """Levenberg–Marquardt on the per-example residuals `f(x_i) - y_i`, from Adam's initialisation.

    The loss after k steps is that of a run with `max_steps=k` (a traced bound: one compiled program),
    timed warm, for k = 1, 2, 4, ... until the solver stops by itself: loss against steps and time."""
    if model["data"] == "1d":
        X, Y = jnp.asarray(data["x"][:, None]), jnp.asarray(data["y"])
    else:
        X, Y = jnp.asarray(data["X_multi"]), jnp.asarray(data["Y_multi"])
    n = X.shape[0]
    apply = _apply(model)
    params0 = jax.jit(lambda key: _init(model, key))(jax.random.fold_in(jax.random.PRNGKey(seed), index))
    P, m = _flat(params0).size, int(np.prod(Y.shape))
    if m < P:
        return {"skipped": f"{P} parameters > {m} residuals: Levenberg–Marquardt needs m >= n"}
    if not model["name"].startswith(cfg["lm_models"]):
        return {"skipped": "not trained by Levenberg–Marquardt in this run (quick: the learned-basis models only)"}

    def residuals(p, d):
        return jnp.ravel(apply(p, d[0]) - d[1])

    t0 = time.perf_counter()
    jax.block_until_ready(mj.solvers.nonlinear_least_squares(residuals, params0, (X, Y), max_steps=1).params)
    compile_s = time.perf_counter() - t0
    steps, losses, seconds = [0], [float(jnp.sum(residuals(params0, (X, Y)) ** 2)) / (2 * n)], [0.0]
    res = None
    for k in _step_grid(cfg["lm_steps"]):
        t0 = time.perf_counter()
        res = mj.solvers.nonlinear_least_squares(residuals, params0, (X, Y), max_steps=k)
        jax.block_until_ready(res.params)
        seconds.append(time.perf_counter() - t0)
        steps.append(int(res.steps))
        losses.append(float(res.rss) / (2 * n))
        if mj.Status(int(res.status)) is not mj.Status.MAX_STEPS:
            break
    return {
        "params": res.params,
        "steps": steps,
        "loss": losses,
        "seconds": seconds,
        "compile_s": compile_s,
        "status": mj.Status(int(res.status)).name,
        "final_loss": losses[-1],
        "n_params": P,
        "n_residuals": m,
    }


def analyse(cfg: dict, model: dict, tr: dict) -> dict:
    """Lanczos spectrum (all Ritz values of an m-step run) vs dense eigenvalues, and the classification."""
    loss, params = tr["loss_fn"], tr["params"]
    P = _flat(params).size
    m = min(P, cfg["lanczos_iterations"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # interior Ritz values are not meant to converge
        lz = mj.analysis.hessian_eigenvalues(loss, params, k=m, which="largest", num_iterations=m)
    cp = mj.analysis.classify_critical_point(loss, params)
    trace = mj.analysis.hessian_trace(loss, params, num_samples=cfg["trace_samples"], key=jax.random.PRNGKey(0))
    ritz, resid = np.asarray(lz.eigenvalues), np.asarray(lz.residual_norms)
    # The classification's eigenvalues: all of them by dense eigh up to its dense_limit parameters,
    # beyond that the extreme ones by Lanczos (then no independent reference for the comparison).
    ref = np.sort(np.asarray(cp.eigenvalues))[::-1]
    dense = cp.method == "dense"
    scale = float(np.max(np.abs(ref)))
    return {
        "n_params": P,
        "lanczos_iterations": int(lz.iterations),
        "ritz_values": ritz,
        "ritz_residuals": resid,
        "reference_method": cp.method,
        "dense_eigenvalues": ref if dense else None,
        "largest_rel_error": float(abs(ritz[0] - ref[0]) / scale) if dense else None,
        "smallest_rel_error": float(abs(ritz[-1] - ref[-1]) / scale) if dense else None,
        "trace": {
            "hutchinson": float(trace.estimate),
            "standard_error": float(trace.standard_error),
            "samples": trace.num_samples,
            "exact": float(np.sum(ref)) if dense else None,
        },
        "classification": {
            "kind": cp.kind,
            "grad_norm": cp.grad_norm,
            "grad_tol": cp.grad_tol,
            "n_positive": cp.n_positive,
            "n_negative": cp.n_negative,
            "n_zero": cp.n_zero,
            "min_eigenvalue": cp.min_eigenvalue,
            "max_eigenvalue": cp.max_eigenvalue,
            "summary": cp.summary(),
        },
    }


def _save_params(ctx, flat: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **flat)
    atomic_write_bytes(ctx.out / "final_params.npz", buf.getvalue())


def body(ctx: _common.Context) -> dict:
    cfg = dict(QUICK if ctx.quick else FULL)
    data = _data(cfg, ctx.seed)
    models = _models(cfg)
    index = {m["name"]: i for i, m in enumerate(models)}  # the init key of a model is its place in the full set
    if ctx.args.models:
        prefixes = tuple(p.strip() for p in ctx.args.models.split(",") if p.strip())
        models = [m for m in models if m["name"].startswith(prefixes)]
        if not models:
            raise ValueError(f"--models {ctx.args.models!r} matches none of {', '.join(index)}")
    results, flat, trained = {}, {}, {}
    done = 0
    for model in models:  # train everything first: a killed run wastes no analysis
        with ctx.phase(f"train {model['name']}"):
            trained[model["name"]] = train(ctx, cfg, model, data, index[model["name"]], done)
        done += cfg["steps"]
    lm = {}
    for model in models:
        with ctx.phase(f"Levenberg–Marquardt {model['name']}"):
            lm[model["name"]] = train_lm(cfg, model, data, index[model["name"]], ctx.seed)
            if "skipped" not in lm[model["name"]]:
                tr = trained[model["name"]]
                lm[model["name"]]["adam_seconds_per_step"] = adam_seconds_per_step(
                    cfg,
                    tr["loss_fn"],
                    jax.jit(lambda key, m=model: _init(m, key))(
                        jax.random.fold_in(jax.random.PRNGKey(ctx.seed), index[model["name"]])
                    ),
                )
    for model in models:
        tr = trained[model["name"]]
        an = None
        if model["name"].startswith(cfg["analyse"]):  # name prefixes of the models analysed
            with ctx.phase(f"Hessian spectrum {model['name']}"):
                an = analyse(cfg, model, tr)
        flat[model["name"]] = _flat(tr["params"])
        apply = _apply(model)
        if model["data"] == "1d":
            pred = np.asarray(jax.jit(apply)(tr["params"], jnp.asarray(data["x_test"][:, None])))
            test_mse = float(np.mean((pred - data["y_test"]) ** 2))
        else:
            pred = np.asarray(jax.jit(apply)(tr["params"], jnp.asarray(data["X_multi_test"])))
            test_mse = float(np.mean((pred - data["Y_multi_test"]) ** 2))
        gc = np.asarray(list(tr["gradcheck"].values()))
        results[model["name"]] = {
            **{k: v for k, v in model.items() if k != "name"},
            "final_loss": tr["final_loss"],
            "grad_norm": tr["grad_norm"],
            "test_mse": test_mse,
            "loss_history": tr["history"],
            "test_prediction": pred,
            "gradcheck_steps": list(tr["gradcheck"].keys()),
            "gradcheck_rel_error": gc,
            "gradcheck_max_rel_error": float(gc.max()) if gc.size else None,
            "params_sha256": hashlib.sha256(flat[model["name"]].tobytes()).hexdigest(),
            "hessian": an,
            "levenberg_marquardt": _lm_record(lm[model["name"]], model, data, apply),
        }
        if model["family"] == "basis":
            p = tr["params"]
            results[model["name"]]["features"] = {"A": p.A, "b": p.b, "theta": p.theta}
    _save_params(ctx, flat)
    with ctx.phase("plots"):
        _plot_fits(ctx, data, results)
        if any(r["family"] == "basis" for r in results.values()):
            _plot_features(ctx, data, results)
        _plot_checks(ctx, results)
        if any(r["data"] == "multi" for r in results.values()):
            _plot_multi(ctx, data, results)
        _plot_lm(ctx, results)
    return {
        "config": cfg,
        "models": results,
        "data": {"x": data["x"], "y": data["y"], "x_test": data["x_test"]},
        "params_file": "final_params.npz",
    }


def _lm_record(lm: dict, model: dict, data: dict, apply) -> dict:
    if "skipped" in lm:
        return {"skipped": lm["skipped"]}
    if model["data"] == "1d":
        pred = np.asarray(jax.jit(apply)(lm["params"], jnp.asarray(data["x_test"][:, None])))
        test_mse = float(np.mean((pred - data["y_test"]) ** 2))
    else:
        pred = np.asarray(jax.jit(apply)(lm["params"], jnp.asarray(data["X_multi_test"])))
        test_mse = float(np.mean((pred - data["Y_multi_test"]) ** 2))
    return {k: v for k, v in lm.items() if k != "params"} | {"test_mse": test_mse}


def _plot_lm(ctx, results):
    fig, axes = _common.figure(1, 2, width=4.4, height=3.4)
    shown = 0
    for i, (name, r) in enumerate(results.items()):
        lm = r["levenberg_marquardt"]
        if "skipped" in lm:
            continue
        shown += 1
        adam = np.asarray(r["loss_history"])
        k = np.arange(1, adam.size + 1)
        axes[0, 0].loglog(k, adam, color=f"C{i}", lw=1, label=f"{name}: Adam")
        axes[0, 0].loglog(
            np.maximum(lm["steps"], 1),
            lm["loss"],
            "o-",
            ms=3,
            color=f"C{i}",
            lw=1.5,
            label=f"{name}: Levenberg–Marquardt",
        )
        axes[0, 1].loglog(k * lm["adam_seconds_per_step"], adam, color=f"C{i}", lw=1)
        # a run of k steps cannot take less time than a run of fewer: the running maximum removes timing noise
        t = np.maximum.accumulate(np.asarray(lm["seconds"][1:]))
        axes[0, 1].loglog(t, lm["loss"][1:], "o-", ms=3, color=f"C{i}", lw=1.5)
    axes[0, 0].set_xlabel("step (Adam: full-batch update; LM: trial step)")
    axes[0, 1].set_xlabel("wall time, warm (s)")
    for ax in axes[0]:
        ax.set_ylabel("training loss ½ mean ||y − f(x)||²")
    axes[0, 0].set_title("Loss against steps: Adam (line) and LM (dots)", fontsize=10)
    axes[0, 1].set_title("Loss against wall time", fontsize=10)
    if shown:
        axes[0, 0].legend(fontsize=5)
    else:
        axes[0, 0].text(0.5, 0.5, "no model with m >= n residuals", ha="center", transform=axes[0, 0].transAxes)
    ctx.save_figure(fig, "deep_regression_lm.png")


def _one_d(results):
    return {k: r for k, r in results.items() if r["data"] == "1d"}


def _plot_fits(ctx, data, results):
    fig, axes = _common.figure(1, 3, width=3.8, height=3.2)
    ax = axes[0, 0]
    ax.plot(data["x"], data["y"], "o", ms=2.5, color="0.5", label="training data")
    ax.plot(data["x_test"], data["y_test"], "k--", lw=1, label="truth")
    for i, (name, r) in enumerate(_one_d(results).items()):
        ax.plot(data["x_test"], r["test_prediction"], color=f"C{i}", lw=1.2, label=name)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("Fitted functions", fontsize=10)
    ax.legend(fontsize=6)
    ax = axes[0, 1]
    for i, (name, r) in enumerate(results.items()):
        h = np.asarray(r["loss_history"])
        ax.loglog(np.arange(1, h.size + 1), h, color=f"C{i}", lw=1, label=name)
    ax.set_xlabel("Adam step")
    ax.set_ylabel("training loss ½ mean ||y − f(x)||²")
    ax.set_title("Loss curves", fontsize=10)
    ax.legend(fontsize=6)
    ax = axes[0, 2]
    names = list(results)
    ax.bar(range(len(names)), [results[k]["test_mse"] for k in names], color=[f"C{i}" for i in range(len(names))])
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)), names, rotation=30, fontsize=6, ha="right")
    ax.set_ylabel("held-out MSE vs noise-free truth")
    ax.set_title("Held-out error by model", fontsize=10)
    ctx.save_figure(fig, "deep_regression_fits.png")


def _plot_features(ctx, data, results):
    basis = {k: r for k, r in results.items() if r["family"] == "basis"}
    name = max(basis, key=lambda k: basis[k]["width"])
    f = basis[name]["features"]
    A, b, theta = (np.asarray(f[k]) for k in ("A", "b", "theta"))
    x = np.asarray(data["x_test"])
    phi = np.tanh(x[:, None] * A[:, 0][None, :] + b[None, :])  # σ(A_j x + b_j), from the learned A, b
    fig, axes = _common.figure(1, 2, width=4.2, height=3.2)
    ax = axes[0, 0]
    for j in range(phi.shape[1]):
        ax.plot(x, phi[:, j], lw=1)
    ax.set_xlabel("x")
    ax.set_ylabel("σ(A_j x + b_j)")
    ax.set_title(f"Learned basis functions ({name}, tanh)", fontsize=10)
    ax = axes[0, 1]
    for j in range(phi.shape[1]):
        ax.plot(x, theta[j] * phi[:, j], lw=0.8, alpha=0.7)
    ax.plot(x, phi @ theta, "k", lw=2, label="Σ_j θ_j σ(A_j x + b_j)")
    ax.plot(data["x"], data["y"], "o", ms=2, color="0.5", label="data")
    ax.set_xlabel("x")
    ax.set_ylabel("θ_j σ(A_j x + b_j)")
    ax.set_title("Weighted features and their sum", fontsize=10)
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "deep_regression_features.png")


def _plot_checks(ctx, results):
    fig, axes = _common.figure(1, 2, width=4.4, height=3.4)
    ax = axes[0, 0]
    for i, (name, r) in enumerate(results.items()):
        e = np.maximum(np.asarray(r["gradcheck_rel_error"], float), 1e-18)
        ax.semilogy(r["gradcheck_steps"], e, "o-", ms=3, lw=1, color=f"C{i}", label=name)
    ax.axhline(1e-10, color="k", ls="--", lw=1, label="float64 tolerance 1e-10")
    ax.set_xlabel("Adam step")
    ax.set_ylabel("max |hand − jax.grad| / max |jax.grad|")
    ax.set_title("Hand backprop vs jax.grad along training", fontsize=10)
    ax.legend(fontsize=6)
    ax = axes[0, 1]
    for i, (name, r) in enumerate(results.items()):
        h = r["hessian"]
        if h is None:
            continue
        t = h["trace"]
        label = (
            f"{name}: {h['classification']['kind']} ({h['classification']['n_negative']} neg.); "
            f"tr H ≈ {t['hutchinson']:.3g} ± {t['standard_error']:.2g}"
            + (f" (exact {t['exact']:.3g})" if t["exact"] is not None else "")
        )
        rz = np.asarray(h["ritz_values"])
        conv = np.asarray(h["ritz_residuals"]) <= 1e-6 * np.max(np.abs(rz))
        if h["dense_eigenvalues"] is not None:
            d = np.asarray(h["dense_eigenvalues"])
            ax.plot(np.arange(d.size) / max(d.size - 1, 1), d, "-", color=f"C{i}", lw=1, label=label)
            xr = np.searchsorted(-d, -rz) / max(d.size - 1, 1)  # placed at their rank among the dense values
        else:  # too many parameters for dense eigh: the converged Ritz values at both ends only
            P = h["n_params"]
            xr = np.where(np.arange(rz.size) < rz.size // 2, np.arange(rz.size), P - rz.size + np.arange(rz.size))
            xr = xr / max(P - 1, 1)
            ax.plot([], [], "o", mfc="none", color=f"C{i}", label=label)
        ax.plot(xr[conv], rz[conv], "o", ms=3, color=f"C{i}", mfc="none")
    ax.set_yscale("symlog", linthresh=1e-6)
    ax.set_xlabel("eigenvalue rank / P   (○: converged Lanczos Ritz values)")
    ax.set_ylabel("Hessian eigenvalue at the end")
    ax.set_title("Hessian spectrum: dense eigh and Lanczos", fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6)
    else:
        ax.text(0.5, 0.5, "no model analysed in this run", ha="center", transform=ax.transAxes)
    ctx.save_figure(fig, "deep_regression_hessian.png")


def _plot_multi(ctx, data, results):
    name = next(k for k, r in results.items() if r["data"] == "multi")
    pred = np.asarray(results[name]["test_prediction"])
    true = np.asarray(data["Y_multi_test"])
    k = true.shape[1]
    fig, axes = _common.figure(1, k, width=3.4, height=3.2)
    for j in range(k):
        ax = axes[0, j]
        ax.plot(true[:, j], pred[:, j], ".", ms=2, alpha=0.6)
        lo, hi = true[:, j].min(), true[:, j].max()
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="perfect")
        ax.set_xlabel(f"true output {j + 1}")
        ax.set_ylabel(f"predicted output {j + 1}")
        ax.set_title(f"{name}: output {j + 1} (held out)", fontsize=9)
        ax.legend(fontsize=7)
    ctx.save_figure(fig, "deep_regression_multivariate.png")


def main(argv: list[str] | None = None) -> dict:
    return _common.run(NAME, DESCRIPTION, body, argv, add_arguments)


if __name__ == "__main__":
    _common.cli(main)
