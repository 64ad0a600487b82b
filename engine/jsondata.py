"""JSON in and out: numpy and torch values, paths and tuples made plain for writing; files read with limits on size and depth, fields type-checked."""

from __future__ import annotations

import math
import os
from typing import Any, Callable


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


# ------------------------------------------------------------------------ reading, with limits
MAX_JSON_BYTES = 512 * 2**20  # a result of 1024 frames × thousands of points stays well below
MAX_JSON_DEPTH = 64  # our files nest a few levels; anything deeper is not ours


class JSONInputError(ValueError):
    """A JSON input is too large, too deep, not JSON, or has a field of the wrong type (one line)."""


def read_json_file(
    path: str | os.PathLike, what: str, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH, object_pairs_hook: Callable | None = None,
) -> Any:  # fmt: skip
    """Parse a JSON file with limits on its size and nesting; each problem is one line naming `what`."""
    return parse_json(read_text_file(path, what, max_bytes), what, max_depth, object_pairs_hook)


def read_text_file(path: str | os.PathLike, what: str, max_bytes: int) -> str:
    """A UTF-8 text file of at most `max_bytes` (an OSError when it cannot be read)."""
    size = os.path.getsize(path)
    if size > max_bytes:
        raise JSONInputError(f"{what} is {size / 2**20:.0f} MB, more than the {max_bytes / 2**20:.0f} MB it may be")
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8")
    except UnicodeDecodeError:
        raise JSONInputError(f"{what} is not UTF-8 text") from None


def parse_json(text: str, what: str, max_depth: int = MAX_JSON_DEPTH, object_pairs_hook: Callable | None = None) -> Any:
    """`json.loads` that turns too deep a nesting (Python's own recursion limit included) into one line."""
    import json

    try:
        data = json.loads(text, object_pairs_hook=object_pairs_hook)
    except RecursionError:
        raise JSONInputError(f"{what} is nested too deeply to be a Sketch Animator file") from None
    except ValueError as exc:
        raise JSONInputError(f"{what} is not valid JSON ({exc})") from None
    return check_depth(data, what, max_depth)


def check_depth(data: Any, what: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`data`, if lists and objects nest at most `max_depth` deep in it."""
    depth = nesting_depth(data)
    if depth > max_depth:
        raise JSONInputError(f"{what} is nested {depth} levels deep, more than the {max_depth} a Sketch Animator file has")
    return data


def nesting_depth(data: Any) -> int:
    """How deeply lists and objects nest (iteratively: a deep value cannot exhaust the stack)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


_KIND_CHECKS: dict[str, Callable[[Any], bool]] = {  # built once: `expect` runs for every coordinate of a sketch
    "bool": lambda v: isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "list": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}
_KIND_NAMES = {"bool": "true or false", "int": "a whole number", "number": "a number", "str": "a string", "list": "a list", "object": "an object", "null": "null"}


def expect(value: Any, kinds: str, field: str) -> Any:
    """`value` if it is of JSON kind `kinds` ("bool", "int", "number", "str", "list", "object",
    "null", joined by "|"), else a one-line error naming the field and what it holds."""
    allowed = kinds.split("|")
    if not any(_KIND_CHECKS[kind](value) for kind in allowed):
        shown = repr(value) if len(repr(value)) <= 40 else type(value).__name__
        raise JSONInputError(f"{field} must be {' or '.join(_KIND_NAMES[kind] for kind in allowed)}, not {shown}")
    return value
