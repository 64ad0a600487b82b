"""SVG export: a Sketch (or one animation frame) as standalone SVG text and files."""

from __future__ import annotations

import operator
import os

import numpy as np
from pathlib import Path as FilePath

from ...errors import SketchError
from ...files import atomic_write_text
from ..sketch import Path, Sketch
from .values import RGB, SVG_NS


def export_svg(sketch: Sketch, frame: int | None = None) -> str:
    """The sketch (or one animation frame of it) as standalone SVG text."""
    sketch.validate()
    drawn = _frame_of(sketch, frame)
    width, height = sketch.width, sketch.height
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="{SVG_NS}" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        *(_path_element(path) for path in drawn.paths),
        "</svg>",
        "",
    ]
    return "\n".join(lines)


def save_svg(sketch: Sketch, path: str | os.PathLike, frame: int | None = None) -> FilePath:
    """Write `export_svg(sketch, frame)` to `path` atomically (complete or absent)."""
    return atomic_write_text(path, export_svg(sketch, frame))


def save_svg_frames(sketch: Sketch, out_dir: str | os.PathLike, stem: str = "frame") -> list[FilePath]:
    """Write one SVG per animation frame, `{stem}_0000.svg`, `{stem}_0001.svg`, …, each atomically."""
    if sketch.num_frames == 0:
        raise SketchError("the sketch has no animation frames: animate it first, or use save_svg for one drawing")
    out_dir = FilePath(out_dir)
    return [save_svg(sketch, out_dir / f"{stem}_{i:04d}.svg", frame=i) for i in range(sketch.num_frames)]



# ============================================================================== export
def _frame_of(sketch: Sketch, frame: int | None) -> Sketch:
    if frame is None:
        return sketch
    if sketch.frames is None:
        raise SketchError("the sketch has no animation frames: export it without a frame number")
    index = operator.index(frame)
    if not 0 <= index < sketch.num_frames:
        raise SketchError(f"frame {index} is out of range: the animation has frames 0 to {sketch.num_frames - 1}")
    return sketch.frame(index)


def _number(value: float) -> str:
    """Shortest text that reads back as the same float."""
    return repr(float(value))


def _path_data(path: Path) -> str:
    points = path.points
    commands = [f"M {_number(points[0, 0])} {_number(points[0, 1])}"]
    for i in range(1, len(points), 3):
        commands.append("C " + " ".join(f"{_number(x)} {_number(y)}" for x, y in points[i : i + 3]))
    if path.closed:
        commands.append("Z")
    return " ".join(commands)


def _svg_color(rgb: RGB) -> str:
    """#rrggbb when the colour is exactly on the 8-bit grid, else rgb() percentages that round-trip."""
    scaled = [channel * 255 for channel in rgb]
    if all(abs(value - round(value)) < 1e-9 for value in scaled):
        return "#" + "".join(f"{round(value):02x}" for value in scaled)
    percentages = (f"{channel * 100:.12f}".rstrip("0").rstrip(".") + "%" for channel in rgb)
    return f"rgb({', '.join(percentages)})"


def _path_element(path: Path) -> str:
    """One <path>. SVG strokes have one width and one cap style: a per-point width is written as
    its mean, and a path with one flat and one round end as round."""
    width = path.half_width if path.half_widths is None else float(np.mean(path.half_widths))
    cap = "butt" if path.start_cap == path.end_cap == "flat" else "round"
    return (
        f'  <path d="{_path_data(path)}" fill="none" stroke="{_svg_color(path.color)}" '
        f'stroke-width="{_number(2 * width)}" stroke-opacity="{_number(path.opacity)}" '
        f'stroke-linecap="{cap}" stroke-linejoin="round"/>'
    )
