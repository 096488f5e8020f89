"""Strong scaling of the sharded least-squares fit: `least_squares(Phi, y, mesh=make_mesh(D))` for several `D`.

One fixed problem (`n × p` Chebyshev design, one right-hand side) with its rows split over 1, 2, 4, 8
devices; per device count, the compile time, the median time of a fit and its spread, the agreement
with the 1-device answer and the bytes communicated (`mmljax.distributed.communication_bytes`).
On a CPU the devices are forced (`XLA_FLAGS=--xla_force_host_platform_device_count=8`): they
share the machine's cores, so expect no speed-up on a 2-core machine — the numbers are recorded
as measured; the point is that the answer does not change and that communication stays `O(p²)`.

When the calling process has fewer devices than asked for, the measurement runs in a fresh
Python subprocess with forced CPU devices (the device count is fixed when JAX starts).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..distributed import communication_bytes, make_mesh
from ..linalg.precision import float64_scope
from ..solvers import least_squares

__all__ = ["scaling_benchmark"]


def _time(fn, min_sample_s: float, samples: int) -> tuple[float, list[float]]:
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    number = max(1, int(np.ceil(min_sample_s / max(first, 1e-9))))
    per_call = []
    for _ in range(samples):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        per_call.append((time.perf_counter() - t0) / number)
    return first, per_call


def _measure(
    n: int, p: int, device_counts: Sequence[int], methods: Sequence[str], seed: int, min_sample_s: float, samples: int
) -> list[dict[str, Any]]:
    import jax

    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    Phi = np.stack([np.cos(j * np.arccos(x)) for j in range(p)], axis=1)  # Chebyshev: well conditioned
    y = Phi @ rng.standard_normal(p) + 1e-3 * rng.standard_normal(n)
    rows = []
    for method in methods:
        reference = least_squares(Phi, y, method=method).coefficients
        for D in device_counts:
            mesh = make_mesh(D)

            def fit():
                return least_squares(Phi, y, mesh=mesh, method=method)

            t0 = time.perf_counter()
            result = fit()
            first_call = time.perf_counter() - t0
            _, per_call = _time(fit, min_sample_s, samples)
            median = statistics.median(per_call)
            rel = float(np.max(np.abs(result.coefficients - reference) / np.maximum(np.abs(reference), 1e-300)))
            rows.append(
                {
                    "devices": D,
                    "n": n,
                    "p": p,
                    "method": method,
                    "median_s": median,
                    "min_s": min(per_call),
                    "max_s": max(per_call),
                    "spread": (max(per_call) - min(per_call)) / median if median > 0 else 0.0,
                    "samples_s": per_call,
                    "compile_s": max(first_call - median, 0.0),
                    "max_rel_diff_vs_single_device": rel,
                    "refinement_steps": int(result.refinement_steps),
                    "bytes_communicated": communication_bytes(p, D, method=method),
                    "platform": jax.devices()[0].platform,
                    "jax": jax.__version__,
                    "dtype": "float64",
                }
            )
    return rows


def scaling_benchmark(
    n: int = 40_000,
    p: int = 16,
    device_counts: Sequence[int] = (1, 2, 4, 8),
    *,
    methods: Sequence[str] = ("qr", "normal"),
    seed: int = 0,
    min_sample_s: float = 0.1,
    samples: int = 5,
    timeout_s: float = 1800.0,
) -> list[dict[str, Any]]:
    """Strong scaling of `least_squares(Phi, y, mesh=make_mesh(D))` for each `D` in `device_counts`.

    **Arguments:** `n × p` the (fixed) problem size, a Chebyshev design with noise; `methods`
    "qr" (TSQR + double-double refinement, the default solver) and/or "normal" (normal
    equations with one `psum`); `min_sample_s`, `samples`: each sample repeats the fit until it
    lasts at least `min_sample_s`, median and spread over `samples` samples (GUIDE §6).

    **Returns:** one dict per `(method, D)`: `devices`, `n`, `p`, `method`, `median_s`, `min_s`,
    `max_s`, `spread`, `samples_s`, `compile_s` (first call minus the median), the largest relative
    difference of the coefficients from the single-device solver, `refinement_steps`,
    `bytes_communicated` (see `communication_bytes`), `platform`, `jax`, `dtype`. Times are of
    the whole call (host preparation, transfer to the devices, factorisation, refinement,
    statistics). Runs in a subprocess with forced CPU devices when this process has fewer devices.
    """
    counts = [int(d) for d in device_counts]
    if not counts or min(counts) < 1:
        raise ValueError(f"scaling_benchmark: device_counts must be positive integers; got {device_counts!r}")
    if n < max(counts) * p:
        raise ValueError(
            f"scaling_benchmark: n = {n} rows are too few for {max(counts)} devices of at least p = {p} rows each"
        )
    args = dict(
        n=int(n),
        p=int(p),
        device_counts=counts,
        methods=list(methods),
        seed=int(seed),
        min_sample_s=float(min_sample_s),
        samples=int(samples),
    )
    import jax

    if len(jax.devices()) >= max(counts):
        with float64_scope():
            return _measure(**args)
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        JAX_ENABLE_X64="1",
        XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={max(counts)}".strip(),
    )
    code = (
        "import json, sys; from mmljax.bench.scaling import _measure; "
        "print(json.dumps(_measure(**json.loads(sys.argv[1]))))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(args)], env=env, capture_output=True, text=True, timeout=timeout_s
    )
    if proc.returncode != 0:
        raise RuntimeError(f"scaling_benchmark: the measuring subprocess failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
