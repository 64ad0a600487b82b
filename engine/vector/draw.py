"""Pictures of a sketch for people to look at (PNG, GIF, MP4 previews), drawn without torch.

The differentiable renderer (render.py, on the rasterizer) is what the video model sees; it
needs torch, whose import alone takes 1.5–2 s, a third of the motion preview's budget. So
the images written for viewing are drawn here with OpenCV instead, to the same picture: the
same strokes (per-point widths, round or flat caps, round joins), the same grouping of paths
by colour and opacity into layers whose coverage is a union, and the same "over"
compositing. Coverage is exact polygon filling at `SUPERSAMPLE`² samples per pixel (OpenCV
has no anti-aliased fill of a union), averaged down; tests hold it to the rasterizer's picture.
"""

from __future__ import annotations

import math

import numpy as np

from .sketch import Path, Sketch

WHITE = (1.0, 1.0, 1.0)
SUPERSAMPLE = 4  # samples per pixel along each axis
SHIFT_BITS = 4  # OpenCV's fixed-point sub-pixel precision: 1/16 of a sample
PIECE_PX = 1.5  # flattened pieces are at most this long (in output pixels) along the control polygon
MAX_PIECES = 64  # per cubic segment
BOUNDARY_SAMPLES = 0.5  # OpenCV's fills take in the samples on their edges: half a sample more on every side


def render_sketch_frames(sketch: Sketch, size: int | None = None, background: tuple[float, float, float] = WHITE) -> np.ndarray:
    """All frames of a sketch (one for a static sketch) as `(F, H, W, 3)` uint8.

    `size` is the longer side of the output in pixels (default: the sketch's canvas).
    """
    scale = 1.0 if size is None else size / max(sketch.width, sketch.height)
    height, width = max(1, round(sketch.height * scale)), max(1, round(sketch.width * scale))
    frames = sketch.frames if sketch.frames is not None else sketch.flat_points()[None]
    groups = sketch.style_groups()
    offsets = sketch.point_offsets()
    out = np.empty((len(frames), height, width, 3), np.uint8)
    for index, points in enumerate(frames):
        image = np.empty((height, width, 3), np.float32)
        image[...] = background
        for color, opacity, path_ids in groups:
            coverage = group_coverage([(sketch.paths[i], points[offsets[i] : offsets[i + 1]]) for i in path_ids], scale, height, width)
            alpha = (opacity * coverage)[..., None]
            image = image * (1.0 - alpha) + np.asarray(color, np.float32) * alpha
        out[index] = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    return out


def group_coverage(paths: list[tuple[Path, np.ndarray]], scale: float, height: int, width: int) -> np.ndarray:
    """(H, W) float32 coverage in [0, 1] of the union of these paths (each with its points for this frame)."""
    cv2 = _cv2()
    mask = np.zeros((height * SUPERSAMPLE, width * SUPERSAMPLE), np.uint8)
    for path, points in paths:
        if path.is_invisible:
            continue
        draw_path(mask, path, points * (scale * SUPERSAMPLE), path.control_widths() * (scale * SUPERSAMPLE))
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def draw_path(mask: np.ndarray, path: Path, points: np.ndarray, widths: np.ndarray) -> None:
    """One path into the sample mask: each flattened piece as a tapered quadrilateral, a disc at
    every joint and at round ends. Points and half-widths are in samples (edge coordinates)."""
    cv2 = _cv2()
    line, half = flattened(points, widths, path.num_segments)
    half = np.maximum(half - BOUNDARY_SAMPLES, 0.0)  # OpenCV also fills the samples its edges pass through
    fixed = np.round((line - 0.5) * (1 << SHIFT_BITS)).astype(np.int32)  # sample (i, j) is centred at (j, i) for OpenCV
    direction = np.diff(line, axis=0)
    length = np.linalg.norm(direction, axis=1)
    normal = np.stack([-direction[:, 1], direction[:, 0]], axis=1) / np.maximum(length, 1e-12)[:, None]
    near, far = normal * half[:-1, None], normal * half[1:, None]  # the tapered piece between vertices k and k + 1
    quads = np.stack([line[:-1] + near, line[1:] + far, line[1:] - far, line[:-1] - near], axis=1)
    fixed_quads = np.round((quads - 0.5) * (1 << SHIFT_BITS)).astype(np.int32)
    for quad in fixed_quads[length > 1e-9]:
        cv2.fillConvexPoly(mask, quad, 255, cv2.LINE_8, SHIFT_BITS)
    along = np.concatenate([[0.0], np.cumsum(length)])
    disc = half > 0  # a disc at every joint and round end: round joins and caps
    if not path.closed and path.start_cap == "flat":  # none at a flat end, nor so near it that it would stick out
        disc &= along >= half
    if not path.closed and path.end_cap == "flat":
        disc &= along[-1] - along >= half
    radii = np.round(half * (1 << SHIFT_BITS)).astype(np.int64)
    for (x, y), radius in zip(fixed[disc].tolist(), radii[disc].tolist()):
        cv2.circle(mask, (x, y), radius, 255, -1, cv2.LINE_8, SHIFT_BITS)


def flattened(points: np.ndarray, widths: np.ndarray, num_segments: int) -> tuple[np.ndarray, np.ndarray]:
    """The path's cubics sampled into a polyline (N, 2) with the half-width at each vertex, interpolated
    along each segment by the same Bernstein weights as its points (as the rasterizer does)."""
    lines, halves = [points[:1]], [widths[:1]]
    for j in range(num_segments):
        control, control_widths = points[3 * j : 3 * j + 4], widths[3 * j : 3 * j + 4]
        reach = float(np.linalg.norm(np.diff(control, axis=0), axis=1).sum())
        count = int(min(MAX_PIECES, max(1, math.ceil(reach / (PIECE_PX * SUPERSAMPLE)))))
        t = np.linspace(0.0, 1.0, count + 1)[1:, None]
        u = 1.0 - t
        weights = np.hstack([u**3, 3 * u * u * t, 3 * u * t * t, t**3])
        lines.append(weights @ control)
        halves.append(weights @ control_widths)
    return np.concatenate(lines), np.concatenate(halves)


def _cv2():
    import cv2

    return cv2
