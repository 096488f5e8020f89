"""Linear algebra shared by the solvers and the distributed backends.

- `doubledouble`: portable double-double arithmetic (`DD`), exact under `jax.jit` and in numpy.

This layer sits below `mmljax.solvers` and `mmljax.distributed`; it never imports either.
"""

from . import doubledouble as doubledouble
