"""Run the benchmarks from a checkout without installing: `python benchmarks/run.py [mmljax bench options]`.

Same as `mmljax bench ...`; e.g. `python benchmarks/run.py --quick --markdown benchmarks/RESULTS-cpu.md`.
The harness and the cases live in the package (`mmljax.bench`) so that the installed command works.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmljax.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(["bench", *sys.argv[1:]]))
