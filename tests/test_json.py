"""The one JSON sanitiser: results become strict JSON whatever numbers they hold."""

from __future__ import annotations

import enum
import json

import jax.numpy as jnp
import numpy as np

from mmljax._json import json_safe


class Colour(enum.IntEnum):
    RED = 2


def test_non_finite_numbers_become_null_and_arrays_lists():
    doc = {
        "a": float("nan"),
        "b": [1.0, float("inf"), -float("inf")],
        "c": np.float32(2.5),
        "d": np.int64(7),
        "e": np.array([[1.0, np.nan], [3.0, 4.0]]),
        "f": jnp.asarray([0.5, jnp.inf]),
        "g": (np.bool_(True), None, "x"),
        "h": Colour.RED,
        "i": jnp.float64(3.0),
        (1, 2): "tuple key",
    }
    out = json_safe(doc)
    assert out == {
        "a": None,
        "b": [1.0, None, None],
        "c": 2.5,
        "d": 7,
        "e": [[1.0, None], [3.0, 4.0]],
        "f": [0.5, None],
        "g": [True, None, "x"],
        "h": 2,
        "i": 3.0,
        "(1, 2)": "tuple key",
    }
    json.dumps(out, allow_nan=False)  # strict JSON
    assert type(out["d"]) is int and type(out["c"]) is float


def test_results_of_the_checker_and_catalogue_serialise_strictly():
    import jax

    import mmljax as mj

    r = mj.check_derivative(jnp.sin, lambda x: jnp.diag(jnp.cos(x)) * jnp.nan, jnp.linspace(0.1, 0.5, 3))
    assert not r.ok
    d = r.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["witnesses"]["jacfwd"]["max_abs"] is None  # the hand value was NaN: an infinite error is null
    assert jax.config.read("jax_enable_x64")
