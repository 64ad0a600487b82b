"""Where Grease Pencil strokes sit on the Sketch canvas: world ↔ layer-local ↔ drawing plane ↔ canvas pixels.

Conventions (spaces, the drawing plane, depth, radius ↔ half width): see engine-side
design.md §3 and the package docstring (grease_pencil/__init__.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

MAPPING_KEY = "blender_mapping"
MAPPING_VERSION = 1


# ----------------------------------------------------------------------------- matrices
def _as_matrix(matrix: Any) -> np.ndarray:
    m = np.array(matrix, dtype=np.float64)
    if m.shape != (4, 4):
        raise ValueError(f"matrix_world must be 4×4, not {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("matrix_world contains NaN or infinite values")
    lin = m[:3, :3]
    if abs(np.linalg.det(lin)) <= 1e-12 * max(np.abs(lin).max(), 1e-300) ** 3:
        raise ValueError("the object's matrix is singular (a scale of 0 on some axis): cannot map strokes to it")
    return m


def blender_object_scale(matrix_world: Any) -> float:
    """Blender's `mat4_to_scale`: the length of M₃·(1,1,1)/√3, the scale GP applies to radii."""
    m = np.asarray(matrix_world, dtype=np.float64)
    return float(np.linalg.norm(m[:3, :3] @ np.full(3, 1.0 / math.sqrt(3.0))))


def plane_matrix(matrix_world: Any) -> np.ndarray:
    """2×2 upper-triangular R with (u, v) = R @ (x, z): local X–Z → orthonormal world plane coords."""
    m = _as_matrix(matrix_world)
    _, r = np.linalg.qr(m[:3, [0, 2]])
    signs = np.where(np.diag(r) < 0, -1.0, 1.0)
    return signs[:, None] * r


def local_to_world(points_local: Any, matrix_world: Any) -> np.ndarray:
    m = np.asarray(matrix_world, dtype=np.float64)
    p = np.asarray(points_local, dtype=np.float64)
    return p @ m[:3, :3].T + m[:3, 3]


def world_to_local(points_world: Any, matrix_world: Any) -> np.ndarray:
    m = _as_matrix(matrix_world)
    p = np.asarray(points_world, dtype=np.float64)
    flat = (p.reshape(-1, 3) - m[:3, 3]).T
    return np.linalg.solve(m[:3, :3], flat).T.reshape(p.shape)


# ----------------------------------------------------------------------------- mapping
@dataclass
class CanvasMapping:
    """Where the strokes of one Grease Pencil drawing sit on the Sketch canvas, and back.

    matrix_world: stored (layer-local) positions → world, 4×4.
    scale, offset: the similarity from plane coordinates (world units) to canvas pixels.
    radius_scale: world units per GP radius unit (Blender's object scale, see module doc).
    depths: per path, the local Y of each of its control points (for exact write-back).
    """

    matrix_world: np.ndarray
    width: int = 256
    height: int = 256
    scale: float = 1.0
    offset: np.ndarray = field(default_factory=lambda: np.zeros(2))
    radius_scale: float | None = None
    depths: list[np.ndarray] = field(default_factory=list)

    # The plane is fixed by convention; kept in the JSON so a reader can check it.
    PLANE_AXES = ("X", "Z")  # local X → canvas x, local Z → canvas −y
    DEPTH_AXIS = "Y"

    def __post_init__(self) -> None:
        self.matrix_world = _as_matrix(self.matrix_world)
        self.width, self.height = int(self.width), int(self.height)
        self.scale = float(self.scale)
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"canvas scale must be positive, not {self.scale}")
        self.offset = np.asarray(self.offset, dtype=np.float64).reshape(2)
        if self.radius_scale is None:
            self.radius_scale = blender_object_scale(self.matrix_world)
        self.radius_scale = float(self.radius_scale)
        self.depths = [np.asarray(d, dtype=np.float64).reshape(-1) for d in self.depths]

    @property
    def plane(self) -> np.ndarray:
        return plane_matrix(self.matrix_world)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": MAPPING_VERSION,
            "plane_axes": list(self.PLANE_AXES),
            "depth_axis": self.DEPTH_AXIS,
            "matrix_world": self.matrix_world.tolist(),
            "width": self.width,
            "height": self.height,
            "scale": self.scale,
            "offset": self.offset.tolist(),
            "radius_scale": self.radius_scale,
            "depths": [d.tolist() for d in self.depths],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CanvasMapping":
        if not isinstance(data, dict):
            raise ValueError("the Blender canvas mapping is not a JSON object")
        if data.get("version", MAPPING_VERSION) != MAPPING_VERSION:
            raise ValueError(f"canvas mapping version {data.get('version')!r}; this add-on reads {MAPPING_VERSION}")
        if tuple(data.get("plane_axes", cls.PLANE_AXES)) != cls.PLANE_AXES:
            raise ValueError(f"canvas mapping on plane {data.get('plane_axes')}; only local X–Z is supported")
        try:
            return cls(
                matrix_world=data["matrix_world"],
                width=data.get("width", 256),
                height=data.get("height", 256),
                scale=data["scale"],
                offset=data["offset"],
                radius_scale=data.get("radius_scale"),
                depths=data.get("depths", []),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"the Blender canvas mapping is malformed ({type(exc).__name__}: {exc})") from None


def _canvas_size(canvas: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(canvas, (int, np.integer)):
        return int(canvas), int(canvas)
    w, h = canvas
    return int(w), int(h)


def local_to_canvas(points_local: Any, mapping: CanvasMapping, return_depth: bool = False):
    """(..., 3) local points → (..., 2) canvas pixels (and their depth, the local Y)."""
    p = np.asarray(points_local, dtype=np.float64)
    uv = p[..., [0, 2]] @ mapping.plane.T
    out = np.empty(p.shape[:-1] + (2,))
    out[..., 0] = mapping.scale * uv[..., 0] + mapping.offset[0]
    out[..., 1] = mapping.offset[1] - mapping.scale * uv[..., 1]
    return (out, p[..., 1].copy()) if return_depth else out


def canvas_to_local(points_canvas: Any, depth: Any, mapping: CanvasMapping) -> np.ndarray:
    """(..., 2) canvas pixels + depth (broadcast to (...)) → (..., 3) local points."""
    c = np.asarray(points_canvas, dtype=np.float64)
    uv = np.stack([(c[..., 0] - mapping.offset[0]) / mapping.scale, (mapping.offset[1] - c[..., 1]) / mapping.scale], -1)
    xz = np.linalg.solve(mapping.plane, uv.reshape(-1, 2).T).T.reshape(uv.shape)
    out = np.empty(c.shape[:-1] + (3,))
    out[..., 0], out[..., 2] = xz[..., 0], xz[..., 1]
    out[..., 1] = np.broadcast_to(np.asarray(depth, dtype=np.float64), c.shape[:-1])
    return out


def world_to_canvas(points_world: Any, mapping: CanvasMapping, return_depth: bool = False):
    """(N, 3) world points → (N, 2) canvas pixels (and the depth, local Y, with return_depth)."""
    return local_to_canvas(world_to_local(points_world, mapping.matrix_world), mapping, return_depth)


def canvas_to_world(points_canvas: Any, depth: Any, mapping: CanvasMapping) -> np.ndarray:
    """(N, 2) canvas pixels + (N,) depth → (N, 3) world points; the exact inverse of world_to_canvas."""
    return local_to_world(canvas_to_local(points_canvas, depth, mapping), mapping.matrix_world)


def _framing(c0: np.ndarray, width: int, height: int, margin: float) -> tuple[float, np.ndarray]:
    """Scale and offset that fit unit-canvas points (u, −v) into the canvas, aspect kept, centred."""
    if not 0 <= margin < 0.5:
        raise ValueError(f"margin {margin} must be in [0, 0.5): a fraction of the canvas")
    if len(c0) == 0:
        raise ValueError("no points to fit the canvas to")
    lo, hi = c0.min(0), c0.max(0)
    extent = hi - lo
    m = margin * min(width, height)
    avail = np.array([width - 2 * m, height - 2 * m], dtype=np.float64)
    tiny = 1e-12 * max(1.0, float(np.abs(c0).max()))
    ratios = [avail[a] / extent[a] for a in range(2) if extent[a] > tiny]
    scale = float(min(ratios)) if ratios else float(avail.min())  # a dot: 1 unit spans the usable canvas
    return scale, np.array([width / 2, height / 2]) - scale * (lo + hi) / 2


def fit_mapping(
    matrix_world: Any,
    points_local: Any,
    canvas: int | Sequence[int] = 256,
    margin: float = 0.1,
    radius_scale: float | None = None,
) -> CanvasMapping:
    """The mapping that fits the plane bounding box of `points_local` (N, 3) into the canvas.

    The aspect is kept and the box is centred; its long side spans the canvas minus a margin
    of `margin` × the canvas's short side at each end. A drawing with no extent (one dot)
    is centred, with one world unit spanning the usable canvas.
    """
    width, height = _canvas_size(canvas)
    unit = CanvasMapping(matrix_world, width, height, scale=1.0, offset=(0.0, 0.0), radius_scale=radius_scale)
    c0 = local_to_canvas(np.asarray(points_local, dtype=np.float64).reshape(-1, 3), unit)
    scale, offset = _framing(c0, width, height, margin)
    return CanvasMapping(matrix_world, width, height, scale=scale, offset=offset, radius_scale=unit.radius_scale)


