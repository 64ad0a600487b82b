"""Reading a sketch from a file: sketch JSON or SVG, by the file's suffix."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import SketchError
from .sketch import DEFAULT_CANVAS, Sketch


def load_sketch(path: str | os.PathLike, size: int | None = None) -> Sketch:
    """Load a sketch from `.json` or `.svg`; an SVG is mapped onto a `size`² canvas (default 256)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return Sketch.load_json(path)
    if suffix in (".svg", ".svgz"):
        from .svg import import_svg

        return import_svg(path, canvas_size=size or DEFAULT_CANVAS)
    raise SketchError(f"{path}: unknown sketch format {suffix!r}; use a .svg or .json file")
