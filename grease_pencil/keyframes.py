"""An animated `Sketch` (a job's result) → Grease Pencil keyframe plans: flat arrays ready for `foreach_set`."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..engine.vector.sketch import Sketch
from .mapping import MAPPING_KEY, CanvasMapping, canvas_to_local, local_to_canvas
from .strokes import CURVE_TYPES, STROKES_KEY, _interleave_bezier

HANDLE_TYPE_FREE = 0  # GP v3 `handle_type_left/right` code for FREE handles


# ----------------------------------------------------------------------------- write-back plan
@dataclass
class StrokePlan:
    """One Bézier stroke of an output keyframe (views into its FramePlan's arrays)."""

    positions: np.ndarray  # (K, 3) layer-local
    handle_left: np.ndarray  # (K, 3)
    handle_right: np.ndarray  # (K, 3)
    radius: np.ndarray  # (K,)
    opacity: np.ndarray  # (K,)
    vertex_color: np.ndarray  # (K, 4)
    material_index: int
    cyclic: bool
    source_index: int
    curve_type: str = "BEZIER"


@dataclass
class FramePlan:
    """All strokes of one output keyframe as flat arrays ready for `foreach_set`.

    Point arrays are concatenated over strokes (stroke i = points offsets[i]:offsets[i+1]);
    `add_strokes(sizes.tolist())`, `set_types('BEZIER')`, then write each array. The
    per-point attributes are shared between the frames of one plan (do not modify them).
    """

    frame_index: int
    sizes: np.ndarray  # (S,) points per stroke
    positions: np.ndarray  # (P, 3)
    handle_left: np.ndarray  # (P, 3)
    handle_right: np.ndarray  # (P, 3)
    radius: np.ndarray  # (P,)
    opacity: np.ndarray  # (P,)
    vertex_color: np.ndarray  # (P, 4)
    material_index: np.ndarray  # (S,)
    cyclic: np.ndarray  # (S,) bool
    source_index: np.ndarray  # (S,) index of the source stroke in its drawing
    curve_type: str = "BEZIER"

    @property
    def offsets(self) -> np.ndarray:
        return np.r_[0, np.cumsum(self.sizes)].astype(np.int64)

    @property
    def curve_type_codes(self) -> np.ndarray:
        return np.full(len(self.sizes), CURVE_TYPES[self.curve_type], np.int8)

    @property
    def handle_types(self) -> np.ndarray:
        """FREE (0) for every point, for `handle_type_left` and `handle_type_right`."""
        return np.full(len(self.positions), HANDLE_TYPE_FREE, np.int8)

    def stroke(self, i: int) -> StrokePlan:
        a, b = self.offsets[i], self.offsets[i + 1]
        return StrokePlan(
            self.positions[a:b], self.handle_left[a:b], self.handle_right[a:b], self.radius[a:b],
            self.opacity[a:b], self.vertex_color[a:b], int(self.material_index[i]), bool(self.cyclic[i]),
            int(self.source_index[i]), self.curve_type,
        )

    @property
    def strokes(self) -> list[StrokePlan]:
        return [self.stroke(i) for i in range(len(self.sizes))]


def _resample(values: np.ndarray, src_off: np.ndarray, src_len: np.ndarray, stroke_of_knot: np.ndarray, pos: np.ndarray):
    """Linear interpolation of concatenated per-point values at fractional in-stroke positions."""
    pos = np.clip(pos, 0.0, src_len[stroke_of_knot] - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, src_len[stroke_of_knot] - 1)
    f = pos - i0
    g0, g1 = src_off[stroke_of_knot] + i0, src_off[stroke_of_knot] + i1
    if values.ndim == 2:
        f = f[:, None]
    return values[g0] * (1 - f) + values[g1] * f


def plan_keyframes(sketch: Sketch, mapping: CanvasMapping | None = None) -> list[FramePlan]:
    """A `Sketch` (with `frames`, or its static points as one frame) → one FramePlan per frame.

    `mapping` defaults to `metadata["blender_mapping"]`; the per-stroke source attributes
    come from `metadata["blender_strokes"]` (both written by `strokes.strokes_to_sketch`).
    """
    meta = sketch.metadata or {}
    if mapping is None:
        if MAPPING_KEY not in meta:
            raise ValueError("the sketch has no Blender canvas mapping: it was not imported from Grease Pencil")
        mapping = CanvasMapping.from_dict(meta[MAPPING_KEY])
    smeta = meta.get(STROKES_KEY)
    paths = sketch.paths
    if smeta is None or len(smeta) != len(paths):
        raise ValueError("the sketch's Blender stroke data do not match its paths: re-import the layer")
    if len(mapping.depths) != len(paths):
        raise ValueError(f"the canvas mapping has depths for {len(mapping.depths)} paths, the sketch has {len(paths)}")

    points = [p.points for p in paths]
    counts = np.array([len(p) for p in points], dtype=np.int64)
    if ((counts < 4) | ((counts - 1) % 3 != 0)).any():
        raise ValueError("every path needs 3k+1 control points (k ≥ 1)")
    for i, (d, c) in enumerate(zip(mapping.depths, counts)):
        if len(d) != c:
            raise ValueError(f"path {i} has {c} control points but the mapping has {len(d)} depths")
    offsets = np.r_[0, np.cumsum(counts)]
    total = int(offsets[-1])
    frames = np.concatenate(points)[None] if sketch.frames is None else np.asarray(sketch.frames, dtype=np.float64)
    if frames.ndim != 3 or frames.shape[1:] != (total, 2):
        raise ValueError(f"frames have shape {frames.shape}; expected (F, {total}, 2)")

    # Index arrays (over the flat control points) of each knot and its two handles.
    closed = np.array([p.closed for p in paths])
    nseg = (counts - 1) // 3
    nknots = np.where(closed, nseg, nseg + 1)
    stroke_of_knot = np.repeat(np.arange(len(paths)), nknots)
    kstart = np.r_[0, np.cumsum(nknots)][:-1]
    j = np.arange(int(nknots.sum())) - kstart[stroke_of_knot]  # knot index within its stroke
    base = offsets[:-1][stroke_of_knot]
    last = j == nknots[stroke_of_knot] - 1
    first = j == 0
    open_k = ~closed[stroke_of_knot]
    knot_idx = base + 3 * j
    hr_idx = np.where(last & open_k, knot_idx - 1, knot_idx + 1)  # open end: mirror the left handle
    hl_idx = np.where(first, np.where(open_k, knot_idx + 1, base + 3 * nseg[stroke_of_knot] - 1), knot_idx - 1)
    mirror_l = first & open_k
    mirror_r = last & open_k

    depth = np.concatenate(mapping.depths)
    local = canvas_to_local(frames, depth[None, :], mapping)  # (F, T, 3)
    pos = local[:, knot_idx]
    hr = np.where(mirror_r[None, :, None], 2 * pos - local[:, hr_idx], local[:, hr_idx])
    hl = np.where(mirror_l[None, :, None], 2 * pos - local[:, hl_idx], local[:, hl_idx])

    # Per-knot source attributes, resampled at each knot's position in its source stroke.
    src_len = np.array([len(m["radius"]) for m in smeta], dtype=np.int64)
    if (src_len < 1).any():
        raise ValueError("a Blender source stroke has no points")
    src_off = np.r_[0, np.cumsum(src_len)][:-1]
    ksi = [np.asarray(m["knot_source_index"], dtype=np.float64) for m in smeta]
    if any(len(k) != n for k, n in zip(ksi, nknots)):
        raise ValueError("the sketch's Blender stroke data do not match its paths: re-import the layer")
    kpos = np.concatenate(ksi)
    radius_src = np.concatenate([np.asarray(m["radius"], dtype=np.float64) for m in smeta])
    opacity_src = np.concatenate([np.asarray(m["opacity"], dtype=np.float64) for m in smeta])
    color_src = np.concatenate([np.asarray(m["vertex_color"], dtype=np.float64).reshape(-1, 4) for m in smeta])
    width_ratio = np.array([p.half_width / float(m["half_width"]) for p, m in zip(paths, smeta)])
    radius = _resample(radius_src, src_off, src_len, stroke_of_knot, kpos) * width_ratio[stroke_of_knot]
    opacity = _resample(opacity_src, src_off, src_len, stroke_of_knot, kpos)
    vcol = _resample(color_src, src_off, src_len, stroke_of_knot, kpos)
    material = np.array([int(m["material_index"]) for m in smeta], dtype=np.int32)
    source = np.array([int(m.get("source_index", i)) for i, m in enumerate(smeta)], dtype=np.int64)
    sizes = nknots.astype(np.int32)

    return [
        FramePlan(
            frame_index=f,
            sizes=sizes,
            positions=pos[f],
            handle_left=hl[f],
            handle_right=hr[f],
            radius=radius,
            opacity=opacity,
            vertex_color=vcol,
            material_index=material,
            cyclic=closed.copy(),
            source_index=source,
        )
        for f in range(frames.shape[0])
    ]


def plan_to_cubic_points(plan: FramePlan, mapping: CanvasMapping) -> list[np.ndarray]:
    """The inverse of the plan's layout: per stroke, (3k+1, 2) canvas control points."""
    out = []
    for s in plan.strokes:
        local = _interleave_bezier(s.positions, s.handle_left, s.handle_right, s.cyclic)
        out.append(local_to_canvas(local, mapping))
    return out


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.04045, c / 12.92, np.power((c + 0.055) / 1.055, 2.4))


def plan_new_strokes(sketch: Sketch, height_units: float = 2.0) -> tuple[list[FramePlan], CanvasMapping]:
    """A `Sketch` not made from Grease Pencil (an imported SVG) → keyframe plans for a new object.

    The canvas is centred on the object's origin in its local X–Z plane, `height_units`
    Blender units tall; each path becomes a Bézier stroke with its width as radius, its
    colour as vertex colour (alpha 1: the colour is the path's own) and its opacity.
    """
    width, height = sketch.width, sketch.height
    if not height_units > 0:
        raise ValueError(f"height_units must be positive, not {height_units}")
    scale = height / float(height_units)  # px per unit
    depths, metas = [], []
    for i, p in enumerate(sketch.paths):
        nknots = p.num_segments + (0 if p.closed else 1)
        rgb = _srgb_to_linear(np.asarray(p.color, dtype=np.float64)[:3])
        depths.append(np.zeros(len(p.points)))
        metas.append(
            {
                "source_index": i,
                "curve_type": "BEZIER",
                "cyclic": p.closed,
                "material_index": 0,
                "half_width": p.half_width,
                "radius": [p.half_width / scale] * nknots,
                "opacity": [p.opacity] * nknots,
                "vertex_color": [[*rgb.tolist(), 1.0]] * nknots,
                "knot_source_index": list(map(float, range(nknots))),
            }
        )
    mapping = CanvasMapping(np.eye(4), width, height, scale=scale, offset=(width / 2, height / 2), radius_scale=1.0, depths=depths)
    with_meta = replace(sketch, frames=None, metadata={**sketch.metadata, STROKES_KEY: metas})
    return plan_keyframes(with_meta, mapping), mapping
