"""Test configuration: float64 on (the library itself never changes it), and fast hypothesis."""

import jax
import numpy as np
import pytest
from hypothesis import settings

jax.config.update("jax_enable_x64", True)

settings.register_profile("mmljax", max_examples=10, deadline=None, derandomize=True)
settings.load_profile("mmljax")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
