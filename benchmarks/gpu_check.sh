#!/usr/bin/env bash
# GPU check for mmljax, for the offline GPU machines (CUDA JAX 0.11, equinox, optax, jaxtyping,
# matplotlib, rich, pytest and hypothesis already installed; nothing can be downloaded there).
#
#   benchmarks/gpu_check.sh [OUT_DIR]          (or MMLJAX_GPU_OUT=OUT_DIR, or $OUT; default gpu-results)
#
# 1. installs mmljax without dependencies (falls back to PYTHONPATH=. if pip cannot);
# 2. records the device, then runs the test suite (float64 on the GPU; slow tests included);
# 3. runs `mmljax bench --quick` in float32 and float64, writing JSON, markdown, plots and logs.
# Exit status: 0 when the tests and both benchmark runs succeed. Copy the two markdown tables
# into benchmarks/RESULTS.md with the device named.
set -uo pipefail

cd "$(dirname "$0")/.."
OUT_DIR="${1:-${MMLJAX_GPU_OUT:-${OUT:-gpu-results}}}"
mkdir -p "$OUT_DIR"
PY="${PYTHON:-python3}"
status=0

if "$PY" -m pip install --no-deps --no-build-isolation -e . >"$OUT_DIR/pip.log" 2>&1; then
    echo "installed mmljax (editable, no dependencies)"
else
    echo "pip install failed (see $OUT_DIR/pip.log); using PYTHONPATH=."
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi

"$PY" - <<'PYEOF' | tee "$OUT_DIR/device.txt"
import jax, jaxlib
devs = jax.devices()
print(f"jax {jax.__version__}, jaxlib {jaxlib.__version__}, backend {jax.default_backend()}: {devs}")
for d in devs:
    print(" ", d, getattr(d, "device_kind", ""))
if jax.default_backend() == "cpu":
    print("WARNING: no accelerator visible to JAX; the numbers below are CPU numbers")
PYEOF

echo "== tests"
if "$PY" -m pytest -q -p no:cacheprovider 2>&1 | tee "$OUT_DIR/pytest.log"; then
    echo "tests passed"
else
    echo "TESTS FAILED (see $OUT_DIR/pytest.log)"
    status=1
fi

for dtype in float32 float64; do
    echo "== mmljax bench --quick --dtype $dtype"
    if ! "$PY" -m mmljax bench --quick --dtype "$dtype" \
            --json "$OUT_DIR/bench-$dtype.json" --markdown "$OUT_DIR/bench-$dtype.md" \
            --plot "$OUT_DIR/plots" 2>&1 | tee "$OUT_DIR/bench-$dtype.log"; then
        echo "BENCH FAILED for $dtype (see $OUT_DIR/bench-$dtype.log)"
        status=1
    fi
done

echo "results in $OUT_DIR"
exit $status
