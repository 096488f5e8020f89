"""What the benchmarks ran on, and what that machine can do at best (measured in the same run).

`machine_info` records device, versions, CPU count and load; `measure_limits` times a large
matrix product (numpy and `jnp.dot`, float32 and float64) and a streaming read (sum of an array
much larger than the last-level cache), so that each case can be reported as a fraction of the
machine's compute peak or memory bandwidth rather than in isolation.
"""

from __future__ import annotations

import os
import platform
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .timing import TimingConfig, call_blocking, time_interleaved

__all__ = ["machine_info", "load_avg", "Limits", "measure_limits"]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_avg() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (None where the OS does not say)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine_info() -> dict[str, Any]:
    """Device, platform, versions, CPU count and current load average (1, 5, 15 min)."""
    import jaxlib

    dev = jax.devices()[0]
    return {
        "device": str(dev),
        "platform": dev.platform,
        "device_kind": getattr(dev, "device_kind", dev.platform),
        "device_count": jax.device_count(),
        "cpu_count": _cpu_count(),
        "cpu_model": _cpu_model(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "os": platform.platform(terse=True),
        "x64_enabled": bool(jax.config.jax_enable_x64),
        "load_avg": load_avg(),
    }


class Limits(NamedTuple):
    """Measured machine limits.

    `matmul_gflops` maps `"numpy_float64"`, `"jax_float64"`, ... to GFLOP/s of an `n × n` matrix
    product (`2n³` flops); `bandwidth_gbs` maps `"numpy_read"`, `"jax_read"` to GB/s of summing an
    array of `bandwidth_bytes`.
    """

    matmul_n: int
    matmul_gflops: dict[str, float]
    bandwidth_bytes: int
    bandwidth_gbs: dict[str, float]

    def peak_gflops(self, dtype: str, backend: str, platform: str = "cpu") -> float | None:
        """The compute peak a variant on `backend` ("jax" or "host") is measured against.

        On a CPU the two backends share the hardware, so the best of numpy and `jnp.dot` is the
        machine's peak; on an accelerator JAX runs on the device and numpy on the host.
        """
        jax_v = self.matmul_gflops.get(f"jax_{dtype}")
        np_v = self.matmul_gflops.get(f"numpy_{dtype}")
        if platform == "cpu":
            vals = [v for v in (jax_v, np_v) if v]
            return max(vals) if vals else None
        return jax_v if backend == "jax" else np_v

    def bandwidth(self, backend: str, platform: str = "cpu") -> float | None:
        jax_v, np_v = self.bandwidth_gbs.get("jax_read"), self.bandwidth_gbs.get("numpy_read")
        if platform == "cpu":
            vals = [v for v in (jax_v, np_v) if v]
            return max(vals) if vals else None
        return jax_v if backend == "jax" else np_v

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


def measure_limits(
    config: TimingConfig = TimingConfig(),
    *,
    dtypes: tuple[str, ...] = ("float64", "float32"),
    matmul_n: int = 2000,
    bandwidth_bytes: int = 256 * 2**20,
    seed: int = 0,
) -> Limits:
    """Matrix-product GFLOP/s (numpy and `jnp.dot`) and streaming-read GB/s, timed interleaved.

    **Arguments:** `config` the timing rules; `dtypes` the precisions to measure (float64 only
    when x64 is enabled); `matmul_n` the matrix size (`2n³` flops per product); `bandwidth_bytes`
    the size of the summed array (several times the last-level cache).

    **Returns:** a `Limits`.
    """
    rng = np.random.default_rng(seed)
    fns, flops = {}, {}
    for dt in dtypes:
        if dt == "float64" and not jax.config.jax_enable_x64:
            continue
        a, b = (rng.standard_normal((matmul_n, matmul_n)).astype(dt) for _ in range(2))
        ja, jb = jnp.asarray(a), jnp.asarray(b)
        dot = jax.jit(jnp.dot)
        fns[f"numpy_{dt}"] = lambda a=a, b=b: a @ b
        fns[f"jax_{dt}"] = lambda dot=dot, ja=ja, jb=jb: dot(ja, jb)
        flops[f"numpy_{dt}"] = flops[f"jax_{dt}"] = 2.0 * matmul_n**3
    dt_bw = "float64" if jax.config.jax_enable_x64 else "float32"
    n = bandwidth_bytes // np.dtype(dt_bw).itemsize
    x = rng.standard_normal(n).astype(dt_bw)
    jx = jnp.asarray(x)
    jsum = jax.jit(jnp.sum)
    fns["numpy_read"] = lambda: x.sum()
    fns["jax_read"] = lambda: jsum(jx)
    warm = {}
    for name, fn in fns.items():
        call_blocking(fn)  # compiles the JAX ones; the second call is the warm-up
        t = time.perf_counter()
        call_blocking(fn)
        warm[name] = time.perf_counter() - t
    timings = time_interleaved(fns, config, warm)
    gflops = {k: flops[k] / timings[k].median_s / 1e9 for k in flops}
    bw = {k: x.nbytes / timings[k].median_s / 1e9 for k in ("numpy_read", "jax_read")}
    return Limits(matmul_n=matmul_n, matmul_gflops=gflops, bandwidth_bytes=int(x.nbytes), bandwidth_gbs=bw)
