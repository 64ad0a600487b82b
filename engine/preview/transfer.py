"""Moving the sketch like the tracked subject (step 2 of the preview): the subject's box onto the
sketch, a similarity per frame, rigid parts or a smooth deformation of what it leaves over,
smoothed in real time, and the followed translation kept on the canvas."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..settings import PreviewSettings
from ..vector.sketch import Sketch
from .similarity import fit_affine_robust, fit_similarity, fit_similarity_robust
from .tracking import MIN_FIT_TRACKS, SubjectTracks

MIN_PART_TRACKS = 8  # a part needs this many tracks
DEFORMATION_NODES = 7  # the deformation's kernels sit on a 7 × 7 grid over the subject
PART_TOLERANCE_PX = 0.75  # a track is on a part when the part's similarities explain its path this well (mean, at 256 px)
PART_SEEDS = 24  # seed tracks tried per part (spread through the tracks left)
PART_SEED_TRACKS = 12  # a seed's patch: its nearest tracks, whose similarities are the part's hypothesis
PART_BLEND = 0.08  # width of the blend between parts, as a fraction of the subject's size
PART_NEIGHBOURS = 5  # a control point's distance to a part is to its 5th nearest track
THIN_PLATE_SMOOTHING = 3e-3  # regularisation of the deformation (subject size = 1)
AFFINE_PENALTY = 10.0  # the deformation's own turn, scale and stretch are held back this hard: they are the affine motion's
SHIFT_PENALTY = 0.1  # … and its own shift, a little
MIN_SKETCH_SIDE = 0.02  # of the canvas: the extent of a dot or a line is widened to this
CANVAS_TOLERANCE_PX = 1e-6  # overflows within this of the least are the same
POINT_CHUNK = 4096  # control points evaluated at once (bounds memory on huge sketches)


@dataclass(frozen=True)
class ExtentMapping:
    """Video pixels → sketch pixels: the subject's box onto the sketch's extent, one uniform scale.

    The centres coincide and the scale is the geometric mean of the two sides' ratios; one
    scale for both axes keeps a turn a turn. A sketch with a side narrower than `MIN_SKETCH_SIDE`
    of the canvas (a straight line) is scaled by its other side alone; a dot, as that wide.
    """

    source_centre: np.ndarray
    target_centre: np.ndarray
    scale: float

    @classmethod
    def between(cls, box: Sequence[float], sketch: Sketch) -> "ExtentMapping":
        """The subject's box (pixel-edge coordinates) onto the extent of the sketch's drawn curves
        (not their handles); pinned and invisible paths, which do not move, do not count."""
        moving = np.array([not (p.pinned or p.is_invisible) for p in sketch.paths])
        low, high = sketch.curve_bounds(paths=moving if moving.any() else None)
        floor = MIN_SKETCH_SIDE * max(sketch.width, sketch.height)
        sides = high - low
        box_sides = np.maximum(np.array([box[2] - box[0], box[3] - box[1]]), 1.0)
        ratios = np.maximum(sides, floor) / box_sides
        flat = sides < floor  # a straight line has no height: its length alone says how big it is
        if flat.all():
            scale = float(floor / box_sides.max())
        elif flat.any():
            scale = float(ratios[~flat][0])
        else:
            scale = float(np.sqrt(np.prod(ratios)))
        return cls(np.array([box[0] + box[2], box[1] + box[3]]) / 2, (low + high) / 2, scale)

    def apply(self, points: np.ndarray) -> np.ndarray:
        return self.target_centre + self.scale * (np.asarray(points) - self.source_centre)

    def invert(self, points: np.ndarray) -> np.ndarray:
        return self.source_centre + (np.asarray(points) - self.target_centre) / self.scale



@dataclass
class MotionTransfer:
    """The sketch's control points per frame and what was done to keep them on the canvas."""

    frames: np.ndarray  # (F, P, 2); frame 0 is the sketch
    translation_kept: float = 1.0  # the share of the subject's travel the sketch follows (1: all of it)
    warnings: list[str] = field(default_factory=list)


def transfer_motion(sketch: Sketch, tracks: SubjectTracks, settings: PreviewSettings = PreviewSettings()) -> MotionTransfer:
    """Control points per frame (F, P, 2) that move like the tracked subject; frame 0 is the sketch.

    With `settings.keep_on_canvas`, the followed translation is scaled down (one factor for the
    whole clip, so the motion keeps its shape and timing) until no frame carries the drawing
    further off the canvas than its own turning and bending do; a warning says by how much.
    """
    points = sketch.validate().flat_points()
    num_frames = tracks.num_frames
    if tracks.num_tracks == 0 or settings.strength == 0:
        return MotionTransfer(np.repeat(points[None], num_frames, axis=0))

    mapping = ExtentMapping.between(tracks.box, sketch)
    source = mapping.apply(tracks.tracks)  # (F, T, 2) in sketch pixels
    subject_box = mapping.apply(np.reshape(tracks.box, (2, 2)))
    move = motion_model(points, source, tracks.visible, settings, subject_box, mapping.scale * tracks.pixel_scale)
    times = tracks.frame_times()

    frames = np.empty((num_frames, len(points), 2))
    shifts = np.zeros((num_frames, 2))
    frames[0] = points
    for t in range(1, num_frames):
        visible = tracks.visible[t]
        if visible.sum() < MIN_FIT_TRACKS:
            frames[t], shifts[t] = continue_last_motion(frames, times, t), continue_last_motion(shifts, times, t)
        else:
            frames[t], shifts[t] = move(source[0][visible], source[t][visible], visible)
    sigma_s = settings.temporal_smoothing * mean_spacing(times)
    frames = smooth_over_time(frames, sigma_s, times)
    shifts = smooth_over_time(shifts[:, None], sigma_s, times)[:, 0]
    frames[0], shifts[0] = points, 0.0
    still = sketch.still_points()  # pinned (and invisible) paths stay where they are drawn
    frames[:, still] = points[still]
    if not settings.keep_on_canvas or not settings.follow_translation:
        return MotionTransfer(frames)
    return keep_on_canvas(sketch, frames, shifts, still)


# ============================================================================ the canvas
def keep_on_canvas(sketch: Sketch, frames: np.ndarray, shifts: np.ndarray, still: np.ndarray) -> MotionTransfer:
    """Scale the followed translation so the drawing goes no further off the canvas than it must.

    The moving curves' extent in frame t moves by exactly the translation taken away, so the
    overflow past the canvas's edges is piecewise linear in the share u of the translation taken
    away: the smallest u among those with the least overflow is found exactly, at the
    breakpoints where some frame's extent touches an edge.
    """
    moving = np.array([not (p.pinned or p.is_invisible) for p in sketch.paths])
    if not moving.any():
        return MotionTransfer(frames)
    extents = sketch.curve_bounds(frames, paths=moving)  # (F, 2, 2)
    size = np.array([sketch.width, sketch.height], dtype=np.float64)

    def overflow(removed: np.ndarray) -> np.ndarray:
        low = extents[None, :, 0] - removed[:, None, None] * shifts[None]
        high = extents[None, :, 1] - removed[:, None, None] * shifts[None]
        return np.maximum(np.maximum(-low, high - size), 0.0).max(axis=(1, 2))

    with np.errstate(divide="ignore", invalid="ignore"):
        crossings = np.concatenate([(extents[:, 0] / shifts).ravel(), ((extents[:, 1] - size) / shifts).ravel()])
    candidates = np.unique(np.concatenate([[0.0, 1.0], crossings[np.isfinite(crossings) & (crossings > 0) & (crossings < 1)]]))
    spill = overflow(candidates)
    removed = float(candidates[np.flatnonzero(spill <= spill.min() + CANVAS_TOLERANCE_PX)[0]])
    if removed <= 0.0:
        return MotionTransfer(frames)
    limited = frames - removed * shifts[:, None, :]
    limited[:, still] = frames[:, still]
    limited[0] = frames[0]
    kept = 1.0 - removed
    travel = float(np.linalg.norm(shifts, axis=1).max())
    warning = (
        f"the subject travels {travel:.0f} px in sketch pixels, which would carry the drawing off its "
        f"{sketch.width}×{sketch.height} canvas: it follows {100 * kept:.0f}% of that travel (turns and bending in full); "
        "turn off 'keep on canvas' (--off-canvas) to follow all of it"
    )
    return MotionTransfer(limited, kept, [warning])


# ============================================================================== transfer
MoveFunction = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def motion_model(
    points: np.ndarray, source: np.ndarray, visible: np.ndarray, settings: PreviewSettings, subject_box: np.ndarray, sketch_px: float
) -> MoveFunction:
    """A function (tracks at frame 0, tracks at frame t, which tracks are visible) → the moved
    points and the translation they followed (the subject's shift, in sketch pixels).

    `subject_box` is the subject's first-frame box in sketch pixels, (2, 2) low and high
    corners; `sketch_px` is how many sketch pixels one pixel of a 256 px frame is.
    """
    subject_size = float(np.sqrt(np.prod(subject_box[1] - subject_box[0])))
    strength, follow = settings.strength, settings.follow_translation

    def similarity_only(start: np.ndarray, now: np.ndarray, _: np.ndarray) -> np.ndarray:
        motion = fit_similarity_robust(start, now).scaled(strength)
        return followed(motion.apply(points), motion.shift, follow)

    if settings.rigidity == "similarity":
        return similarity_only

    if settings.rigidity == "partwise":
        labels = split_into_parts(source, visible, settings.max_parts, PART_TOLERANCE_PX * sketch_px)
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
            return followed(moved, overall.shift, follow)

        return partwise

    bending = ThinPlateDeformation(source[0], points, subject_box, THIN_PLATE_SMOOTHING)

    def deformable(start: np.ndarray, now: np.ndarray, shown: np.ndarray) -> np.ndarray:
        overall = fit_affine_robust(start, now)  # the whole's turn, scale, stretch and shift; the field bends only
        bend = bending.fit(shown, now - overall.apply(start))
        scaled = overall.scaled(strength)
        return followed(scaled.apply(points) + strength * bend, scaled.shift, follow)

    return deformable


def followed(moved: np.ndarray, shift: np.ndarray, follow: bool) -> tuple[np.ndarray, np.ndarray]:
    """The moved points, without the translation when it is not followed, and the translation kept."""
    return (moved, shift) if follow else (moved - shift, np.zeros(2))


def thin_plate_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """U(r) = r² log r between every point of a (N, 2) and b (M, 2)."""
    squared = np.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=2)
    return 0.5 * squared * np.log(np.maximum(squared, 1e-12))


class ThinPlateDeformation:
    """A smooth displacement field fitted to the tracks: a regularised thin-plate spline.

    Its kernels sit on a fixed grid of `DEFORMATION_NODES`² nodes over the subject (not on
    the tracks), so every frame's fit is one small least-squares system, whatever the number
    of tracks: the displacements it predicts at the visible tracks should match theirs, and
    its bending energy (smoothing, with the subject's size = 1) keeps it smooth. A ridge on the
    field's own affine part (and a little on its shift) leaves turning, scaling and stretching
    to the affine motion it is added to: the field only bends. Were they shared, the
    smoothing would shorten the field's share and a turn would come out short.
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
        self.bending[count, count] = SHIFT_PENALTY
        self.bending[count + 1 :, count + 1 :] = AFFINE_PENALTY * np.eye(2)
        self.constraint = np.zeros((count + 3, 3))  # node weights orthogonal to affine maps (no bending energy there)
        self.constraint[:count] = np.hstack([np.ones((count, 1)), self.nodes])

    def basis(self, positions: np.ndarray) -> np.ndarray:
        """(N, nodes + 3): the node kernels, 1, x and y at the positions (sketch pixels)."""
        normalised = (positions - self.origin) / self.size
        return np.hstack([thin_plate_kernel(normalised, self.nodes), np.ones((len(normalised), 1)), normalised])

    def fit(self, visible: np.ndarray, displacements: np.ndarray) -> np.ndarray:
        """(P, 2) the field that fits the visible tracks' `displacements` (N, 2), at the points.

        Every track counts the same: they passed the forward–backward check and keep clear of
        the subject's edge, and the largest displacements are the limbs that move most, not strays.
        """
        basis = self.track_basis[visible]
        normal = basis.T @ basis / max(1, len(basis)) + self.bending
        size = len(normal)
        system = np.block([[normal, self.constraint], [self.constraint.T, np.zeros((3, 3))]])
        right = np.vstack([basis.T @ displacements / max(1, len(basis)), np.zeros((3, 2))])
        try:
            coefficients = np.linalg.solve(system, right)[:size]
        except np.linalg.LinAlgError:
            coefficients = np.linalg.lstsq(system, right, rcond=None)[0][:size]
        out = np.empty_like(self.points)
        for start in range(0, len(self.points), POINT_CHUNK):
            out[start : start + POINT_CHUNK] = self.basis(self.points[start : start + POINT_CHUNK]) @ coefficients
        return out


def split_into_parts(source: np.ndarray, visible: np.ndarray, max_parts: int, tolerance: float) -> np.ndarray:
    """(T,) part of each track: rigid parts found one after the other by consensus (sequential RANSAC).

    A hypothesis is the per-frame similarities of a seed track's nearest neighbours (one small
    patch of one rigid part); its consensus is every remaining track whose path those
    similarities explain within `tolerance` on average. The largest consensus over seeds spread
    through the remaining tracks is a part; its tracks are set aside and the next part is looked
    for, until `max_parts`, or too few tracks are left. A rigid subject is one part. Tracks no
    part took go to the part that explains them best.
    """
    starts = source[0]
    labels = np.full(source.shape[1], -1, np.int64)
    for part in range(max_parts):
        left = np.flatnonzero(labels < 0)
        if len(left) < MIN_PART_TRACKS:
            break
        best = np.zeros(0, np.int64)
        for seed in left[np.linspace(0, len(left) - 1, min(PART_SEEDS, len(left))).round().astype(int)]:
            patch = left[np.argsort(np.linalg.norm(starts[left] - starts[seed], axis=1))[:PART_SEED_TRACKS]]
            agreeing = left[rigid_misfit(source, visible, patch, left) <= tolerance]
            if len(agreeing) > len(best):
                best = agreeing
        if len(best) < MIN_PART_TRACKS:
            break
        labels[best] = part
    if labels.max() < 0:
        return np.zeros(source.shape[1], np.int64)
    labels[labels < 0] = 0
    return assign_to_best_part(source, visible, labels)


def rigid_misfit(source: np.ndarray, visible: np.ndarray, patch: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """(len(candidates),) how far, on average over the frames, each candidate track is from where
    the similarities fitted to the `patch` tracks, frame by frame, would put it."""
    total = np.zeros(len(candidates))
    counted = np.zeros(len(candidates))
    for t in range(1, len(source)):
        shown = patch[visible[t, patch]]
        if len(shown) < MIN_FIT_TRACKS:
            continue
        motion = fit_similarity(source[0][shown], source[t][shown])
        seen = visible[t, candidates]
        total += seen * np.linalg.norm(source[t][candidates] - motion.apply(source[0][candidates]), axis=1)
        counted += seen
    return np.where(counted > 0, total / np.maximum(counted, 1), np.inf)


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


def continue_last_motion(values: np.ndarray, times: np.ndarray, t: int) -> np.ndarray:
    """Frame t at the last step's velocity (the subject has left the frame); frames may be unevenly spaced."""
    if t < 2:
        return values[t - 1]
    step = times[t - 1] - times[t - 2]
    ratio = (times[t] - times[t - 1]) / step if step > 0 else 1.0
    return values[t - 1] + ratio * (values[t - 1] - values[t - 2])


def mean_spacing(times: np.ndarray) -> float:
    return float(np.mean(np.diff(times))) if len(times) > 1 else 1.0


def smooth_over_time(frames: np.ndarray, sigma_s: float, times: np.ndarray | None = None) -> np.ndarray:
    """Smooth (F, ...) values over time: a local straight line through each frame's neighbours.

    Each frame becomes the value at its own time of the straight line fitted, by least squares
    with Gaussian weights in real time (`sigma_s` seconds), to the frames around it. So frames
    sampled unevenly from a clip are weighted by how far apart they really are, and a steady
    motion (linear in time) is left exactly as it is, at the ends too. `times` default to
    0, 1, 2, … (then `sigma_s` is in frames).
    """
    num_frames = len(frames)
    times = np.arange(num_frames, dtype=np.float64) if times is None else np.asarray(times, dtype=np.float64)
    if sigma_s <= 0 or num_frames < 3:
        return frames
    offsets = times[None, :] - times[:, None]  # (F, F): neighbour minus frame
    weights = np.exp(-0.5 * (offsets / sigma_s) ** 2)
    s0, s1, s2 = weights.sum(axis=1), (weights * offsets).sum(axis=1), (weights * offsets**2).sum(axis=1)
    determinant = s0 * s2 - s1 * s1
    # the fitted line's value at offset 0: Σ w_j (s2 − s1·d_j) y_j / det, a weighted mean when det vanishes
    coefficients = np.where(determinant[:, None] > 1e-12 * s0[:, None] ** 2, weights * (s2[:, None] - s1[:, None] * offsets) / np.where(determinant > 0, determinant, 1.0)[:, None], weights / s0[:, None])
    flat = frames.reshape(num_frames, -1)
    return (coefficients @ flat).reshape(frames.shape)
