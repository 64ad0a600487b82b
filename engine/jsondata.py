"""Plain JSON data: numpy and torch values, paths and tuples turned into what `json` writes."""

from __future__ import annotations

import math
import os
from typing import Any


def to_json_value(value: Any) -> Any:
    """Plain JSON data from numpy/torch scalars, arrays, paths and tuples; NaN and ±inf become null."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): to_json_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json_value(item) for item in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist"):  # numpy scalars and arrays, torch tensors (without importing either)
        return to_json_value(value.tolist())
    if hasattr(value, "item"):
        return to_json_value(value.item())
    return str(value)
