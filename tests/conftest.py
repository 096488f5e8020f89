"""Test configuration: float64 on (the library itself never changes it), fast hypothesis, and runtime
shape checking of the public API.

`TYPECHECKED_MODULES` are put under jaxtyping's import hook with beartype before mmljax is imported, so every
call into them during the tests checks its arguments and return value against the jaxtyping annotations
(dtype, rank, and shape names consistent across the arguments of one call). Set `MMLJAX_TYPECHECK=0` to turn
the checks off (e.g. to see a failure without the type checker in the traceback).
"""

import os

import jax
import numpy as np
import pytest
from hypothesis import settings

# One line per module (a package covers its submodules).
TYPECHECKED_MODULES = (
    "mmljax.derivatives",
    "mmljax.layout",
    "mmljax.finite_diff",
    "mmljax.kernels",
    "mmljax.losses",
    "mmljax.chain",
    "mmljax.models",
    "mmljax.checking",
    "mmljax.analysis",
    "mmljax.solvers.gradient_descent",
    "mmljax.solvers.newton",
    "mmljax.solvers.optax_loop",
)

TYPECHECK = os.environ.get("MMLJAX_TYPECHECK", "1").strip().lower() not in ("0", "false", "no", "off", "")

if TYPECHECK:
    import sys

    from jaxtyping import install_import_hook

    _already = sorted(m for m in TYPECHECKED_MODULES if m in sys.modules)
    if _already:  # the hook only sees modules imported after it is installed
        raise RuntimeError(f"conftest: {_already} imported before the jaxtyping import hook was installed")
    install_import_hook(TYPECHECKED_MODULES, "beartype.beartype")

jax.config.update("jax_enable_x64", True)

settings.register_profile("mmljax", max_examples=10, deadline=None, derandomize=True)
settings.load_profile("mmljax")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
