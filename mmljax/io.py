"""Writing results safely: atomic file writes and strict JSON.

- `atomic_write_bytes(path, data)`, `atomic_write_text(path, text)`, `atomic_write_json(path, obj)`: a
  temp file in the target folder, fsync, then `os.replace` — a crash leaves the old file or the new one,
  never a truncated mix; a replaced file keeps its permission bits.
- `json_safe(obj)`: arrays to lists, NaN/±Inf to None, enums to values — what every `to_dict()` and the
  command line's JSON go through.
"""

from ._io import atomic_write_bytes as atomic_write_bytes
from ._io import atomic_write_json as atomic_write_json
from ._io import atomic_write_text as atomic_write_text
from ._json import json_safe as json_safe

__all__ = ["atomic_write_bytes", "atomic_write_json", "atomic_write_text", "json_safe"]
