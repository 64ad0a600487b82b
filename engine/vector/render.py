"""Colour rendering built on coverage: strokes in their colours over a background.

Paths that share a colour and an opacity are one layer: their coverages are unioned by the
rasterizer (a crossing of two 50%-grey strokes is not darker), and layers are composited
"over" each other in the order their first path appears in the sketch. All sketches drawn
with one pen are therefore a single `rasterize` call. Pictures for people to look at are drawn
by draw.py to the same picture, without torch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from .draw import WHITE
from .raster import rasterize
from .sketch import Sketch



@dataclass(frozen=True)
class StrokeLayer:
    """The segments of all paths that share one colour and opacity."""

    segments: torch.Tensor  # (M_layer,) indices into the sketch's segment list
    color: torch.Tensor  # (3,)
    opacity: float


class SketchRenderer:
    """Renders per-frame control points of one sketch's topology to coverage or RGB.

    Canvas pixels map to render pixels by `scale` and `offset` (x' = scale·x + offset), onto an
    image of `size` (height, width): by default the canvas scaled, so a 256² sketch with scale 2
    renders at 512², widths doubled. `for_frames` fits the canvas into another frame size.
    """

    def __init__(
        self,
        sketch: Sketch,
        *,
        scale: float = 1.0,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        size: tuple[int, int] | None = None,
        offset: tuple[float, float] = (0.0, 0.0),
    ):
        sketch.validate()
        self.sketch = sketch
        self.scale = float(scale)
        self.height, self.width = size if size is not None else (max(1, round(sketch.height * self.scale)), max(1, round(sketch.width * self.scale)))
        self.offset = (float(offset[0]), float(offset[1]))
        self.device = torch.device(device)
        self.dtype = dtype
        self.segment_index = torch.as_tensor(sketch.segment_index(), device=self.device)
        widths = sketch.segment_control_widths() if sketch.has_point_widths else sketch.segment_half_widths()  # (M, 4) or (M,)
        self.half_widths = torch.as_tensor(widths * self.scale, dtype=dtype, device=self.device)
        flat_start, flat_end = sketch.segment_caps()
        self.flat_start = torch.as_tensor(flat_start, device=self.device) if flat_start.any() else None
        self.flat_end = torch.as_tensor(flat_end, device=self.device) if flat_end.any() else None
        self.layers = _stroke_layers(sketch, self.device, dtype)

    @classmethod
    def for_frames(cls, sketch: Sketch, frame_size: tuple[int, int], **kwargs) -> "SketchRenderer":
        """Render onto frames of `frame_size` (height, width): the canvas fitted inside, centred, aspect kept."""
        height, width = frame_size
        scale = min(height / sketch.height, width / sketch.width)
        offset = ((width - scale * sketch.width) / 2, (height - scale * sketch.height) / 2)
        return cls(sketch, scale=scale, size=(height, width), offset=offset, **kwargs)

    def to_render_space(self, canvas_points: torch.Tensor) -> torch.Tensor:
        """Canvas-pixel control points `(..., P, 2)` → render pixels."""
        offset = torch.tensor(self.offset, dtype=canvas_points.dtype, device=canvas_points.device)
        return canvas_points * self.scale + offset if any(self.offset) else canvas_points * self.scale

    def points(self) -> torch.Tensor:
        """The static sketch's control points `(P, 2)` in render pixels."""
        return self.to_render_space(torch.as_tensor(self.sketch.flat_points(), dtype=self.dtype, device=self.device))

    def frame_points(self) -> torch.Tensor:
        """Every animation frame's control points `(F, P, 2)` in render pixels (the static sketch as F = 1)."""
        frames = self.sketch.frames if self.sketch.frames is not None else self.sketch.flat_points()[None]
        return self.to_render_space(torch.as_tensor(frames, dtype=self.dtype, device=self.device))

    def coverage(self, points: torch.Tensor) -> torch.Tensor:
        """`(..., P, 2)` control points → `(..., L, H, W)` coverage of each stroke layer."""
        segments = points[..., self.segment_index, :]  # (..., M, 4, 2)
        return torch.stack(
            [
                rasterize(
                    segments[..., layer.segments, :, :], self.half_widths[layer.segments], self.height, self.width,
                    flat_start=None if self.flat_start is None else self.flat_start[layer.segments],
                    flat_end=None if self.flat_end is None else self.flat_end[layer.segments],
                )  # fmt: skip
                for layer in self.layers
            ],
            dim=-3,
        )

    def render(self, points: torch.Tensor, background: tuple[float, float, float] = WHITE) -> torch.Tensor:
        """`(..., P, 2)` control points → `(..., 3, H, W)` RGB in [0, 1], differentiable."""
        coverage = self.coverage(points)
        image = torch.as_tensor(background, dtype=self.dtype, device=self.device).view(3, 1, 1)
        image = image.expand(*coverage.shape[:-3], 3, self.height, self.width)
        for i, layer in enumerate(self.layers):
            alpha = (layer.opacity * coverage[..., i, :, :]).unsqueeze(-3)
            image = image * (1.0 - alpha) + layer.color.view(3, 1, 1) * alpha
        return image


def _stroke_layers(sketch: Sketch, device: torch.device, dtype: torch.dtype) -> list[StrokeLayer]:
    segment_path = sketch.segment_path()
    return [
        StrokeLayer(
            segments=torch.as_tensor(np.flatnonzero(np.isin(segment_path, path_ids)), device=device),
            color=torch.tensor(color, dtype=dtype, device=device),
            opacity=opacity,
        )
        for color, opacity, path_ids in sketch.style_groups()
    ]


def black_on_white(sketch: Sketch) -> Sketch:
    """The sketch with every stroke black (opacity kept): what the video model is shown."""
    return replace(sketch, paths=[replace(p, color=(0.0, 0.0, 0.0)) for p in sketch.paths], frames=None)


def model_view_renderer(sketch: Sketch, frame_size: tuple[int, int]) -> SketchRenderer:
    """Renders the sketch's topology in black on white onto the video model's frames (stages 1 and 3)."""
    return SketchRenderer.for_frames(black_on_white(sketch), frame_size)
