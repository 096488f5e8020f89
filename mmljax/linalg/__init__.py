"""Linear algebra shared by the solvers and the distributed backends.

- `doubledouble`: portable double-double arithmetic (`DD`), exact under `jax.jit` and in numpy;
- `basis`: well-conditioned bases (polynomial, affine, general) and power-of-two equilibration;
- `qr`: the `LinearOps` a tall design is factorised and multiplied with (`SINGLE` device; the
  sharded one is `mmljax.distributed.sharded_ops`), QR/Gram factors, the augmented solve;
- `refine`: Björck's refinement of the augmented system in double-double (a `lax.while_loop`);
- `precision`: `float64_scope`;
- `ordering`: `after`, the data dependency that keeps batched LAPACK calls from running concurrently;
- `branching`: `cond_where`, a branch that a batch runs only when one of its elements needs it.

This layer sits below `mmljax.solvers` and `mmljax.distributed`; it never imports either.
"""

from . import basis as basis
from . import branching as branching
from . import doubledouble as doubledouble
from . import ordering as ordering
from . import precision as precision
from . import qr as qr
from . import refine as refine
