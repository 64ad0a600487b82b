"""Instant motion preview: move the sketch like the video's subject, by tracking, without a GPU.

No diffusion model is involved; a preview takes a few seconds on a CPU. It is a quick look at
the motion before the long stage-3 run, and a starting point for it (`--init preview`).

1. Subject motion (`track_subject`). Dense optical flow (OpenCV's DIS at full resolution, or
   Farnebäck) between consecutive frames, read `flow_substeps` times as densely as the output
   frames so that each flow step stays short. A grid of first-frame points is carried along
   the flow; a point dies when it nears the frame's edge, when the backward flow does not
   bring it back, or when its colour jumps (the subject ran over it). The camera's motion
   between two frames is the homography most of the flow agrees with (RANSAC); undoing the
   chained homographies puts every track into first-frame coordinates. The subject is the
   largest connected region of points that move as the subject's overall motion predicts
   (flow bleeding onto the background moves points less), holes filled (the centre of a
   turn); a user-given box says where to look instead.
2. Transfer (`transfer_motion`). The subject's first-frame box is mapped onto the sketch's
   extent (same centre, one uniform scale, so a turn stays a turn). Per frame, a similarity
   (turn, scale, shift) is fitted robustly to the tracks; "partwise" fits one per rigid part
   (the tracks are split where one similarity cannot explain them) and blends them between
   parts; "deformable" adds a regularised thin-plate spline fitted to what the similarity
   leaves over. Every control point moves with the result. `strength` scales the motion's
   parameters (half strength = half the turn), the displacements are smoothed over time, and
   the subject's translation can be dropped. When the subject has left the frame, the sketch
   continues at its last speed.
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
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from .errors import SketchAnimatorError
from .events import EventLog, Progress
from .sketch import Sketch
from .video import ReferenceClip, VideoSpec, load_reference_frames, warn_if_too_few

if TYPE_CHECKING:  # outputs renders with torch: imported only when a result is written
    from .outputs import ResultFiles

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
BORDER_PX = 6  # the flow is unreliable this close to the frame's edge, where content enters and leaves
FORWARD_BACKWARD_PX = 1.0  # a track dies when forward then backward flow misses by more than this
FORWARD_BACKWARD_RELATIVE = 0.1  # … plus this fraction of its displacement
COLOUR_CHANGE = 20.0  # a track dies when its (blurred) colour changes more than this from one frame to the next
COLOUR_DRIFT = 30.0  # … or more than this from its first frame (0–255 RGB distance)
COLOUR_BLUR_PX = 1.5  # Gaussian blur of the frames before colours are compared
NO_MOTION_PX = 1.0  # a subject must move at least this far (after removing the camera's motion)
MIN_TRAVEL_PX = 0.5  # a point that travels less is still (the centre of a turn is added back as a hole)
CORE_MOTION_FRACTION = 0.5  # points moving this much of the typical moving point are surely on the subject
SUBJECT_MOTION_FRACTION = 0.6  # a point is on the subject if it moves this much of what the subject's motion predicts there
MIN_SUBJECT_TRACKS = 8  # fewer moving points than this is noise, not a subject
MIN_FIT_TRACKS = 6  # fewer visible tracks in a frame: its motion is extrapolated
MIN_PART_TRACKS = 8  # a part needs this many tracks
DEFORMATION_NODES = 7  # the deformation's kernels sit on a 7 × 7 grid over the subject
PART_TOLERANCE_PX = 0.75  # one similarity that explains a part this well is not split
PART_SPLIT_GAIN = 0.6  # a split must bring the error below this fraction of the part's
PART_BLEND = 0.08  # width of the blend between parts, as a fraction of the subject's size
PART_NEIGHBOURS = 5  # a control point's distance to a part is to its 5th nearest track
PART_POSITION_WEIGHT = 0.5  # how much being near each other counts when splitting into parts
THIN_PLATE_SMOOTHING = 3e-3  # regularisation of the deformation (subject size = 1)
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
    flow_substeps: int = 2  # video frames read per output frame step: shorter flow steps follow faster motion

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
        check_whole("flow_substeps", self.flow_substeps, 1, 8)
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
def track_subject(frames: np.ndarray, settings: PreviewSettings = PreviewSettings(), substeps: int = 1) -> SubjectTracks:
    """Find the moving subject in `frames` (N, H, W, 3) uint8 and track its points, camera removed.

    With `substeps` k > 1, only every k-th frame is an output frame (N = k·(F − 1) + 1); the
    frames between shorten each flow step, which keeps fast motion within the flow's reach.
    """
    frames = checked_frames(frames)
    if not isinstance(substeps, int) or substeps < 1 or (len(frames) - 1) % substeps:
        raise PreviewError(f"{len(frames)} frames cannot be split into steps of {substeps}: give k·(F − 1) + 1 frames")
    num_frames, height, width = frames.shape[:3]
    pixel_scale = max(height, width) / REFERENCE_SIZE
    user_box = clipped_box(settings.subject_box, width, height)
    if num_frames == 1:
        return still_subject(np.eye(3)[None], user_box, (height, width), "the video gives a single frame: there is no motion to preview")

    import_cv2().setRNGSeed(settings.seed)
    started = time.perf_counter()
    forward, backward = pairwise_flow(to_grey(frames), settings.flow)
    flow_s = time.perf_counter() - started

    step = max(2, round(GRID_STEP * pixel_scale))
    grid, grid_shape = grid_points(width, height, step)
    raw, visible = chain_tracks(grid, forward, backward, blurred(frames, pixel_scale), pixel_scale)
    in_box = None if user_box is None else points_in_box(grid, user_box)
    cameras = camera_motions(forward, backward, raw, visible, in_box, pixel_scale)
    tracks = undo_cameras(raw, cameras)
    motion = track_motion(tracks, visible)
    region = subject_region(tracks, visible, motion, grid_shape, in_box, pixel_scale)

    outputs = slice(None, None, substeps)
    diagnostics = {
        "flow": settings.flow,
        "flow_steps": len(forward),
        "flow_seconds": round(flow_s, 3),
        "grid_step_px": step,
        "camera_motion_px": round(camera_travel(cameras, width, height), 2),
        "subject_motion_px": round(float(motion[region].max(initial=0.0)), 2),
        "box_source": "detected" if user_box is None else "user",
    }
    if region.sum() < MIN_SUBJECT_TRACKS:
        largest = motion if in_box is None else motion[in_box]
        result = still_subject(cameras[outputs], user_box, (height, width), no_motion_message(float(largest.max(initial=0.0))))
        result.diagnostics.update(diagnostics, num_tracks=0)
        return result

    box = user_box or region_box(grid[region], step, width, height)
    chosen = fitting_tracks(region, grid_shape)
    result = SubjectTracks(tracks[outputs, chosen], visible[outputs, chosen], box, cameras[outputs], (height, width), diagnostics)
    result.diagnostics["num_tracks"] = result.num_tracks
    result.warnings.extend(visibility_warnings(result.visible))
    return result


def no_motion_message(largest_px: float) -> str:
    return (
        f"no subject motion detected (the largest motion is {largest_px:.1f} px after removing the camera's): "
        "the preview is still; choose a clip where the subject moves, or mark the subject with a box"
    )


def transfer_motion(sketch: Sketch, tracks: SubjectTracks, settings: PreviewSettings = PreviewSettings()) -> np.ndarray:
    """Control points per frame (F, P, 2) that move like the tracked subject; frame 0 is the sketch."""
    points = sketch.validate().flat_points()
    num_frames = tracks.num_frames
    if tracks.num_tracks == 0 or settings.strength == 0:
        return np.repeat(points[None], num_frames, axis=0)

    mapping = ExtentMapping.between(tracks.box, sketch)
    source = mapping.apply(tracks.tracks)  # (F, T, 2) in sketch pixels
    subject_box = mapping.apply(np.reshape(tracks.box, (2, 2)))
    move = motion_model(points, source, tracks.visible, settings, subject_box, mapping.scale * tracks.pixel_scale)

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
        clip, dense_frames, substeps = read_clip_with_substeps(video_spec, settings.flow_substeps)
        progress.update(1)
        tracks = track_subject(dense_frames, settings, substeps)
        progress.update(2)
        frames = transfer_motion(sketch, tracks, settings)
        progress.update(3)
        warnings = [*clip.warnings, *tracks.warnings]
        for warning in warnings if events is not None else ():
            events.warning(warning)
        files = None
        if out_dir is not None:
            from .outputs import write_result

            metadata = preview_metadata(settings, video_spec, tracks, warnings)
            files = write_result(out_dir, sketch, frames, clip.frames, metadata=metadata)
            progress.update(4)
    return PreviewResult(frames, sketch.with_frames(frames), clip, tracks, settings, warnings, files)


def read_clip_with_substeps(spec: VideoSpec, substeps: int) -> tuple[ReferenceClip, np.ndarray, int]:
    """The clip `spec` describes, the same span read `substeps` times as densely, and the substeps.

    Every `substeps`-th dense frame is exactly the frame `spec` samples (`video.sample_indices`
    is exact in integers), so the video is decoded once. Warnings about too few frames are
    worded for the frames the user asked for.
    """
    if substeps == 1 or spec.num_frames == 1:
        clip = load_reference_frames(spec)
        return clip, clip.frames, 1
    dense_spec = replace(spec, num_frames=substeps * (spec.num_frames - 1) + 1)
    dense = load_reference_frames(dense_spec)
    available = int(dense.source_indices[-1] - dense.source_indices[0] + 1)
    dense_only: list[str] = []
    warn_if_too_few(dense_spec, available, dense_only)
    warnings = [warning for warning in dense.warnings if warning not in dense_only]
    warn_if_too_few(spec, available, warnings)
    clip = ReferenceClip(
        dense.frames[::substeps], dense.source_indices[::substeps], dense.fps, dense.duration_s, dense.source_frame_count, warnings
    )
    return clip, dense.frames, substeps


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


def flow_estimator(method: str, precise: bool = True) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A function (grey a, grey b) → (H, W, 2) float32 flow from a to b.

    `precise=False` is for the backward flow, which only checks the forward flow to within a
    pixel: DIS's fast preset does that in a tenth of the time.
    """
    cv2 = import_cv2()
    if method == "dis" and not precise:
        rough = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        return lambda a, b: rough.calc(a, b, None)
    if method == "dis":
        # Full resolution (finest scale 0): at the presets' half resolution DIS reads motions
        # about 2% short, an error that chaining adds up over the frames.
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        dis.setFinestScale(0)
        dis.setPatchStride(4)
        dis.setGradientDescentIterations(12)
        dis.setVariationalRefinementIterations(2)
        return lambda a, b: dis.calc(a, b, None)
    return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 4, 15, 3, 5, 1.1, 0)


def pairwise_flow(grey: list[np.ndarray], method: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Forward (t → t+1) and backward (t+1 → t) flow of each pair of consecutive frames."""
    estimate, check = flow_estimator(method), flow_estimator(method, precise=False)
    forward = [estimate(a, b) for a, b in zip(grey[:-1], grey[1:])]
    backward = [check(b, a) for a, b in zip(grey[:-1], grey[1:])]
    return forward, backward


def sample_field(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear samples of an (H, W, C) image (a flow field, colours) at (N, 2) positions (x, y)."""
    cv2 = import_cv2()
    map_x = np.ascontiguousarray(points[None, :, 0], dtype=np.float32)
    map_y = np.ascontiguousarray(points[None, :, 1], dtype=np.float32)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0].astype(np.float64)


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


def chain_tracks(
    grid: np.ndarray, forward: list[np.ndarray], backward: list[np.ndarray], colours: np.ndarray, pixel_scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Carry the grid through all frames: (F, N, 2) positions in each frame and (F, N) visibility.

    A track dies, and stays still, when it nears the frame's edge, when the backward flow does
    not bring it back, or when its colour changes: a background point that the subject runs
    over would otherwise be swept along with it.
    """
    height, width = forward[0].shape[:2]
    positions = [grid]
    visible = [np.ones(len(grid), bool)]
    first_colour = colour = sample_field(colours[0], grid)
    for t, (forward_flow, backward_flow) in enumerate(zip(forward, backward)):
        moved, consistent = follow_flow(positions[-1], forward_flow, backward_flow, pixel_scale)
        inside = away_from_border(moved, width, height, pixel_scale)
        new_colour = sample_field(colours[t + 1], moved)
        step_change = np.linalg.norm(new_colour - colour, axis=1)
        drift = np.linalg.norm(new_colour - first_colour, axis=1)
        same_look = (step_change <= COLOUR_CHANGE) & (drift <= COLOUR_DRIFT)
        alive = visible[-1] & consistent & inside & same_look
        positions.append(np.where(alive[:, None], moved, positions[-1]))
        visible.append(alive)
        colour = np.where(alive[:, None], new_colour, colour)
    return np.stack(positions), np.stack(visible)


def away_from_border(points: np.ndarray, width: int, height: int, pixel_scale: float) -> np.ndarray:
    margin = BORDER_PX * pixel_scale
    return np.all((points >= margin) & (points <= np.array([width, height]) - margin), axis=1)


def blurred(frames: np.ndarray, pixel_scale: float) -> np.ndarray:
    """(F, H, W, 3) float32 frames, slightly blurred so that colours compare despite sub-pixel errors."""
    cv2 = import_cv2()
    sigma = COLOUR_BLUR_PX * pixel_scale
    return np.stack([cv2.GaussianBlur(frame.astype(np.float32), (0, 0), sigma) for frame in frames])


def camera_motions(
    forward: list[np.ndarray],
    backward: list[np.ndarray],
    raw: np.ndarray,
    visible: np.ndarray,
    in_box: np.ndarray | None,
    pixel_scale: float,
) -> np.ndarray:
    """(F, 3, 3) homographies first frame → frame t: the motion most of each frame agrees with.

    Samples inside the user's subject box (where its tracks are in that frame) are left out.
    """
    height, width = forward[0].shape[:2]
    samples, _ = grid_points(width, height, max(2, round(CAMERA_GRID_STEP * pixel_scale)))
    samples = samples[away_from_border(samples, width, height, pixel_scale)]
    cameras = [np.eye(3)]
    for t, (forward_flow, backward_flow) in enumerate(zip(forward, backward)):
        moved, consistent = follow_flow(samples, forward_flow, backward_flow, pixel_scale)
        keep = consistent & away_from_border(moved, width, height, pixel_scale)
        subject_now = raw[t][in_box & visible[t]] if in_box is not None else raw[t][:0]
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


def subject_region(
    tracks: np.ndarray, visible: np.ndarray, motion: np.ndarray, grid_shape: tuple[int, int], candidates: np.ndarray | None, pixel_scale: float
) -> np.ndarray:
    """(N,) grid points on the subject: the largest connected moving region, holes filled.

    The flow bleeds a little motion onto the background around a moving subject. So a point
    counts as moving with the subject only if, while it is tracked, it travels at least
    `SUBJECT_MOTION_FRACTION` of what the subject's overall motion (a similarity fitted to its
    clearly moving core) predicts for it. `candidates` (a user box) limits where it may be.
    """
    cv2 = import_cv2()
    allowed = np.ones_like(motion, bool) if candidates is None else candidates
    moving = (motion > NO_MOTION_PX * pixel_scale) & allowed
    if moving.sum() < MIN_SUBJECT_TRACKS:
        return np.zeros_like(motion, bool)
    core = moving & (motion >= CORE_MOTION_FRACTION * float(np.percentile(motion[moving], 90)))
    expected = track_motion(predicted_tracks(tracks, visible, core), visible)
    with_subject = allowed & (motion > MIN_TRAVEL_PX * pixel_scale) & (motion >= SUBJECT_MOTION_FRACTION * expected)
    mask = cv2.morphologyEx(with_subject.reshape(grid_shape).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count < 2:
        return np.zeros_like(motion, bool)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return fill_holes(labels == largest).reshape(-1) & allowed


def predicted_tracks(tracks: np.ndarray, visible: np.ndarray, core: np.ndarray) -> np.ndarray:
    """(F, N, 2) where every track would be if it moved like the core's similarity."""
    start = tracks[0]
    predicted = [start]
    for t in range(1, len(tracks)):
        shown = core & visible[t]
        enough = shown.sum() >= MIN_FIT_TRACKS
        predicted.append(fit_similarity_robust(start[shown], tracks[t][shown]).apply(start) if enough else predicted[-1])
    return np.stack(predicted)


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
    points: np.ndarray, source: np.ndarray, visible: np.ndarray, settings: PreviewSettings, subject_box: np.ndarray, sketch_px: float
) -> MoveFunction:
    """A function (tracks at frame 0, tracks at frame t, which tracks are visible) → moved points.

    `subject_box` is the subject's first-frame box in sketch pixels, (2, 2) low and high
    corners; `sketch_px` is how many sketch pixels one pixel of a 256 px frame is.
    """
    subject_size = float(np.sqrt(np.prod(subject_box[1] - subject_box[0])))
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
                motion = overall  # a part out of sight moves with the whole
                if members.sum() >= MIN_FIT_TRACKS:
                    motion = fit_similarity_robust(start[members], now[members]).scaled(strength)
                moved += weights[:, part : part + 1] * motion.apply(points)
            return moved - (0.0 if follow else overall.shift)

        return partwise

    bending = ThinPlateDeformation(source[0], points, subject_box, THIN_PLATE_SMOOTHING)

    def deformable(start: np.ndarray, now: np.ndarray, shown: np.ndarray) -> np.ndarray:
        overall = fit_similarity_robust(start, now)
        bend = bending.fit(shown, now - overall.apply(start))
        scaled = overall.scaled(strength)
        return scaled.apply(points) + strength * bend - (0.0 if follow else scaled.shift)

    return deformable


def thin_plate_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """U(r) = r² log r between every point of a (N, 2) and b (M, 2)."""
    squared = np.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=2)
    return 0.5 * squared * np.log(np.maximum(squared, 1e-12))


class ThinPlateDeformation:
    """A smooth displacement field fitted to the tracks: a regularised thin-plate spline.

    Its kernels sit on a fixed grid of `DEFORMATION_NODES`² nodes over the subject (not on
    the tracks), so every frame's fit is one small least-squares system, whatever the number
    of tracks: the displacements it predicts at the visible tracks should match theirs, and
    its bending energy (smoothing, with the subject's size = 1) keeps it smooth.
    """

    def __init__(self, tracks: np.ndarray, points: np.ndarray, box: np.ndarray, smoothing: float) -> None:
        self.origin = box.mean(axis=0)
        self.size = float(np.sqrt(np.prod(box[1] - box[0])))
        half = 0.55 * (box[1] - box[0]) / self.size  # the box, 10% larger
        axes = [np.linspace(-h, h, DEFORMATION_NODES) for h in half]
        self.nodes = np.stack(np.meshgrid(*axes), axis=-1).reshape(-1, 2)
        self.track_basis = self.basis(tracks)  # (T, nodes + 3)
        self.points = points
        count = len(self.nodes)
        self.bending = np.zeros((count + 3, count + 3))
        self.bending[:count, :count] = smoothing * thin_plate_kernel(self.nodes, self.nodes)
        self.constraint = np.zeros((count + 3, 3))  # node weights orthogonal to affine maps (no bending energy there)
        self.constraint[:count] = np.hstack([np.ones((count, 1)), self.nodes])

    def basis(self, positions: np.ndarray) -> np.ndarray:
        """(N, nodes + 3): the node kernels, 1, x and y at the positions (sketch pixels)."""
        normalised = (positions - self.origin) / self.size
        return np.hstack([thin_plate_kernel(normalised, self.nodes), np.ones((len(normalised), 1)), normalised])

    def fit(self, visible: np.ndarray, displacements: np.ndarray) -> np.ndarray:
        """(P, 2) the field that fits the visible tracks' `displacements` (N, 2), at the points.

        Tracks far off the typical displacement (a few stray ones at the subject's edge) count
        less (Cauchy weights), so they cannot raise bumps.
        """
        basis = self.track_basis[visible]
        deviation = np.linalg.norm(displacements - np.median(displacements, axis=0), axis=1)
        weights = 1.0 / (1.0 + (deviation / (3.0 * np.median(deviation) + 1e-3)) ** 2)
        weights /= weights.sum()
        normal = basis.T @ (weights[:, None] * basis) + self.bending
        size = len(normal)
        system = np.block([[normal, self.constraint], [self.constraint.T, np.zeros((3, 3))]])
        right = np.vstack([basis.T @ (weights[:, None] * displacements), np.zeros((3, 2))])
        try:
            coefficients = np.linalg.solve(system, right)[:size]
        except np.linalg.LinAlgError:
            coefficients = np.linalg.lstsq(system, right, rcond=None)[0][:size]
        out = np.empty_like(self.points)
        for start in range(0, len(self.points), POINT_CHUNK):
            out[start : start + POINT_CHUNK] = self.basis(self.points[start : start + POINT_CHUNK]) @ coefficients
        return out


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
    return assign_to_best_part(source, visible, labels)


def assign_to_best_part(source: np.ndarray, visible: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Give every track to the part whose per-frame similarities explain its path best.

    A split by clustering can leave a stray track in the wrong part; a part's motion is the
    better judge of where a track belongs. Only frames where every part can be fitted count.
    """
    num_parts = int(labels.max()) + 1
    if num_parts == 1:
        return labels
    misfit = np.zeros((num_parts, source.shape[1]))
    for t in range(1, len(source)):
        shown = [(labels == part) & visible[t] for part in range(num_parts)]
        if min(members.sum() for members in shown) < MIN_FIT_TRACKS:
            continue
        for part, members in enumerate(shown):
            motion = fit_similarity(source[0][members], source[t][members])
            misfit[part] += visible[t] * np.sum((source[t] - motion.apply(source[0])) ** 2, axis=1)
    return np.argmin(misfit, axis=0) if misfit.any() else labels


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
    """Boolean split of the rows into two clusters: k-means, started from the sign of the main axis.

    Starting from the principal axis (rather than from the most distant rows) keeps a few
    stray tracks from becoming a cluster of their own.
    """
    centred = features - features.mean(axis=0)
    main_axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    assignment = centred @ main_axis > 0
    for _ in range(iterations):
        if assignment.all() or not assignment.any():
            return None
        centres = np.stack([features[assignment].mean(axis=0), features[~assignment].mean(axis=0)])
        distances = np.linalg.norm(features[:, None, :] - centres[None], axis=2)
        new_assignment = distances[:, 0] <= distances[:, 1]
        if np.array_equal(new_assignment, assignment):
            break
        assignment = new_assignment
    return assignment


def part_weights(points: np.ndarray, starts: np.ndarray, labels: np.ndarray, blend: float) -> np.ndarray:
    """(P, K) how much each part moves each control point: nearest part mostly, blended at seams.

    The distance to a part is to its `PART_NEIGHBOURS`-th nearest track, so that a lone track
    far from the rest of its part does not pull points over.
    """
    num_parts = int(labels.max()) + 1
    distances = np.full((len(points), num_parts), np.inf)
    for part in range(num_parts):
        members = starts[labels == part]
        if not len(members):
            continue
        nth = min(PART_NEIGHBOURS, len(members)) - 1
        for start in range(0, len(points), POINT_CHUNK):
            squared = np.sum((points[start : start + POINT_CHUNK, None] - members[None]) ** 2, axis=2)
            distances[start : start + POINT_CHUNK, part] = np.sqrt(np.partition(squared, nth, axis=1)[:, nth])
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
    parser.add_argument(
        "--substeps", type=int, default=2, help="video frames tracked per output frame (default 2; more follows faster motion, but is slower)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the camera-motion fit (default 0)")
    parser.add_argument("--events", type=Path, default=None, help="also append JSON-lines progress events to this file")
    parser.set_defaults(handler=run_preview_command)
    return parser


def run_preview_command(args: argparse.Namespace) -> None:
    from .sketch import load_sketch

    settings = PreviewSettings(
        rigidity=args.rigidity, strength=args.strength, temporal_smoothing=args.smoothing, follow_translation=not args.keep_in_place,
        subject_box=None if args.box is None else tuple(args.box), flow=args.flow, num_frames=args.frames, size=args.resolution, seed=args.seed,
        flow_substeps=args.substeps,
    )  # fmt: skip
    sketch = load_sketch(args.sketch)
    spec = settings.video_spec(args.video, args.start, args.end, args.fit)
    events = EventLog(args.events) if args.events else None
    result = preview_motion(sketch, spec, settings, args.out, events)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {result.files.out_dir} ({len(result.frames)} frames; open {result.files.side_by_side_gif or result.files.animation_gif})")
