"""Benchmarks of hand-derived against automatic derivatives (`mmljax bench`).

- `timing`: honest timing (compile and warm-up separate, blocking, interleaved samples);
- `machine`: device and versions, and the machine's measured matmul peak and bandwidth;
- `case`, `cases`: what is compared — every variant checked against the hand formula first;
- `runner`, `suite`: compile, check, time; `targets`: the performance targets judged on one run;
- `report`: console tables, markdown, JSON, log-log plots.
"""

from .case import Case as Case
from .case import Point as Point
from .case import Settings as Settings
from .case import Variant as Variant
from .cases import CASES as CASES
from .cases import select as select
from .suite import BenchRun as BenchRun
from .suite import run_benchmarks as run_benchmarks
from .timing import TimingConfig as TimingConfig
