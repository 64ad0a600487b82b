"""A model-free demo: the example sketch, rendered still and swaying."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .media import save_frames
from .render import render_sketch_frames
from .sketch import Sketch, load_sketch
from .svg import save_svg


def sway(sketch: Sketch, frames: int = 16, degrees: float = 8.0) -> Sketch:
    """Rotate the sketch back and forth about its bottom centre: a stand-in motion."""
    points = sketch.flat_points()
    xmin, _, xmax, ymax = sketch.bounds()
    pivot = np.array([(xmin + xmax) / 2, ymax])
    angles = np.deg2rad(degrees) * np.sin(np.linspace(0, 2 * np.pi, frames, endpoint=False))
    cos, sin = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    rel = points[None] - pivot
    rotated = np.stack([cos[..., 0] * rel[..., 0] - sin[..., 0] * rel[..., 1], sin[..., 0] * rel[..., 0] + cos[..., 0] * rel[..., 1]], axis=-1)
    return sketch.with_frames(rotated + pivot)


def sway_demo(svg: Path, out: Path) -> list[Path]:
    """Write the sketch as JSON and PNG, and its sway as GIF and MP4, into `out`."""
    sketch = load_sketch(svg)
    animated = sway(sketch)
    return [
        save_svg(sketch, out / "sketch.svg"),
        sketch.save_json(out / "sketch.json"),
        save_frames(render_sketch_frames(sketch), out / "sketch.png"),
        animated.save_json(out / "sway.json"),
        save_frames(render_sketch_frames(animated), out / "sway.gif"),
        save_frames(render_sketch_frames(animated), out / "sway.mp4"),
    ]
