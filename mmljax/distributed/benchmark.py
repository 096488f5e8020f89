"""The bytes each collective step of the sharded solvers communicates (`communication_bytes`).

The strong-scaling measurement that uses it (`mmljax.bench.scaling.scaling_benchmark`) lives in the
benchmark layer, above the solvers. It fits one fixed problem (`n × p` design, one right-hand side) with its rows
split over 1, 2, 4, 8 devices and records, per device count, the compile time, the median time
of a fit and its spread, the agreement with the 1-device answer and the bytes communicated.
On a CPU the devices are forced (`XLA_FLAGS=--xla_force_host_platform_device_count=8`): they
share the machine's cores, so expect no speed-up on a 2-core machine — the numbers are recorded
as measured; the point is that the answer does not change and that communication stays `O(p²)`.

When the calling process has fewer devices than asked for, the measurement runs in a fresh
Python subprocess with forced CPU devices (the device count is fixed when JAX starts).
"""

from __future__ import annotations

__all__ = ["communication_bytes"]


def communication_bytes(
    p: int, n_devices: int, *, k: int = 1, method: str = "qr", itemsize: int = 8, n_params: int | None = None
) -> dict[str, int]:
    """Bytes one device sends per collective step (payloads only; `D = n_devices`).

    - `"normal"`: one `psum` of `ΦᵀΦ` and `Φᵀy`, `(p² + p·k)` numbers;
    - `"qr"`: the TSQR tree, `p²` numbers per level (`log2 D` levels; one all-gather of `D p²`
      when `D` is not a power of two), then per refinement step a `psum` of `p·k` (`Qᵀf`), an
      all-gather of the `2·p·k` double-double partial sums of every device and two `pmax` of `k`,
      and once the all-gather of the `2·p²` double-double Gram partial sums (`standard_errors`);
    - `"gradient"`: one all-reduce of the `n_params` gradient entries.

    **Returns:** a dict with the entries (`factor`, `per_refinement_step`, `standard_errors`,
    `normal`, `gradient`); 0 everywhere for one device.
    """
    from .tsqr import tsqr_levels

    if n_devices <= 1:
        return {"factor": 0, "per_refinement_step": 0, "standard_errors": 0, "normal": 0, "gradient": 0}
    pow2 = n_devices & (n_devices - 1) == 0
    out = {
        "factor": itemsize * (tsqr_levels(n_devices) * p * p if pow2 else n_devices * p * p),
        "per_refinement_step": itemsize * (p * k + 2 * p * k * n_devices + 2 * k),
        "standard_errors": itemsize * 2 * p * p * n_devices,
        "normal": itemsize * (p * p + p * k),
        "gradient": itemsize * (n_params if n_params is not None else p),
    }
    if method == "normal":
        out["factor"] = out["per_refinement_step"] = out["standard_errors"] = 0
    return out
