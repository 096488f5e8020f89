"""Run by tests/test_distributed.py in a subprocess with 8 forced CPU devices; prints one JSON line.

Every check computes numbers (relative differences from the single-device result, accuracy
digits, sharding facts); the test file asserts on them, so a failure names the quantity. Shapes
are chosen so that the least-squares fits share compiled kernels (88 padded rows, p = 11).
"""

import json
import os
import sys
import warnings

assert "--xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""), "run me from test_distributed.py"

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import mmljax as mj  # noqa: E402
from mmljax import distributed as md  # noqa: E402
from mmljax.data import load_strd, strd_scores  # noqa: E402
from mmljax.models import basis, linear, mlp  # noqa: E402
from mmljax.solvers import RankDeficiencyWarning, least_squares, linear_regression, minimize, polyfit  # noqa: E402

out: dict = {}


def rel(a, b) -> float:
    """Largest |a - b| / max(|b|, tiny) over all leaves."""
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    worst = 0.0
    for u, v in zip(la, lb):
        u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
        assert u.shape == v.shape, (u.shape, v.shape)
        scale = max(float(np.max(np.abs(v), initial=0.0)), 1e-300)
        worst = max(worst, float(np.max(np.abs(u - v), initial=0.0)) / scale)
    return worst


def compare_fit(name, sharded, single):
    out[name] = {
        "coefficients": rel(sharded.coefficients, single.coefficients),
        "standard_errors": rel(sharded.standard_errors, single.standard_errors),
        "residuals": rel(sharded.residuals, single.residuals),
        "rss": rel(sharded.rss, single.rss),
        "residual_sd": rel(sharded.residual_sd, single.residual_sd),
        "r_squared": rel(sharded.r_squared, single.r_squared),
        "rank": [sharded.rank, single.rank],
        "method": [sharded.method, single.method],
        "condition_number": rel(sharded.condition_number, single.condition_number),
        "cond": float(single.condition_number),
        "dof": rel(sharded.dof, single.dof),
    }


mesh = md.make_mesh(8)
out["devices"] = len(jax.devices())
out["mesh_shape"] = dict(mesh.shape)

# ---- row sharding: the arrays really are split
a = md.shard_rows(np.arange(82.0)[:, None], mesh)
out["shard_rows"] = {
    "spec": str(a.sharding.spec),
    "shape": list(a.shape),
    "n_shards": len(a.addressable_shards),
    "shard_shapes": sorted({tuple(s.data.shape) for s in a.addressable_shards}),
    "devices": len({s.device for s in a.addressable_shards}),
    "padding_zero": bool(np.all(np.asarray(a)[82:] == 0)),
    "data_kept": bool(np.all(np.asarray(a)[:82, 0] == np.arange(82.0))),
}

# ---- Filip on 8 devices: accuracy and agreement with the single-device solver
ds = load_strd("Filip")
single = ds.fit()
sharded = polyfit(ds.x, ds.y, 10, mesh=mesh)
compare_fit("filip", sharded, single)
out["filip"]["lre"] = strd_scores(ds, sharded)
out["filip"]["lre_single"] = strd_scores(ds, single)
out["filip"]["converged"] = bool(sharded.refinement_converged)
out["filip"]["steps"] = [sharded.refinement_steps, single.refinement_steps]

# ---- general least squares and linear regression (same padded shapes: kernels reused)
rng = np.random.default_rng(0)
Phi = rng.standard_normal((80, 11)) * np.logspace(0, 4, 11)
y = Phi @ rng.standard_normal(11) + 0.1 * rng.standard_normal(80)
compare_fit("least_squares", least_squares(Phi, y, mesh=mesh), least_squares(Phi, y))
compare_fit(
    "least_squares_normal", least_squares(Phi, y, method="normal", mesh=mesh), least_squares(Phi, y, method="normal")
)
V = np.vander(np.linspace(0.5, 1.0, 80), 11, increasing=True)  # cond ~1e11: fallback standard errors
compare_fit("ill_conditioned", least_squares(V, y, mesh=mesh), least_squares(V, y))
Phi77, y77 = Phi[:77], y[:77]  # 77 rows + 11 ridge rows = 88
compare_fit("ridge", least_squares(Phi77, y77, ridge=0.5, mesh=mesh), least_squares(Phi77, y77, ridge=0.5))
X = rng.standard_normal((60, 10)) + 100.0
yX = X @ rng.standard_normal(10) + 3.0 + 0.01 * rng.standard_normal(60)
compare_fit("linear_regression", linear_regression(X, yX, mesh=mesh), linear_regression(X, yX))
deficient = np.concatenate([Phi[:, :10], Phi[:, :1]], axis=1)  # a repeated column
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    def_sharded = least_squares(deficient, y, mesh=mesh)
    def_single = least_squares(deficient, y)
compare_fit("rank_deficient", def_sharded, def_single)
out["rank_deficient"]["warned"] = sum(issubclass(w.category, RankDeficiencyWarning) for w in caught)

# ---- TSQR: power-of-two tree (8), flat all-gather level (3), normal equations
A = rng.standard_normal((50, 6))
for D in (3, 8):
    q, r = md.tsqr(A, md.make_mesh(D))
    qh, rh = np.asarray(q), np.asarray(r)
    out[f"tsqr_{D}"] = {
        "q_spec": str(q.sharding.spec),
        "r_spec": str(r.sharding.spec),
        "q_shards": len(q.addressable_shards),
        "residual": float(np.linalg.norm(qh[:50] @ rh - A) / np.linalg.norm(A)),
        "orthogonality": float(np.max(np.abs(qh.T @ qh - np.eye(6)))),
        "upper": float(np.max(np.abs(np.tril(rh, -1)))),
        "r_vs_single": rel(np.abs(rh), np.abs(np.linalg.qr(A)[1])),
    }
gram, rhs = md.normal_equations(A, A[:, 0] + 1.0, mesh)
out["normal_equations"] = {
    "gram": rel(gram, A.T @ A),
    "rhs": rel(rhs, A.T @ (A[:, 0] + 1.0)),
    "spec": str(gram.sharding.spec),
}

# ---- data-parallel loss, gradient, HVP for every model family (82 rows: padding exercised)
n = 82
x1 = rng.uniform(-1, 1, n)
x3 = rng.standard_normal((n, 3))
keys = jax.random.split(jax.random.PRNGKey(1), 6)
families = {
    "linear": (linear.apply, linear.hand_gradient, linear.init(keys[1], 3, 2), x3, rng.standard_normal((n, 2))),
    "basis_poly": (
        basis.apply,
        basis.hand_gradient,
        basis.init(keys[2], basis.polynomial(4, "increasing")),
        x1,
        np.sin(3 * x1),
    ),
    "basis_learned": (
        basis.apply,
        basis.hand_gradient,
        basis.init(keys[3], basis.learned(3, 5)),
        x3,
        rng.standard_normal(n),
    ),
    "mlp": (mlp.apply, mlp.hand_gradient, mlp.init(keys[4], [3, 6, 4, 1]), x3, rng.standard_normal(n)),
}


def derivatives(L, hand):
    """loss, gradient, HVP (autodiff) and the hand gradient, in one compiled program."""

    def run(params, v):
        value, grad = jax.value_and_grad(L)(params)
        return value, grad, mj.hvp(L, params, v), hand(params)

    return jax.jit(run)


for name, (apply, hand, params, xx, yy) in families.items():
    data = md.shard_data(xx, yy, mesh)
    v = jax.tree_util.tree_map(lambda t: jnp.ones_like(t) * 0.3, params)
    got = derivatives(md.sharded_loss(apply, data), md.sharded_hand_gradient(hand, apply, data))(params, v)
    want = derivatives(
        lambda p, apply=apply, xx=xx, yy=yy: mj.losses.half_sse(apply(p, xx), yy),
        lambda p, hand=hand, xx=xx, yy=yy: hand(p, xx, yy),
    )(params, v)
    out[f"dp_{name}"] = {
        **{what: rel(g, w) for what, g, w in zip(("loss", "grad", "hvp", "hand_grad"), got, want)},
        "x_spec": str(data.x.sharding.spec),
        "x_shards": len(data.x.addressable_shards),
        "grad_spec": str(jax.tree_util.tree_leaves(got[1])[0].sharding.spec),
    }
_, _, params, x3, yy = families["mlp"]
data = md.shard_data(x3, yy, mesh)
naive = md.ShardedData(data.x, data.y, jnp.ones_like(data.mask), data.n, mesh)  # padding rows not masked out
out["unmasked_padding_loss"] = rel(
    md.sharded_loss(mlp.apply, naive)(params), mj.losses.half_sse(mlp.apply(params, x3), yy)
)
wrong = md.sharded_hand_gradient(
    lambda p, x, y: jax.tree_util.tree_map(lambda g: 2 * g, mlp.hand_gradient(p, x, y)), mlp.apply, data
)(params)
out["wrong_hand_gradient"] = rel(wrong, mlp.hand_gradient(params, x3, yy))
hlo = jax.jit(jax.grad(md.sharded_loss(mlp.apply, data))).lower(params).compile().as_text()
out["grad_all_reduce"] = "all-reduce" in hlo
L_mse = md.sharded_loss(mlp.apply, data, mj.losses.mse, penalty=lambda p: 0.1 * mj.losses.l2_penalty(p))
out["dp_mse_penalty"] = rel(
    L_mse(params), mj.losses.mse(mlp.apply(params, x3), yy) + 0.1 * mj.losses.l2_penalty(params)
)

# ---- data-parallel training: minimize with a mesh equals the single-device run
xt = rng.standard_normal((96, 3))
yt = np.tanh(xt @ np.array([1.0, -2.0, 0.5]))
p0 = mlp.init(keys[5], [3, 8, 1])
loss = lambda p, b: mj.losses.mse(mlp.apply(p, b[0]), b[1])  # noqa: E731
ref = minimize(loss, p0, optax.adam(1e-2), steps=40, batch_size=32, data=(xt, yt), seed=3)
got = minimize(loss, p0, optax.adam(1e-2), steps=40, batch_size=32, data=(xt, yt), seed=3, mesh=mesh)
out["train"] = {
    "params": rel(got.params, ref.params),
    "history": rel(got.history, ref.history),
    "loss": rel(got.loss, ref.loss),
    "decreased": bool(ref.history[-1] < ref.history[0]),
    "params_spec": str(jax.tree_util.tree_leaves(got.params)[0].sharding.spec),
    "params_devices": len(jax.tree_util.tree_leaves(got.params)[0].sharding.device_set),
}
train_data = tuple(md.shard_rows(a, mesh) for a in (xt[:32], yt[:32]))
hlo = jax.jit(jax.grad(md.shard_batches(loss, mesh))).lower(p0, train_data).compile().as_text()
out["train"]["grad_all_reduce"] = "all-reduce" in hlo
with warnings.catch_warnings(record=True) as caught:  # 82 rows cannot be split in 8 equal blocks
    warnings.simplefilter("always")
    placed = md.training._place_data((xt[:82], yt[:82]), mesh, "minimize")
out["train_uneven"] = {
    "spec": str(placed[0].sharding.spec),
    "devices": len(placed[0].sharding.device_set),
    "warned": any("do not split evenly" in str(w.message) for w in caught),
}

print(json.dumps(out))
sys.stdout.flush()
