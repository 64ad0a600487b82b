"""Instant motion preview: move the sketch like the video's subject, by tracking, without a GPU.

No diffusion model is involved; a preview takes a few seconds on a CPU. It is a quick look at
the motion before the long stage-3 run, and a starting point for it (`--init preview`).

1. Subject motion (`track_subject`): dense optical flow (OpenCV's DIS, or Farnebäck) between
   consecutive sampled frames, forward and backward. A grid of points on the first frame is
   carried along the flow; a point dies when it leaves the frame or when the backward flow
   does not bring it back (occlusion). The camera's motion between two frames is the
   homography that most of the flow agrees with (RANSAC); undoing the chained homographies
   puts every track back into first-frame coordinates. The subject is the largest connected
   region of grid points that still move after that (holes filled, e.g. the centre of a
   rotation); a user-given box replaces the search for where it is.
2. Transfer (`transfer_motion`): the subject's first-frame box is mapped onto the sketch's
   extent (same centre, one uniform scale, so a turn stays a turn). Per frame, a similarity
   (turn, scale, shift) is fitted to the tracked displacements; "partwise" adds one similarity
   per part, the parts found by splitting the tracks where one similarity cannot explain
   them, and blended smoothly between parts; "deformable" adds a regularised thin-plate
   spline fitted to what the similarity leaves over. Every control point is moved by the
   result. `strength` scales the motion's parameters (half strength = half the turn), the
   displacements are smoothed over time, and the subject's translation can be removed.
3. Outputs (`preview_motion`): the same result folder as stage 3 (`outputs.write_result`).

All pixel tolerances below are for 256 px frames and scale with the frame size.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .errors import SketchAnimatorError
from .events import EventLog, Progress
from .outputs import ResultFiles, write_result
from .sketch import Sketch
from .video import ReferenceClip, VideoSpec, load_reference_frames

__all__ = [
    "ExtentMapping",
    "PreviewError",
    "PreviewResult",
    "PreviewSettings",
    "Similarity",
    "SubjectTracks",
    "add_preview_command",
    "preview_motion",
    "track_subject",
    "transfer_motion",
]

RIGIDITIES = ("similarity", "partwise", "deformable")
FLOW_METHODS = ("dis", "farneback")

REFERENCE_SIZE = 256  # px; the tolerances below are for frames of this size
GRID_STEP = 4  # px between tracked points on the first frame
CAMERA_GRID_STEP = 8  # px between flow samples used to fit the camera's homography
CAMERA_RANSAC_PX = 1.0  # a sample agrees with the camera's motion within this distance
FORWARD_BACKWARD_PX = 1.0  # a track dies when forward then backward flow misses by more than this
FORWARD_BACKWARD_RELATIVE = 0.1  # … plus this fraction of its displacement
NO_MOTION_PX = 1.0  # a subject must move at least this far (after removing the camera's motion)
SUBJECT_MOTION_FRACTION = 0.2  # a point belongs to the subject if it moves this much of the subject's motion
MIN_SUBJECT_TRACKS = 8  # fewer moving points than this is noise, not a subject
MIN_FIT_TRACKS = 6  # fewer visible tracks in a frame: its motion is extrapolated
MIN_PART_TRACKS = 8  # a part needs this many tracks
MAX_FIT_TRACKS = 400  # tracks used per frame for the thin-plate spline (evenly thinned out)
PART_TOLERANCE_PX = 0.75  # one similarity that explains a part this well is not split
PART_SPLIT_GAIN = 0.6  # a split must bring the error below this fraction of the part's
PART_BLEND = 0.08  # width of the blend between parts, as a fraction of the subject's size
PART_POSITION_WEIGHT = 0.5  # how much being near each other counts when splitting into parts
THIN_PLATE_SMOOTHING = 1e-3  # regularisation of the deformation (subject size = 1)
ROBUST_ITERATIONS = 3  # reweighting rounds of the robust similarity fit
LOST_FRACTION = 0.5  # warn when fewer than this fraction of the subject's tracks are visible
MIN_SKETCH_SIDE = 0.02  # of the canvas: the extent of a dot or a line is widened to this
POINT_CHUNK = 4096  # control points evaluated at once (bounds memory on huge sketches)


class PreviewError(SketchAnimatorError):
    """The motion preview cannot run with these frames or settings."""


# =============================================================================== settings
@dataclass(frozen=True)
class PreviewSettings:
    """How the preview reads the video and how closely the sketch follows the subject."""

    rigidity: str = "deformable"  # "similarity" (one turn/scale/shift), "partwise" or "deformable"
    strength: float = 1.0  # 0 = still, 1 = the subject's motion, 2 = exaggerated
    temporal_smoothing: float = 0.5  # Gaussian sigma over time, in frames (0 = none)
    follow_translation: bool = True  # False keeps the sketch in place (turns and deformation only)
    subject_box: tuple[float, float, float, float] | None = None  # x0 y0 x1 y1 in `size` px frames
    flow: str = "dis"  # optical flow: "dis" (fast) or "farneback"
    num_frames: int = 16
    size: int = 256  # frames are analysed at size × size
    seed: int = 0  # RANSAC's random samples
    max_parts: int = 4  # most rigid parts "partwise" splits the subject into

    def __post_init__(self) -> None:
        if self.rigidity not in RIGIDITIES:
            raise PreviewError(f"unknown rigidity {self.rigidity!r}; use {', '.join(RIGIDITIES)}")
        if self.flow not in FLOW_METHODS:
            raise PreviewError(f"unknown flow method {self.flow!r}; use {' or '.join(FLOW_METHODS)}")
        check_number("strength", self.strength, 0.0, 10.0)
        check_number("temporal smoothing", self.temporal_smoothing, 0.0, 100.0)
        check_whole("num_frames", self.num_frames, 1, 1024)
        check_whole("size", self.size, 16, 4096)
        check_whole("seed", self.seed, 0, 2**31 - 1)
        check_whole("max_parts", self.max_parts, 1, 16)
        object.__setattr__(self, "follow_translation", bool(self.follow_translation))
        if self.subject_box is not None:
            object.__setattr__(self, "subject_box", checked_box(self.subject_box))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["subject_box"] = None if self.subject_box is None else list(self.subject_box)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PreviewSettings":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PreviewError(f"unknown preview setting {unknown[0]!r}; known settings: {', '.join(sorted(known))}")
        return cls(**data)

    def video_spec(self, path: str | Path, start_s: float | None = None, end_s: float | None = None, fit: str = "crop") -> VideoSpec:
        """The clip to read: `num_frames` frames of `size` px from `path`."""
        return VideoSpec(path=str(path), num_frames=self.num_frames, size=self.size, start_s=start_s, end_s=end_s, fit=fit)

    def matching(self, spec: VideoSpec) -> "PreviewSettings":
        """These settings for the frames `spec` reads (its frame count and size; the box rescaled)."""
        box = self.subject_box
        if box is not None and spec.size != self.size:
            box = tuple(value * spec.size / self.size for value in box)
        return replace(self, num_frames=spec.num_frames, size=spec.size, subject_box=box)


def check_number(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not low <= float(value) <= high:
        raise PreviewError(f"{name} must be a number from {low:g} to {high:g}, not {value!r}")


def check_whole(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise PreviewError(f"{name} must be a whole number from {low} to {high}, not {value!r}")


def checked_box(box: Any) -> tuple[float, float, float, float]:
    try:
        x0, y0, x1, y1 = (float(value) for value in box)
    except (TypeError, ValueError):
        raise PreviewError(f"the subject box must be four numbers x0 y0 x1 y1, not {box!r}") from None
    if not all(math.isfinite(value) for value in (x0, y0, x1, y1)) or x1 <= x0 or y1 <= y0:
        raise PreviewError(f"the subject box {box!r} is empty or not finite; give x0 y0 x1 y1 with x0 < x1 and y0 < y1")
    return (x0, y0, x1, y1)


# ================================================================================ results
@dataclass
class SubjectTracks:
    """Where the subject's points go, in first-frame pixel coordinates (the camera's motion removed)."""

    tracks: np.ndarray  # (F, T, 2) float64
    visible: np.ndarray  # (F, T) bool: the track is still on the subject in this frame
    box: tuple[float, float, float, float]  # the subject's extent on the first frame, x0 y0 x1 y1
    cameras: np.ndarray  # (F, 3, 3): first-frame pixel → frame-t pixel, the camera's motion
    frame_size: tuple[int, int]  # (height, width) of the analysed frames
    diagnostics: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return int(self.tracks.shape[0])

    @property
    def num_tracks(self) -> int:
        return int(self.tracks.shape[1])

    @property
    def pixel_scale(self) -> float:
        """How many pixels of these frames make one pixel of a 256 px frame (for tolerances)."""
        return max(self.frame_size) / REFERENCE_SIZE


@dataclass
class PreviewResult:
    """The previewed animation and what it came from."""

    frames: np.ndarray  # (F, P, 2) control points per frame; frame 0 is the sketch
    sketch: Sketch  # the input sketch with these frames
    clip: ReferenceClip
    tracks: SubjectTracks
    settings: PreviewSettings  # as used (matched to the video's frame count and size)
    warnings: list[str]
    files: ResultFiles | None = None


# ============================================================================ motion model
@dataclass(frozen=True)
class Similarity:
    """x ↦ centre + shift + scale·R(angle)·(x − centre).

    Parametrised about a centre (the tracks' centroid) so that scaling the parameters scales
    the motion naturally: half the strength is half the turn about the same point.
    """

    centre: np.ndarray  # (2,)
    shift: np.ndarray  # (2,)
    angle: float = 0.0  # radians; positive turns x towards y (clockwise on screen, y down)
    log_scale: float = 0.0

    def apply(self, points: np.ndarray) -> np.ndarray:
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        rotation = math.exp(self.log_scale) * np.array([[cos, -sin], [sin, cos]])
        return self.centre + self.shift + (points - self.centre) @ rotation.T

    def scaled(self, strength: float) -> "Similarity":
        return Similarity(self.centre, strength * self.shift, strength * self.angle, strength * self.log_scale)

    def about(self, centre: np.ndarray) -> "Similarity":
        """The same map, parametrised about another centre (its shift is where that centre goes)."""
        return Similarity(centre, self.apply(centre[None])[0] - centre, self.angle, self.log_scale)


def fit_similarity(source: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None) -> Similarity:
    """Weighted least-squares similarity from `source` (N, 2) to `target` (N, 2), in closed form."""
    weights = np.ones(len(source)) if weights is None else weights
    weights = weights / weights.sum()
    source_centre, target_centre = weights @ source, weights @ target
    a, b = source - source_centre, target - target_centre
    dot = np.sum(weights * np.sum(a * b, axis=1))
    cross = np.sum(weights * (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]))
    norm = np.sum(weights * np.sum(a * a, axis=1))
    if norm <= 1e-12:  # all points at one place: only the shift is known
        return Similarity(source_centre, target_centre - source_centre)
    return Similarity(source_centre, target_centre - source_centre, math.atan2(cross, dot), math.log(max(math.hypot(dot, cross) / norm, 1e-6)))


def fit_similarity_robust(source: np.ndarray, target: np.ndarray) -> Similarity:
    """A similarity that a few stray tracks (flow bleeding over the subject's edge) cannot pull."""
    similarity = fit_similarity(source, target)
    for _ in range(ROBUST_ITERATIONS):
        residual = np.linalg.norm(target - similarity.apply(source), axis=1)
        cutoff = 1.5 * np.median(residual) + 1e-3
        similarity = fit_similarity(source, target, 1.0 / (1.0 + (residual / cutoff) ** 2))  # Cauchy weights
    return similarity.about(source.mean(axis=0))  # its shift: how the tracks' centroid moves


@dataclass(frozen=True)
class ExtentMapping:
    """Video pixels → sketch pixels: the subject's box onto the sketch's extent, one uniform scale.

    The centres coincide and the scale is the geometric mean of the two sides' ratios; one
    scale for both axes keeps a turn a turn. A sketch side narrower than `MIN_SKETCH_SIDE` of
    the canvas (a dot, a straight line) counts as that wide.
    """

    source_centre: np.ndarray
    target_centre: np.ndarray
    scale: float

    @classmethod
    def between(cls, box: Sequence[float], sketch: Sketch) -> "ExtentMapping":
        points = sketch.flat_points()
        low, high = points.min(axis=0), points.max(axis=0)
        floor = MIN_SKETCH_SIDE * max(sketch.width, sketch.height)
        sketch_sides = np.maximum(high - low, floor)
        box_sides = np.maximum(np.array([box[2] - box[0], box[3] - box[1]]), 1.0)
        scale = float(np.sqrt(np.prod(sketch_sides / box_sides)))
        return cls(np.array([box[0] + box[2], box[1] + box[3]]) / 2, (low + high) / 2, scale)

    def apply(self, points: np.ndarray) -> np.ndarray:
        return self.target_centre + self.scale * (np.asarray(points) - self.source_centre)

    def invert(self, points: np.ndarray) -> np.ndarray:
        return self.source_centre + (np.asarray(points) - self.target_centre) / self.scale


# ============================================================================= public API
def track_subject(frames: np.ndarray, settings: PreviewSettings = PreviewSettings()) -> SubjectTracks:
    """Find the moving subject in `frames` (F, H, W, 3) uint8 and track its points, camera removed."""
    frames = checked_frames(frames)
    num_frames, height, width = frames.shape[:3]
    pixel_scale = max(height, width) / REFERENCE_SIZE
    user_box = clipped_box(settings.subject_box, width, height)
    cameras = np.repeat(np.eye(3)[None], num_frames, axis=0)
    if num_frames == 1:
        return still_subject(cameras, user_box, (height, width), "the video gives a single frame: there is no motion to preview")

    cv2 = import_cv2()
    cv2.setRNGSeed(settings.seed)
    started = time.perf_counter()
    forward, backward = pairwise_flow(to_grey(frames), settings.flow)
    flow_s = time.perf_counter() - started

    step = max(2, round(GRID_STEP * pixel_scale))
    grid, grid_shape = grid_points(width, height, step)
    raw, visible = chain_tracks(grid, forward, backward, pixel_scale)
    in_box = np.zeros(len(grid), bool) if user_box is None else points_in_box(grid, user_box)
    cameras = camera_motions(forward, backward, raw, visible, in_box, pixel_scale)
    tracks = undo_cameras(raw, cameras)
    motion = track_motion(tracks, visible)

    region = subject_region(motion, grid_shape, in_box if user_box is not None else None, pixel_scale)
    diagnostics = {
        "flow": settings.flow,
        "flow_seconds": flow_s,
        "grid_step_px": step,
        "camera_motion_px": camera_travel(cameras, width, height),
        "subject_motion_px": float(motion.max(initial=0.0)),
        "box_source": "user" if user_box is not None else "detected",
    }
    if region.sum() < MIN_SUBJECT_TRACKS:
        largest = float(motion[in_box].max(initial=0.0) if user_box is not None else motion.max(initial=0.0))
        message = (
            f"no subject motion detected (the largest motion is {largest:.1f} px after removing the camera's): "
            "the preview is still; choose a clip where the subject moves, or mark the subject with a box"
        )
        result = still_subject(cameras, user_box, (height, width), message)
        result.diagnostics.update(diagnostics)
        return result

    box = user_box if user_box is not None else region_box(grid[region], step, width, height)
    chosen = fitting_tracks(region, grid_shape)
    result = SubjectTracks(tracks[:, chosen], visible[:, chosen], box, cameras, (height, width), diagnostics)
    result.diagnostics["num_tracks"] = result.num_tracks
    result.warnings.extend(visibility_warnings(result.visible))
    return result


def transfer_motion(sketch: Sketch, tracks: SubjectTracks, settings: PreviewSettings = PreviewSettings()) -> np.ndarray:
    """Control points per frame (F, P, 2) that move like the tracked subject; frame 0 is the sketch."""
    points = sketch.validate().flat_points()
    num_frames = tracks.num_frames
    if tracks.num_tracks == 0 or settings.strength == 0:
        return np.repeat(points[None], num_frames, axis=0)

    mapping = ExtentMapping.between(tracks.box, sketch)
    source = mapping.apply(tracks.tracks)  # (F, T, 2) in sketch pixels
    subject_size = mapping.scale * math.sqrt((tracks.box[2] - tracks.box[0]) * (tracks.box[3] - tracks.box[1]))
    move = motion_model(points, source, tracks.visible, settings, subject_size, mapping.scale * tracks.pixel_scale)

    frames = np.empty((num_frames, len(points), 2))
    frames[0] = points
    for t in range(1, num_frames):
        visible = tracks.visible[t]
        if visible.sum() < MIN_FIT_TRACKS:
            frames[t] = continue_last_motion(frames, t)
        else:
            frames[t] = move(source[0][visible], source[t][visible], visible)
    frames = smooth_over_time(frames, settings.temporal_smoothing)
    frames[0] = points
    return frames


def preview_motion(
    sketch: Sketch,
    video_spec: VideoSpec,
    settings: PreviewSettings = PreviewSettings(),
    out_dir: str | Path | None = None,
    events: EventLog | None = None,
) -> PreviewResult:
    """Read the clip, track its subject, move the sketch like it, and write the result if asked.

    `video_spec` decides which frames are read (their number and size); `settings` are matched
    to it (`PreviewSettings.matching`). With `out_dir`, the result folder is written with
    `outputs.write_result`, metadata `{"kind": "preview", "preview": settings, …}`.
    """
    sketch.validate()
    settings = settings.matching(video_spec)
    with Progress("preview", total=4 if out_dir is not None else 3, events=events) as progress:
        clip = load_reference_frames(video_spec)
        progress.update(1)
        tracks = track_subject(clip.frames, settings)
        progress.update(2)
        frames = transfer_motion(sketch, tracks, settings)
        progress.update(3)
        warnings = [*clip.warnings, *tracks.warnings]
        for warning in warnings if events is not None else ():
            events.warning(warning)
        animated = sketch.with_frames(frames)
        files = None
        if out_dir is not None:
            files = write_result(out_dir, sketch, frames, clip.frames, metadata=preview_metadata(settings, video_spec, tracks, warnings))
            progress.update(4)
    return PreviewResult(frames, animated, clip, tracks, settings, warnings, files)


def preview_metadata(settings: PreviewSettings, spec: VideoSpec, tracks: SubjectTracks, warnings: list[str]) -> dict[str, Any]:
    """What result.json records about a preview (numbers only, no arrays of tracks)."""
    return {
        "kind": "preview",
        "preview": settings.to_dict(),
        "video": spec.to_dict(),
        "subject_box": list(tracks.box),
        "diagnostics": tracks.diagnostics,
        "warnings": warnings,
    }


# ================================================================================== flow
def import_cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise PreviewError("the motion preview needs OpenCV: pip install opencv-python-headless") from None
    return cv2


def checked_frames(frames: Any) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or 0 in frames.shape:
        raise PreviewError(f"frames must be a uint8 array (F, H, W, 3), not {frames.dtype} {frames.shape}")
    if min(frames.shape[1:3]) < 16:
        raise PreviewError(f"frames of {frames.shape[2]}×{frames.shape[1]} px are too small to track; use at least 16 px")
    return frames


def to_grey(frames: np.ndarray) -> list[np.ndarray]:
    cv2 = import_cv2()
    return [cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY) for frame in frames]


def flow_estimator(method: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A function (grey a, grey b) → (H, W, 2) float32 flow from a to b."""
    cv2 = import_cv2()
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return lambda a, b: dis.calc(a, b, None)
    return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 4, 15, 3, 5, 1.1, 0)


def pairwise_flow(grey: list[np.ndarray], method: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Forward (t → t+1) and backward (t+1 → t) flow of each pair of consecutive frames."""
    estimate = flow_estimator(method)
    forward = [estimate(a, b) for a, b in zip(grey[:-1], grey[1:])]
    backward = [estimate(b, a) for a, b in zip(grey[:-1], grey[1:])]
    return forward, backward


def sample_field(field: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear samples of an (H, W, 2) field at (N, 2) pixel positions (x, y)."""
    cv2 = import_cv2()
    map_x = np.ascontiguousarray(points[None, :, 0], dtype=np.float32)
    map_y = np.ascontiguousarray(points[None, :, 1], dtype=np.float32)
    return cv2.remap(field, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0].astype(np.float64)


def follow_flow(points: np.ndarray, forward: np.ndarray, backward: np.ndarray, pixel_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Where points go, and whether the backward flow agrees (it does not where they get hidden)."""
    moved = points + sample_field(forward, points)
    returned = moved + sample_field(backward, moved)
    error = np.linalg.norm(returned - points, axis=1)
    tolerance = FORWARD_BACKWARD_PX * pixel_scale + FORWARD_BACKWARD_RELATIVE * np.linalg.norm(moved - points, axis=1)
    return moved, error <= tolerance


# ============================================================================== tracking
def grid_points(width: int, height: int, step: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Pixel centres every `step` px, row by row: (N, 2) points and the grid's (rows, cols)."""
    xs = np.arange(step / 2, width, step)
    ys = np.arange(step / 2, height, step)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    return grid, (len(ys), len(xs))


def chain_tracks(grid: np.ndarray, forward: list[np.ndarray], backward: list[np.ndarray], pixel_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Carry the grid through all frames: (F, N, 2) positions in each frame and (F, N) visibility.

    A track that leaves the frame or fails the forward-backward check stays dead (and still).
    """
    height, width = forward[0].shape[:2]
    positions = [grid]
    visible = [np.ones(len(grid), bool)]
    for forward_flow, backward_flow in zip(forward, backward):
        moved, consistent = follow_flow(positions[-1], forward_flow, backward_flow, pixel_scale)
        inside = (moved[:, 0] >= 0) & (moved[:, 0] <= width - 1) & (moved[:, 1] >= 0) & (moved[:, 1] <= height - 1)
        alive = visible[-1] & consistent & inside
        positions.append(np.where(alive[:, None], moved, positions[-1]))
        visible.append(alive)
    return np.stack(positions), np.stack(visible)


def camera_motions(
    forward: list[np.ndarray],
    backward: list[np.ndarray],
    raw: np.ndarray,
    visible: np.ndarray,
    in_box: np.ndarray,
    pixel_scale: float,
) -> np.ndarray:
    """(F, 3, 3) homographies first frame → frame t: the motion most of each frame agrees with.

    Samples inside the user's subject box (where its tracks are in that frame) are left out.
    """
    height, width = forward[0].shape[:2]
    samples, _ = grid_points(width, height, max(2, round(CAMERA_GRID_STEP * pixel_scale)))
    cameras = [np.eye(3)]
    for t, (forward_flow, backward_flow) in enumerate(zip(forward, backward)):
        moved, consistent = follow_flow(samples, forward_flow, backward_flow, pixel_scale)
        keep = consistent
        subject_now = raw[t][in_box & visible[t]]
        if len(subject_now):
            margin = CAMERA_GRID_STEP * pixel_scale
            low, high = subject_now.min(axis=0) - margin, subject_now.max(axis=0) + margin
            keep = keep & ~np.all((samples >= low) & (samples <= high), axis=1)
        cameras.append(fit_homography(samples[keep], moved[keep], pixel_scale) @ cameras[-1])
    return np.stack(cameras)


def fit_homography(source: np.ndarray, target: np.ndarray, pixel_scale: float) -> np.ndarray:
    """The homography most samples agree with (RANSAC); the identity if there are too few."""
    cv2 = import_cv2()
    if len(source) < 8:
        return np.eye(3)
    homography, _ = cv2.findHomography(
        source.astype(np.float32), target.astype(np.float32), cv2.RANSAC, CAMERA_RANSAC_PX * pixel_scale, maxIters=2000, confidence=0.995
    )
    if homography is None or not np.isfinite(homography).all() or abs(homography[2, 2]) < 1e-9:
        return np.eye(3)
    return homography / homography[2, 2]


def apply_homography(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    mapped = points @ homography[:2, :2].T + homography[:2, 2]
    denominator = points @ homography[2, :2] + homography[2, 2]
    return mapped / denominator[:, None]


def undo_cameras(raw: np.ndarray, cameras: np.ndarray) -> np.ndarray:
    """Track positions in first-frame coordinates: what remains is the subject's own motion."""
    return np.stack([apply_homography(np.linalg.inv(camera), positions) for camera, positions in zip(cameras, raw)])


def track_motion(tracks: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(N,) how far each track gets from its start while it is visible."""
    distance = np.linalg.norm(tracks - tracks[:1], axis=2)
    return np.where(visible, distance, 0.0).max(axis=0)


def camera_travel(cameras: np.ndarray, width: int, height: int) -> float:
    """How far the camera's motion moves the frame's corners at most (px), for diagnostics."""
    corners = np.array([[0, 0], [width, 0], [0, height], [width, height]], dtype=np.float64)
    return float(max(np.linalg.norm(apply_homography(camera, corners) - corners, axis=1).mean() for camera in cameras))


def subject_region(motion: np.ndarray, grid_shape: tuple[int, int], candidates: np.ndarray | None, pixel_scale: float) -> np.ndarray:
    """(N,) grid points on the subject: the largest connected moving region, holes filled.

    A point moves if it travels more than `NO_MOTION_PX` and more than a fraction of what the
    moving points typically travel (so flow that bleeds onto the background is left out).
    `candidates` (a user box) limits where the subject may be.
    """
    cv2 = import_cv2()
    floor = NO_MOTION_PX * pixel_scale
    allowed = np.ones_like(motion, bool) if candidates is None else candidates
    moving = (motion > floor) & allowed
    if moving.sum() < MIN_SUBJECT_TRACKS:
        return np.zeros_like(motion, bool)
    threshold = max(floor, SUBJECT_MOTION_FRACTION * float(np.percentile(motion[moving], 90)))
    mask = ((motion > threshold) & allowed).reshape(grid_shape).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count < 2:
        return np.zeros_like(motion, bool)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    region = fill_holes(labels == largest)
    return region.reshape(-1) & allowed


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """The mask with every enclosed hole filled (what the border cannot reach is inside)."""
    cv2 = import_cv2()
    padded = np.pad(mask.astype(np.uint8), 1)
    outside = padded.copy()
    flood_mask = np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8)
    cv2.floodFill(outside, flood_mask, (0, 0), 2)
    return (outside != 2)[1:-1, 1:-1]


def fitting_tracks(region: np.ndarray, grid_shape: tuple[int, int]) -> np.ndarray:
    """Indices of the region's tracks used for fitting: its rim dropped, where the flow is blurred."""
    cv2 = import_cv2()
    eroded = cv2.erode(region.reshape(grid_shape).astype(np.uint8), np.ones((3, 3), np.uint8)).reshape(-1).astype(bool)
    return np.flatnonzero(eroded if eroded.sum() >= MIN_SUBJECT_TRACKS else region)


def region_box(points: np.ndarray, step: int, width: int, height: int) -> tuple[float, float, float, float]:
    """The region's extent: its grid points' bounds, each grown by half a grid cell."""
    low = np.maximum(points.min(axis=0) - step / 2, 0)
    high = np.minimum(points.max(axis=0) + step / 2, [width, height])
    return (float(low[0]), float(low[1]), float(high[0]), float(high[1]))


def points_in_box(points: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    return (points[:, 0] >= box[0]) & (points[:, 0] <= box[2]) & (points[:, 1] >= box[1]) & (points[:, 1] <= box[3])


def clipped_box(box: tuple[float, float, float, float] | None, width: int, height: int) -> tuple[float, float, float, float] | None:
    """The user's box limited to the frame; refuses a box that misses the frame."""
    if box is None:
        return None
    x0, y0, x1, y1 = max(box[0], 0.0), max(box[1], 0.0), min(box[2], float(width)), min(box[3], float(height))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise PreviewError(f"the subject box {list(box)} lies outside the {width}×{height} frame; give it in frame pixels")
    return (x0, y0, x1, y1)


def still_subject(cameras: np.ndarray, box: tuple | None, frame_size: tuple[int, int], warning: str) -> SubjectTracks:
    """No tracks: the sketch will stay still, and the warning says why."""
    height, width = frame_size
    num_frames = len(cameras)
    return SubjectTracks(
        tracks=np.zeros((num_frames, 0, 2)),
        visible=np.zeros((num_frames, 0), bool),
        box=box or (0.0, 0.0, float(width), float(height)),
        cameras=cameras,
        frame_size=frame_size,
        diagnostics={"num_tracks": 0},
        warnings=[warning],
    )


def visibility_warnings(visible: np.ndarray) -> list[str]:
    fraction = visible.mean(axis=1)
    lost = np.flatnonzero(fraction < LOST_FRACTION)
    if not len(lost):
        return []
    return [
        f"the subject leaves the frame or is hidden from frame {lost[0]} of {len(visible)}: the preview follows "
        "what stays visible, then continues the last motion"
    ]


# ============================================================================== transfer
MoveFunction = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def motion_model(
    points: np.ndarray, source: np.ndarray, visible: np.ndarray, settings: PreviewSettings, subject_size: float, sketch_px: float
) -> MoveFunction:
    """A function (tracks at frame 0, tracks at frame t, which tracks are visible) → moved points.

    `subject_size` is the subject's size in sketch pixels; `sketch_px` is how many sketch
    pixels one pixel of a 256 px frame is (for the part tolerance).
    """
    strength, follow = settings.strength, settings.follow_translation

    def similarity_only(start: np.ndarray, now: np.ndarray, _: np.ndarray) -> np.ndarray:
        motion = fit_similarity_robust(start, now).scaled(strength)
        return motion.apply(points) - (0.0 if follow else motion.shift)

    if settings.rigidity == "similarity":
        return similarity_only

    if settings.rigidity == "partwise":
        labels = split_into_parts(source, visible, settings.max_parts, PART_TOLERANCE_PX * sketch_px, subject_size)
        weights = part_weights(points, source[0], labels, PART_BLEND * subject_size)

        def partwise(start: np.ndarray, now: np.ndarray, shown: np.ndarray) -> np.ndarray:
            overall = fit_similarity_robust(start, now).scaled(strength)
            moved = np.zeros_like(points)
            for part in range(weights.shape[1]):
                members = labels[shown] == part
                motion = fit_similarity_robust(start[members], now[members]).scaled(strength) if members.sum() >= MIN_FIT_TRACKS else overall
                moved += weights[:, part : part + 1] * motion.apply(points)
            return moved - (0.0 if follow else overall.shift)

        return partwise

    def deformable(start: np.ndarray, now: np.ndarray, _: np.ndarray) -> np.ndarray:
        overall = fit_similarity_robust(start, now)
        keep = evenly_thinned(len(start), MAX_FIT_TRACKS)
        residual = now[keep] - overall.apply(start[keep])
        bend = thin_plate_spline(start[keep], residual, subject_size, THIN_PLATE_SMOOTHING)
        scaled = overall.scaled(strength)
        return scaled.apply(points) + strength * bend(points) - (0.0 if follow else scaled.shift)

    return deformable


def evenly_thinned(count: int, limit: int) -> np.ndarray:
    """At most `limit` indices spread evenly over `count` (tracks are in grid order, so over space)."""
    if count <= limit:
        return np.arange(count)
    return np.round(np.linspace(0, count - 1, limit)).astype(np.int64)


def thin_plate_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """U(r) = r² log r between every point of a (N, 2) and b (M, 2)."""
    squared = np.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=2)
    return 0.5 * squared * np.log(np.maximum(squared, 1e-12))


def thin_plate_spline(centres: np.ndarray, values: np.ndarray, size: float, smoothing: float) -> Callable[[np.ndarray], np.ndarray]:
    """The regularised thin-plate spline through `values` (N, 2) at `centres`, as a function.

    Coordinates are normalised by the subject's `size`, so `smoothing` means the same for any
    subject; larger values trade fidelity for a smoother deformation.
    """
    origin = centres.mean(axis=0)
    normalised = (centres - origin) / size
    count = len(centres)
    affine = np.hstack([np.ones((count, 1)), normalised])
    system = np.zeros((count + 3, count + 3))
    system[:count, :count] = thin_plate_kernel(normalised, normalised) + count * smoothing * np.eye(count)
    system[:count, count:] = affine
    system[count:, :count] = affine.T
    right = np.vstack([values, np.zeros((3, 2))])
    try:
        solution = np.linalg.solve(system, right)
    except np.linalg.LinAlgError:
        solution = np.linalg.lstsq(system, right, rcond=None)[0]
    weights, linear = solution[:count], solution[count:]

    def evaluate(points: np.ndarray) -> np.ndarray:
        out = np.empty_like(points)
        for start in range(0, len(points), POINT_CHUNK):
            chunk = (points[start : start + POINT_CHUNK] - origin) / size
            out[start : start + POINT_CHUNK] = thin_plate_kernel(chunk, normalised) @ weights + linear[0] + chunk @ linear[1:]
        return out

    return evaluate


def split_into_parts(source: np.ndarray, visible: np.ndarray, max_parts: int, tolerance: float, subject_size: float) -> np.ndarray:
    """(T,) part of each track: split a part in two while one similarity cannot explain it.

    A part's error is the RMS distance between its tracks and its per-frame similarity fit. The
    worst part is split by 2-means on what its similarity leaves unexplained (plus a little of
    where the tracks are, so parts stay in one piece); the split is kept if both halves are big
    enough and it lowers the error clearly.
    """
    labels = np.zeros(source.shape[1], np.int64)
    settled: set[int] = set()
    while labels.max() + 1 < max_parts:
        errors = {part: part_error(source, visible, labels == part) for part in range(labels.max() + 1) if part not in settled}
        worst = max(errors, key=errors.get, default=None)
        if worst is None or errors[worst] <= tolerance:
            break
        members = labels == worst
        halves = two_means(part_features(source, visible, members, subject_size))
        first, second = members.copy(), members.copy()
        if halves is not None:
            first[members], second[members] = halves, ~halves
        if halves is None or min(first.sum(), second.sum()) < MIN_PART_TRACKS:
            settled.add(worst)
            continue
        split_error = math.sqrt((part_error(source, visible, first) ** 2 + part_error(source, visible, second) ** 2) / 2)
        if split_error > PART_SPLIT_GAIN * errors[worst]:
            settled.add(worst)
            continue
        labels[second] = labels.max() + 1
    return labels


def part_residuals(source: np.ndarray, visible: np.ndarray, members: np.ndarray) -> np.ndarray:
    """(F, n, 2) what the part's per-frame similarity does not explain (0 where not visible)."""
    tracks, shown_all = source[:, members], visible[:, members]
    residual = np.zeros_like(tracks)
    for t in range(1, len(tracks)):
        shown = shown_all[t]
        if shown.sum() >= MIN_FIT_TRACKS:
            start, now = tracks[0][shown], tracks[t][shown]
            residual[t, shown] = now - fit_similarity(start, now).apply(start)
    return residual


def part_error(source: np.ndarray, visible: np.ndarray, members: np.ndarray) -> float:
    residual = part_residuals(source, visible, members)
    return float(np.sqrt(np.sum(residual**2) / max(1, visible[:, members].sum())))


def part_features(source: np.ndarray, visible: np.ndarray, members: np.ndarray, subject_size: float) -> np.ndarray:
    """Per track: its unexplained motion over time (normalised) and, weakly, its position."""
    residual = part_residuals(source, visible, members)
    motion = residual.transpose(1, 0, 2).reshape(residual.shape[1], -1)
    motion = motion / (np.sqrt(np.mean(np.sum(motion**2, axis=1))) + 1e-9)
    start = source[0][members]
    position = PART_POSITION_WEIGHT * (start - start.mean(axis=0)) / subject_size
    return np.hstack([motion, position])


def two_means(features: np.ndarray, iterations: int = 20) -> np.ndarray | None:
    """Boolean split of the rows into two clusters (k-means, seeded by the two most distant rows)."""
    first = np.argmax(np.linalg.norm(features - features.mean(axis=0), axis=1))
    second = np.argmax(np.linalg.norm(features - features[first], axis=1))
    centres = features[[first, second]]
    assignment = None
    for _ in range(iterations):
        distances = np.linalg.norm(features[:, None, :] - centres[None], axis=2)
        new_assignment = distances[:, 0] <= distances[:, 1]
        if assignment is not None and np.array_equal(new_assignment, assignment):
            break
        assignment = new_assignment
        if assignment.all() or not assignment.any():
            return None
        centres = np.stack([features[assignment].mean(axis=0), features[~assignment].mean(axis=0)])
    return assignment


def part_weights(points: np.ndarray, starts: np.ndarray, labels: np.ndarray, blend: float) -> np.ndarray:
    """(P, K) how much each part moves each control point: nearest part mostly, blended at seams."""
    num_parts = int(labels.max()) + 1
    distances = np.empty((len(points), num_parts))
    for part in range(num_parts):
        members = starts[labels == part]
        for start in range(0, len(points), POINT_CHUNK):
            chunk = points[start : start + POINT_CHUNK]
            distances[start : start + POINT_CHUNK, part] = np.sqrt(np.min(np.sum((chunk[:, None] - members[None]) ** 2, axis=2), axis=1))
    logits = -((distances - distances.min(axis=1, keepdims=True)) / max(blend, 1e-6)) ** 2
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


def continue_last_motion(frames: np.ndarray, t: int) -> np.ndarray:
    """The next frame at the last frame's speed (the subject has left the frame)."""
    if t < 2:
        return frames[t - 1]
    return 2 * frames[t - 1] - frames[t - 2]


def smooth_over_time(frames: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of the displacements over time.

    The ends are extended point-symmetrically, so frame 0 stays the sketch, the last frame
    keeps its place and a steady motion is left exactly as it is.
    """
    num_frames = len(frames)
    if sigma <= 0 or num_frames < 3:
        return frames
    radius = min(num_frames - 1, math.ceil(3 * sigma))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    displacement = frames - frames[0]
    before = 2 * displacement[0] - displacement[radius:0:-1]
    after = 2 * displacement[-1] - displacement[-2 : -radius - 2 : -1]
    padded = np.concatenate([before, displacement, after])
    smoothed = sum(weight * padded[k : k + num_frames] for k, weight in enumerate(kernel))
    return frames[0] + smoothed


# ========================================================================= command line
def add_preview_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register `preview` on the engine's command line (`python -m engine preview …`)."""
    parser = subparsers.add_parser(
        "preview",
        help="instant motion preview: move the sketch like the video's subject (no GPU, seconds)",
        description="Track the subject of the reference video with optical flow (the camera's motion removed) and "
        "move the sketch's control points the same way. No diffusion model: a quick look at the motion, written "
        "in the same result format as `animate` (result.json, per-frame SVG, GIF/MP4, side by side).",
    )
    parser.add_argument("--sketch", type=Path, required=True, help="the sketch: .svg or sketch .json")
    parser.add_argument("--video", type=Path, required=True, help="the reference video (mp4, mov, webm, avi, gif, image folder)")
    parser.add_argument("--out", type=Path, required=True, help="result folder (result.json, frames/, animation.gif, side_by_side.gif …)")
    parser.add_argument("--frames", type=int, default=16, help="frames sampled from the video (default 16)")
    parser.add_argument("--start", type=float, default=None, help="video start time in seconds (default: the beginning)")
    parser.add_argument("--end", type=float, default=None, help="video end time in seconds (default: the end)")
    parser.add_argument("--fit", choices=("crop", "pad"), default="crop", help="make video frames square by centre crop or white padding")
    parser.add_argument("--resolution", type=int, default=256, help="frame size the motion is tracked at in pixels (default 256)")
    parser.add_argument(
        "--rigidity", choices=RIGIDITIES, default="deformable",
        help="similarity: one turn/scale/shift for the whole sketch; partwise: rigid parts; deformable: smooth bending (default)",
    )  # fmt: skip
    parser.add_argument("--strength", type=float, default=1.0, help="scale of the motion: 0 still, 1 as in the video (default), 2 exaggerated")
    parser.add_argument("--smoothing", type=float, default=0.5, help="smoothing over time, Gaussian sigma in frames (default 0.5; 0 = none)")
    parser.add_argument("--keep-in-place", action="store_true", help="do not follow the subject across the frame: keep its turns and bending only")
    parser.add_argument(
        "--box", type=float, nargs=4, metavar=("X0", "Y0", "X1", "Y1"), default=None,
        help="the subject on the first frame, in pixels of the square --resolution frame (default: found from the motion)",
    )  # fmt: skip
    parser.add_argument("--flow", choices=FLOW_METHODS, default="dis", help="optical flow method (default dis; farneback is slower)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the camera-motion fit (default 0)")
    parser.add_argument("--events", type=Path, default=None, help="also append JSON-lines progress events to this file")
    parser.set_defaults(handler=run_preview_command)
    return parser


def run_preview_command(args: argparse.Namespace) -> None:
    from .sketch import load_sketch

    settings = PreviewSettings(
        rigidity=args.rigidity, strength=args.strength, temporal_smoothing=args.smoothing, follow_translation=not args.keep_in_place,
        subject_box=None if args.box is None else tuple(args.box), flow=args.flow, num_frames=args.frames, size=args.resolution, seed=args.seed,
    )  # fmt: skip
    sketch = load_sketch(args.sketch)
    spec = settings.video_spec(args.video, args.start, args.end, args.fit)
    events = EventLog(args.events) if args.events else None
    result = preview_motion(sketch, spec, settings, args.out, events)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {result.files.out_dir} ({len(result.frames)} frames; open {result.files.side_by_side_gif or result.files.animation_gif})")
