"""Grease Pencil strokes (as bulk-read arrays) → the engine's `Sketch`, with the mapping and source attributes kept for write-back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from ..engine.vector.sketch import Path, Sketch
from .fitting import _cubic_extrema, _fit_polyline
from .mapping import MAPPING_KEY, CanvasMapping, _as_matrix, _canvas_size, _framing, local_to_world, world_to_canvas

STROKES_KEY = "blender_strokes"
CURVE_TYPES = {"CATMULL_ROM": 0, "POLY": 1, "BEZIER": 2, "NURBS": 3}  # GP v3 `curve_type` codes
CURVE_TYPE_NAMES = {v: k for k, v in CURVE_TYPES.items()}
MIN_HALF_WIDTH = 0.1  # px; the engine refuses half-width 0, a radius-0 stroke becomes a hairline
DEFAULT_MARGIN = 0.1  # empty border around the strokes on the canvas, a fraction of its short side
DEFAULT_TOLERANCE_PX = 0.5  # how far a fitted Bézier may stray from a hand-drawn stroke, in canvas pixels


# ----------------------------------------------------------------------------- strokes
def _curve_type_name(curve_type: Any) -> str:
    if isinstance(curve_type, str):
        name = curve_type.upper()
        if name not in CURVE_TYPES:
            raise ValueError(f"unknown curve type {curve_type!r}; use one of {sorted(CURVE_TYPES)}")
        return name
    code = int(curve_type)
    if code not in CURVE_TYPE_NAMES:
        raise ValueError(f"unknown curve type code {code}")
    return CURVE_TYPE_NAMES[code]


@dataclass
class StrokeData:
    """One Grease Pencil stroke as bulk-read arrays (positions in layer-local space).

    Defaults are Blender's values for absent attributes (radius 0.01, opacity 1, vertex
    colour 0 = material colour only, material 0). CATMULL_ROM and NURBS strokes are treated
    as POLY: their points are fitted.
    """

    positions: np.ndarray
    radius: Any = 0.01
    opacity: Any = 1.0
    vertex_color: Any = (0.0, 0.0, 0.0, 0.0)
    curve_type: Any = "POLY"
    handle_left: Any = None
    handle_right: Any = None
    cyclic: bool = False
    material_index: int = 0
    material_color: Any = (0.0, 0.0, 0.0, 1.0)  # linear RGBA of the material's stroke colour
    source_index: int | None = None

    def __post_init__(self) -> None:
        self.positions = np.asarray(self.positions, dtype=np.float64).reshape(-1, 3)
        n = len(self.positions)
        self.radius = np.broadcast_to(np.asarray(self.radius, dtype=np.float64), (n,)).copy()
        self.opacity = np.broadcast_to(np.asarray(self.opacity, dtype=np.float64), (n,)).copy()
        self.vertex_color = np.broadcast_to(np.asarray(self.vertex_color, dtype=np.float64), (n, 4)).copy()
        self.curve_type = _curve_type_name(self.curve_type)
        for name in ("handle_left", "handle_right"):
            h = getattr(self, name)
            setattr(self, name, self.positions.copy() if h is None else np.asarray(h, dtype=np.float64).reshape(n, 3))
        self.cyclic = bool(self.cyclic)
        self.material_index = int(self.material_index)
        self.material_color = np.asarray(self.material_color, dtype=np.float64).reshape(4)


def strokes_from_drawing_arrays(
    offsets: Any,
    position: Any,
    radius: Any = None,
    opacity: Any = None,
    vertex_color: Any = None,
    handle_left: Any = None,
    handle_right: Any = None,
    curve_type: Any = None,
    cyclic: Any = None,
    material_index: Any = None,
    material_colors: Any = None,
) -> list[StrokeData]:
    """Split a drawing's flat attribute arrays (as `foreach_get` reads them) into strokes.

    `offsets` is `drawing.curve_offsets` (C+1 values); point arrays have one row per point,
    curve arrays one per stroke; None means the attribute is absent (Blender's default).
    `material_colors` (optional, (num_materials, 4) linear RGBA) gives each stroke its
    material's stroke colour. Empty strokes are skipped.
    """
    off = np.asarray(offsets, dtype=np.int64).reshape(-1)
    pos = np.asarray(position, dtype=np.float64).reshape(-1, 3)
    c = len(off) - 1
    n = len(pos)
    rad = np.full(n, 0.01) if radius is None else np.asarray(radius, dtype=np.float64).reshape(n)
    opa = np.ones(n) if opacity is None else np.asarray(opacity, dtype=np.float64).reshape(n)
    col = np.zeros((n, 4)) if vertex_color is None else np.asarray(vertex_color, dtype=np.float64).reshape(n, 4)
    hl = None if handle_left is None else np.asarray(handle_left, dtype=np.float64).reshape(n, 3)
    hr = None if handle_right is None else np.asarray(handle_right, dtype=np.float64).reshape(n, 3)
    ctype = np.zeros(c, np.int64) if curve_type is None else np.asarray(curve_type).reshape(c).astype(np.int64)
    cyc = np.zeros(c, bool) if cyclic is None else np.asarray(cyclic).reshape(c).astype(bool)
    mat = np.zeros(c, np.int64) if material_index is None else np.asarray(material_index).reshape(c).astype(np.int64)
    mcol = None if material_colors is None else np.asarray(material_colors, dtype=np.float64).reshape(-1, 4)
    out = []
    for i in range(c):
        a, b = int(off[i]), int(off[i + 1])
        if b <= a:
            continue
        out.append(
            StrokeData(
                positions=pos[a:b],
                radius=rad[a:b],
                opacity=opa[a:b],
                vertex_color=col[a:b],
                curve_type=int(ctype[i]),
                handle_left=None if hl is None else hl[a:b],
                handle_right=None if hr is None else hr[a:b],
                cyclic=bool(cyc[i]),
                material_index=int(mat[i]),
                material_color=(0, 0, 0, 1) if mcol is None or not 0 <= mat[i] < len(mcol) else mcol[mat[i]],
                source_index=i,
            )
        )
    return out


def _linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1 / 2.4) - 0.055)


def _interleave_bezier(p: np.ndarray, hl: np.ndarray, hr: np.ndarray, closed: bool) -> np.ndarray:
    """GP knots and handles (K, D) → cubic control points (3k+1, D)."""
    k = len(p) if closed else len(p) - 1
    out = np.empty((3 * k + 1,) + p.shape[1:])
    out[0::3] = np.concatenate([p, p[:1]]) if closed else p
    out[1::3] = hr[:k]
    out[2::3] = np.roll(hl, -1, axis=0)[:k]
    return out


def strokes_to_sketch(
    strokes: Iterable[StrokeData],
    matrix_world: Any,
    canvas: int | Sequence[int] = 256,
    margin: float = DEFAULT_MARGIN,
    tolerance_px: float = DEFAULT_TOLERANCE_PX,
    *,
    max_segments: int = 256,
    radius_scale: float | None = None,
    mapping: CanvasMapping | None = None,
    corner_angle_deg: float = 60.0,
) -> Sketch:
    """Grease Pencil strokes → a validated `Sketch` with the mapping and source attributes in its metadata.

    BEZIER strokes convert exactly; other strokes are fitted in canvas pixels with
    `tolerance_px`. `radius_scale` defaults to Blender's scale of `matrix_world`; pass the
    object's own (`mat4_to_scale(ob.matrix_world)`) when `matrix_world` includes a layer
    transform. `mapping` reuses an existing framing (canvas size, scale, offset) instead of
    fitting the strokes' bounding box.
    """
    m = _as_matrix(matrix_world)
    strokes = [s if isinstance(s, StrokeData) else StrokeData(**s) for s in strokes]
    items = [(i if s.source_index is None else s.source_index, s) for i, s in enumerate(strokes) if len(s.positions)]
    if not items:
        raise ValueError("the layer has no strokes at this frame: draw or pick a layer with strokes")

    # Project each stroke's control geometry once with a unit framing (scale 1, offset 0).
    unit = CanvasMapping(m, 1, 1, scale=1.0, offset=(0.0, 0.0), radius_scale=radius_scale)
    projected = []
    bound_pts = []
    for _, s in items:
        closed = s.cyclic and len(s.positions) > 1
        if s.curve_type == "BEZIER" and len(s.positions) > 1:
            local = _interleave_bezier(s.positions, s.handle_left, s.handle_right, closed)
            c0, depth = world_to_canvas(local_to_world(local, m), unit, return_depth=True)
            bound_pts.append(_cubic_extrema(c0[3 * np.arange((len(c0) - 1) // 3)[:, None] + np.arange(4)]))
        else:
            c0, depth = world_to_canvas(local_to_world(s.positions, m), unit, return_depth=True)
            bound_pts.append(c0)
        projected.append((c0, depth, closed))

    if mapping is None:
        width, height = _canvas_size(canvas)
        scale, offset = _framing(np.concatenate(bound_pts), width, height, margin)
    else:
        width, height, scale = mapping.width, mapping.height, mapping.scale
        # unit canvas = (u, −v); the reused framing applies its own offset to that
        offset = mapping.offset
    rscale = unit.radius_scale

    paths, metas, depths = [], [], []
    for (src, s), (c0, depth, closed) in zip(items, projected):
        c = scale * c0 + offset
        n = len(s.positions)
        if s.curve_type == "BEZIER":
            if n == 1:
                ctrl, dctrl, knots, closed = np.repeat(c, 4, 0), np.repeat(depth, 4), np.array([0, 0]), False
            else:
                ctrl, dctrl = c, depth
                knots = np.arange(n)
        else:
            ctrl, kidx = _fit_polyline(c, tolerance_px, max_segments, closed, corner_angle_deg)
            closed = closed and len(ctrl) > 4 and kidx[-1] == n
            c_ext = np.vstack([c, c[:1]])
            d_ext = np.r_[depth, depth[:1]]
            chord = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(c_ext, axis=0), axis=1))]
            sa, sb = chord[kidx[:-1]], chord[kidx[1:]]
            dctrl = np.empty(len(ctrl))
            dctrl[0::3] = d_ext[kidx]
            dctrl[1::3] = np.interp(sa + (sb - sa) / 3, chord, d_ext)
            dctrl[2::3] = np.interp(sa + 2 * (sb - sa) / 3, chord, d_ext)
            knots = kidx[:-1] if closed else kidx
        rgb = s.material_color[None, :3] * (1 - s.vertex_color[:, 3:4]) + s.vertex_color[:, :3] * s.vertex_color[:, 3:4]
        half_width = float(np.clip(s.radius.mean() * rscale * scale, MIN_HALF_WIDTH, max(width, height)))
        paths.append(
            Path(
                points=ctrl,
                closed=bool(closed),
                half_width=half_width,
                color=tuple(_linear_to_srgb(rgb.mean(0)).tolist()),
                opacity=float(np.clip(s.opacity.mean() * s.material_color[3], 0.0, 1.0)),
            )
        )
        metas.append(
            {
                "source_index": int(src),
                "curve_type": s.curve_type,
                "cyclic": s.cyclic,
                "material_index": s.material_index,
                "half_width": half_width,
                "radius": s.radius.tolist(),
                "opacity": s.opacity.tolist(),
                "vertex_color": s.vertex_color.tolist(),
                "knot_source_index": np.asarray(knots, dtype=np.float64).tolist(),
            }
        )
        depths.append(dctrl)

    out_mapping = CanvasMapping(m, width, height, scale=scale, offset=offset, radius_scale=rscale, depths=depths)
    metadata = {"source": "grease_pencil", MAPPING_KEY: out_mapping.to_dict(), STROKES_KEY: metas}
    return Sketch(paths=paths, width=width, height=height, metadata=metadata).validate()


