"""The one JSON sanitiser of mmljax: results become strict JSON (no NaN/Infinity tokens).

Every `to_dict()` and every file the command line writes goes through `json_safe`.
"""

from __future__ import annotations

import enum
import math
from typing import Any

import numpy as np


def json_safe(obj: Any) -> Any:
    """`obj` with NaN/±Inf replaced by None, numpy/JAX scalars and arrays turned into Python numbers
    and lists, tuples into lists, enums into their values; dict keys kept (made strings if needed).

    Strict JSON has no NaN or Infinity: `json.dumps(json_safe(x), allow_nan=False)` never fails on
    numbers. Other objects are returned unchanged.
    """
    if isinstance(obj, dict):
        return {
            (k if isinstance(k, (str, int, float, bool)) or k is None else str(k)): json_safe(v) for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, enum.Enum):
        return json_safe(obj.value)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if hasattr(obj, "__array__") and hasattr(obj, "dtype") and hasattr(obj, "shape"):
        arr = np.asarray(obj)
        return json_safe(arr.item() if arr.ndim == 0 else arr.tolist())
    return obj
