"""Test configuration: float64 on (the library itself never changes it), fast hypothesis, and runtime
shape checking of the public API.

`TYPECHECKED_MODULES` are put under jaxtyping's import hook with beartype before mmljax is imported, so every
call into them during the tests checks its arguments and return value against the jaxtyping annotations
(dtype, rank, and shape names consistent across the arguments of one call); a function's own argument
validation speaks first (see `_own_validation_first`). Set `MMLJAX_TYPECHECK=0` to turn
the checks off (e.g. to see a failure without the type checker in the traceback).

Compiled programs are kept in a persistent XLA compilation cache for the length of the run (a temporary
directory shared by the xdist workers and by the command-line subprocesses the tests start), so a
program that several modules or processes build is compiled once. `JAX_COMPILATION_CACHE_DIR`, when
set, is used instead (and kept); `MMLJAX_TEST_XLA_CACHE=0` turns the cache off.
"""

import gc
import os
import shutil
import tempfile

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
    "mmljax.data",
)

TYPECHECK = os.environ.get("MMLJAX_TYPECHECK", "1").strip().lower() not in ("0", "false", "no", "off", "")


def _own_validation_first(jaxtyped):
    """`jaxtyping.jaxtyped` for the import hook, with the function's own argument validation speaking first.

    The public functions validate their arguments and raise errors that name the function, the argument, what
    was expected and what was received; the tests hold them to those messages. When the arguments of a call do
    not match the annotations, the function body runs without that check: if it refuses them (`TypeError`/`ValueError`),
    its own error is raised; if it accepts them, the annotation is narrower than what the function accepts,
    and the type-check error is raised. Return values, and dataclass fields, are always checked.
    """
    import functools
    import inspect

    from jaxtyping import TypeCheckError

    def decorate(fn, typechecker):
        checked = jaxtyped(fn, typechecker=typechecker)
        if inspect.isclass(fn) or not callable(fn) or checked is fn:
            return checked

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return checked(*args, **kwargs)
            except TypeCheckError as e:
                if not str(e).startswith("Type-check error whilst checking the parameters of"):
                    raise
                try:
                    fn(*args, **kwargs)
                except TypeCheckError:
                    raise e from None
                except (TypeError, ValueError) as own:
                    raise own from None
                raise

        return wrapper

    def lenient(fn=None, *, typechecker=None):
        if fn is None:
            return functools.partial(lenient, typechecker=typechecker)
        return decorate(fn, typechecker)

    return lenient


if TYPECHECK:
    import sys

    import jaxtyping

    _already = sorted(m for m in TYPECHECKED_MODULES if m in sys.modules)
    if _already:  # the hook only sees modules imported after it is installed
        raise RuntimeError(f"conftest: {_already} imported before the jaxtyping import hook was installed")
    # The hook's generated decorator is `@jaxtyping.jaxtyped(typechecker=...)`, looked up when a hooked module
    # is imported; nothing else in jaxtyping uses the package attribute.
    jaxtyping.jaxtyped = _own_validation_first(jaxtyping.jaxtyped)
    jaxtyping.install_import_hook(TYPECHECKED_MODULES, "beartype.beartype")

jax.config.update("jax_enable_x64", True)

settings.register_profile("mmljax", max_examples=10, deadline=None, derandomize=True)
settings.load_profile("mmljax")


_CACHE_ENV = "JAX_COMPILATION_CACHE_DIR"
_OWNED_ENV = "MMLJAX_TEST_XLA_CACHE_OWNED"  # set by the process that created the directory


def pytest_configure(config):
    if os.environ.get("MMLJAX_TEST_XLA_CACHE", "1").strip().lower() in ("0", "false", "no", "off"):
        return
    if not os.environ.get(_CACHE_ENV):  # the first process of the run (the xdist controller, or the only one)
        os.environ[_CACHE_ENV] = tempfile.mkdtemp(prefix="mmljax-tests-xla-")
        os.environ[_OWNED_ENV] = str(os.getpid())
    # programs that compile in under a quarter of a second are not worth a disk round trip
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.25")
    jax.config.update("jax_compilation_cache_dir", os.environ[_CACHE_ENV])
    jax.config.update(
        "jax_persistent_cache_min_compile_time_secs", float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"])
    )


def pytest_unconfigure(config):
    if os.environ.get(_OWNED_ENV) == str(os.getpid()):
        shutil.rmtree(os.environ[_CACHE_ENV], ignore_errors=True)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module: a worker that runs hundreds of modules would
    otherwise keep every executable it ever compiled (XLA:CPU's JIT code memory grows with them)."""
    yield
    jax.clear_caches()
    gc.collect()
