"""Sharded fits, gradients and training equal their single-device versions.

The 8-device checks run once, in a subprocess started with
`XLA_FLAGS=--xla_force_host_platform_device_count=8 JAX_PLATFORMS=cpu` (the device count is fixed
when JAX starts), which prints every measured quantity; `test_eight_devices` checks them all and
lists every one out of bounds. The other tests run in this process, on its single device: the
same code path with a mesh of one.

Tolerances (float64): results of the refined solver agree with the single-device solver to
1e-12 relative (both are refined to double-double and rounded once); the condition number to
max(1e-8, 1e3·cond·eps) (singular values of two different QR factors agree to about cond·eps); the unrefined
normal equations to 1e-11 (each carries its own cond²·eps rounding); losses, gradients and HVPs
to 1e-12 (only the order of the sums differs).
"""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mmljax as mj
from mmljax import distributed as md
from mmljax.data import load_strd, strd_scores
from mmljax.models import linear
from mmljax.solvers import least_squares, minimize, polyfit

WORKER = Path(__file__).with_name("_distributed_worker.py")
EXACT, COND, NORMAL, DERIV = 1e-12, 1e-8, 1e-11, 1e-12
EPS = float(np.finfo(np.float64).eps)
FIT_FIELDS = ("coefficients", "standard_errors", "residuals", "rss", "residual_sd", "r_squared", "dof")


def _eight_device_results() -> dict:
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=8".strip()
    env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, str(WORKER)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=str(WORKER.parent.parent),
    )
    assert proc.returncode == 0, f"8-device worker failed:\n{proc.stderr[-5000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _check_eight_device_results(r: dict) -> list[str]:
    """Every bound the 8-device run must meet; returns the violations (empty when all hold)."""
    bad: list[str] = []

    def need(ok: bool, what: str, value) -> None:
        if not ok:
            bad.append(f"{what}: {value!r}")

    need(r["devices"] == 8 and r["mesh_shape"] == {"data": 8}, "8 devices in the mesh", (r["devices"], r["mesh_shape"]))
    s = r["shard_rows"]
    need(
        s["spec"] == "P('data',)" and s["n_shards"] == 8 and s["devices"] == 8 and s["shard_shapes"] == [[11, 1]],
        "82 rows split as 8 blocks of 11 over 8 devices",
        s,
    )
    need(s["padding_zero"] and s["data_kept"] and s["shape"] == [88, 1], "zero padding after the data", s)

    f = r["filip"]
    need(
        f["lre"]["coefficients"] >= 12
        and min(f["lre"][k] for k in ("standard_errors", "residual_sd", "r_squared")) >= 10,
        "Filip LRE on 8 devices (coefficients >= 12, statistics >= 10)",
        f["lre"],
    )
    need(
        f["converged"] and f["method"] == ["qr", "qr"],
        "Filip refinement converged with QR",
        (f["converged"], f["method"]),
    )
    for name, fields in (
        ("filip", FIT_FIELDS),
        ("least_squares", FIT_FIELDS),
        ("linear_regression", FIT_FIELDS),
        ("ridge", FIT_FIELDS),
        ("ill_conditioned", FIT_FIELDS),
        ("rank_deficient", ("coefficients", "residuals", "rss", "residual_sd")),
    ):
        for field in fields:
            need(r[name][field] <= EXACT, f"{name}.{field} relative difference <= {EXACT}", r[name][field])
        need(
            r[name]["rank"][0] == r[name]["rank"][1] and r[name]["method"][0] == r[name]["method"][1],
            f"{name}: same rank and method",
            (r[name]["rank"], r[name]["method"]),
        )
        if name != "rank_deficient":  # cond of a singular design is 1/(a rounding error)
            bound = max(COND, 1e3 * EPS * r[name]["cond"])  # singular values of two QRs agree to ~cond·eps
            need(
                r[name]["condition_number"] <= bound,
                f"{name}.condition_number within {bound:.2g}",
                r[name]["condition_number"],
            )
    need(
        r["rank_deficient"]["method"] == ["svd", "svd"] and r["rank_deficient"]["warned"] == 2,
        "rank-deficient design: svd and a RankDeficiencyWarning from both solvers",
        r["rank_deficient"],
    )
    for field in ("coefficients", "rss", "residual_sd", "standard_errors"):
        need(
            r["least_squares_normal"][field] <= NORMAL,
            f"normal equations {field} within {NORMAL}",
            r["least_squares_normal"][field],
        )

    for D in (3, 8):
        t = r[f"tsqr_{D}"]
        need(
            t["q_spec"] == "P('data',)" and t["r_spec"] == "P()" and t["q_shards"] == D,
            f"TSQR on {D}: Q row-sharded, R replicated",
            t,
        )
        need(
            t["residual"] <= 1e-14 and t["orthogonality"] <= 1e-14 and t["upper"] == 0.0 and t["r_vs_single"] <= 1e-13,
            f"TSQR on {D}: A = QR, QᵀQ = I, R upper triangular, |R| as one device",
            t,
        )
    need(
        r["normal_equations"]["gram"] <= EXACT
        and r["normal_equations"]["rhs"] <= EXACT
        and r["normal_equations"]["spec"] == "P()",
        "normal_equations psum",
        r["normal_equations"],
    )

    for family in ("linear", "basis_poly", "basis_learned", "mlp"):
        d = r[f"dp_{family}"]
        for what in ("loss", "grad", "hvp", "hand_grad"):
            need(d[what] <= DERIV, f"{family} data-parallel {what} within {DERIV}", d[what])
        need(
            d["x_spec"] == "P('data',)" and d["x_shards"] == 8 and d["grad_spec"] == "P()",
            f"{family}: data row-sharded, gradient replicated",
            d,
        )
    need(r["grad_all_reduce"], "the gradient program contains an all-reduce (psum)", r["grad_all_reduce"])
    need(r["dp_mse_penalty"] <= DERIV, "mse with a penalty", r["dp_mse_penalty"])
    # the comparison can fail: padding rows left in, or a wrong hand formula, are caught
    need(r["unmasked_padding_loss"] > 1e-3, "unmasked padding changes the loss", r["unmasked_padding_loss"])
    need(r["wrong_hand_gradient"] > 0.5, "a doubled hand gradient is detected", r["wrong_hand_gradient"])

    t = r["train"]
    need(
        t["params"] <= 1e-12 and t["history"] <= 1e-12 and t["loss"] <= 1e-12 and t["decreased"],
        "minimize with a mesh equals the single-device run (same seed)",
        t,
    )
    need(
        t["params_spec"] == "P()" and t["params_devices"] == 8 and t["grad_all_reduce"],
        "training: parameters replicated on 8 devices, gradient all-reduced",
        t,
    )
    need(
        r["train_uneven"] == {"spec": "P()", "devices": 8, "warned": True},
        "82 rows for minimize: data replicated on the 8 devices, with a warning",
        r["train_uneven"],
    )
    return bad


@pytest.mark.slow
def test_eight_devices():
    bad = _check_eight_device_results(_eight_device_results())
    assert not bad, "out of bounds on 8 devices:\n" + "\n".join(bad)


def _fake_results() -> dict:
    fit = {f: 1e-3 for f in FIT_FIELDS} | {
        "rank": [3, 3],
        "method": ["qr", "qr"],
        "condition_number": 0.0,
        "cond": 1.0,
        "lre": {"coefficients": 5, "standard_errors": 5, "residual_sd": 5, "r_squared": 5},
        "converged": False,
        "warned": 0,
    }
    tsqr = {
        "q_spec": "P()",
        "r_spec": "P()",
        "q_shards": 1,
        "residual": 1.0,
        "orthogonality": 1.0,
        "upper": 1.0,
        "r_vs_single": 1.0,
    }
    dp = {"loss": 1.0, "grad": 1.0, "hvp": 1.0, "hand_grad": 1.0, "x_spec": "P()", "x_shards": 1, "grad_spec": "P()"}
    return {
        "shard_rows": {
            "spec": "P()",
            "n_shards": 1,
            "devices": 1,
            "shard_shapes": [],
            "padding_zero": False,
            "data_kept": False,
            "shape": [],
        },
        **{
            k: dict(fit)
            for k in (
                "filip",
                "least_squares",
                "linear_regression",
                "ridge",
                "ill_conditioned",
                "rank_deficient",
                "least_squares_normal",
            )
        },
        "tsqr_3": tsqr,
        "tsqr_8": tsqr,
        "normal_equations": {"gram": 1.0, "rhs": 1.0, "spec": "P()"},
        **{f"dp_{k}": dict(dp) for k in ("linear", "basis_poly", "basis_learned", "mlp")},
        "grad_all_reduce": False,
        "dp_mse_penalty": 1.0,
        "unmasked_padding_loss": 0.0,
        "wrong_hand_gradient": 0.0,
        "train": {
            "params": 1.0,
            "history": 1.0,
            "loss": 1.0,
            "decreased": False,
            "params_spec": "P()",
            "params_devices": 1,
            "grad_all_reduce": False,
        },
        "train_uneven": {"spec": "P('data',)", "devices": 1, "warned": False},
    }


def test_checker_of_the_eight_device_run_can_fail():
    """The bounds reject a run whose numbers are off: every group of checks reports."""
    bad = _check_eight_device_results({"devices": 1, "mesh_shape": {"data": 1}} | _fake_results())
    for phrase in (
        "8 devices",
        "Filip LRE",
        "filip.coefficients",
        "TSQR on 3",
        "normal_equations",
        "mlp data-parallel grad",
        "unmasked padding",
        "doubled hand gradient",
        "single-device run",
        "82 rows",
    ):
        assert any(phrase in line for line in bad), phrase


# ---------------------------------------------------------------------------- two processes on localhost

_MULTIPROCESS_WORKER = """
import json, sys
pid, port = int(sys.argv[1]), int(sys.argv[2])
import jax
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=pid)
import numpy as np
from mmljax import distributed as md
from mmljax.data import load_strd, strd_scores
from mmljax.solvers import polyfit
mesh = md.make_mesh()
ds = load_strd("Filip")
res = polyfit(ds.x, ds.y, 10, mesh=mesh)
print(json.dumps({"process": jax.process_index(), "devices": len(jax.devices()), "local": len(jax.local_devices()),
                  "mesh": dict(mesh.shape), "lre": strd_scores(ds, res),
                  "coefficients": np.asarray(res.coefficients).tolist(), "converged": bool(res.refinement_converged)}))
"""


@pytest.mark.slow
def test_two_processes_fit_filip_over_one_mesh():
    """`jax.distributed.initialize` with 2 processes x 2 CPU devices (gloo collectives on 127.0.0.1):
    Filip over the 4-device mesh keeps 12+ digits, and both processes hold the same answer."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2".strip()
    env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _MULTIPROCESS_WORKER, str(i), str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=str(WORKER.parent.parent),
        )
        for i in range(2)
    ]
    outs = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        assert proc.returncode == 0, f"multi-process worker failed:\n{err[-4000:]}"
        outs.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(o["process"] for o in outs) == [0, 1]
    for o in outs:
        assert o["devices"] == 4 and o["local"] == 2 and o["mesh"] == {"data": 4}, o
        assert o["lre"]["coefficients"] >= 12 and o["lre"]["standard_errors"] >= 10, o["lre"]
        assert o["converged"]
    assert outs[0]["coefficients"] == outs[1]["coefficients"]


# ---------------------------------------------------------------------------- on this process's one device


def test_one_device_mesh_is_the_same_code_path_and_float64_whatever_the_flag():
    """A mesh of one device runs the sharded solver unchanged; x64 off outside is restored afterwards."""
    ds = load_strd("Filip")
    single = ds.fit()
    mesh = md.make_mesh(1)
    jax.config.update("jax_enable_x64", False)
    try:
        res = polyfit(ds.x, ds.y, 10, mesh=mesh)
        assert not jax.config.jax_enable_x64
    finally:
        jax.config.update("jax_enable_x64", True)
    assert strd_scores(ds, res)["coefficients"] >= 12
    for field in ("coefficients", "standard_errors", "residual_sd", "r_squared"):
        a, b = np.asarray(getattr(res, field)), np.asarray(getattr(single, field))
        assert np.max(np.abs(a - b) / np.abs(b)) <= EXACT, field
    assert res.method == "qr" and res.refinement_converged and res.dtype == np.float64


def test_one_device_loss_gradient_and_training():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((30, 2)), rng.standard_normal(30)
    params = linear.init(jax.random.PRNGKey(0), 2)
    mesh = md.make_mesh(1)
    data = md.shard_data(x, y, mesh)
    assert data.x.sharding.spec == jax.sharding.PartitionSpec("data") and data.n == 30
    L = md.sharded_loss(linear.apply, data, "sse")
    ref = lambda p: mj.losses.sse(linear.apply(p, x), y)  # noqa: E731
    g, g_ref = mj.gradient(L)(params), jax.grad(ref)(params)
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(g, g_ref)) <= DERIV * float(np.max(np.abs(g_ref.theta)))
    # full-batch training on the sharded loss: the same trajectory as on the plain loss
    import optax

    got = minimize(L, params, optax.sgd(1e-2), max_steps=5)
    want = minimize(ref, params, optax.sgd(1e-2), max_steps=5)
    assert np.allclose(np.asarray(got.history), np.asarray(want.history), rtol=1e-12, atol=0)


def test_tsqr_and_normal_equations_on_one_device():
    A = np.random.default_rng(2).standard_normal((12, 4))
    q, r = md.tsqr(A, md.make_mesh(1))
    assert np.allclose(np.asarray(q) @ np.asarray(r), A, rtol=0, atol=1e-14)
    gram, rhs = md.normal_equations(A, A[:, :2], md.make_mesh(1))
    assert np.allclose(gram, A.T @ A, rtol=1e-14) and rhs.shape == (4, 2)


def test_communication_volume_formula():
    assert md.tsqr_levels(1) == 0 and md.tsqr_levels(8) == 3 and md.tsqr_levels(6) == 1
    b = md.communication_bytes(10, 8)
    assert b["factor"] == 8 * 3 * 100 and b["normal"] == 8 * (100 + 10)
    assert md.communication_bytes(10, 8, n_params=50)["gradient"] == 400
    assert set(md.communication_bytes(10, 1).values()) == {0}


def test_scaling_benchmark_rows_on_one_device():
    from mmljax.bench.scaling import scaling_benchmark

    rows = scaling_benchmark(n=64, p=4, device_counts=(1,), methods=("normal",), min_sample_s=0.001, samples=5)
    (row,) = rows
    assert row["devices"] == 1 and row["method"] == "normal" and row["median_s"] > 0 and len(row["samples_s"]) == 5
    assert row["max_rel_diff_vs_single_device"] <= NORMAL and row["platform"] == "cpu"


# ---------------------------------------------------------------------------------------------- errors


def test_errors_say_what_was_expected():
    mesh = md.make_mesh(1)
    with pytest.raises(TypeError, match="mesh must be a jax.sharding.Mesh"):
        least_squares(np.eye(3), np.ones(3), mesh="data")
    with pytest.raises(ValueError, match="xla_force_host_platform_device_count=64"):
        md.make_mesh(64)
    with pytest.raises(ValueError, match="x has 3 rows .* y has 2"):
        md.shard_data(np.ones((3, 1)), np.ones(2), mesh)
    data = md.shard_data(np.ones((4, 2)), np.ones(4), mesh)
    with pytest.raises(ValueError, match="loss must be one of"):
        md.sharded_loss(linear.apply, data, "mae")
    with pytest.raises(TypeError, match="ShardedData"):
        md.sharded_loss(linear.apply, (np.ones((4, 2)), np.ones(4)))
    with pytest.raises(ValueError, match="returned shape"):
        md.sharded_loss(lambda p, x: x @ p, data)(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="must be tall"):
        md.tsqr(np.ones((2, 5)), mesh)
    with pytest.raises(ValueError, match="method must be one of"):
        least_squares(np.eye(3), np.ones(3), method="lu", mesh=mesh)
    with pytest.raises(ValueError, match="too few"):
        from mmljax.bench.scaling import scaling_benchmark

        scaling_benchmark(n=10, p=8, device_counts=(1, 2))


def test_fewer_rows_than_columns_falls_back_to_one_device():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = least_squares(np.arange(6.0).reshape(2, 3) + 1, np.ones(2), mesh=md.make_mesh(1))
        ref = least_squares(np.arange(6.0).reshape(2, 3) + 1, np.ones(2))
    assert res.method == ref.method == "svd" and np.allclose(res.coefficients, ref.coefficients, rtol=1e-14)
