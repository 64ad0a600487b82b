"""Moving the sketch like the tracked subject (step 2 of the preview): the subject's box onto the
sketch, a similarity per frame, rigid parts or a smooth deformation on top, smoothed over time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..settings import PreviewSettings
from ..vector.sketch import Sketch
from .similarity import fit_similarity, fit_similarity_robust
from .tracking import MIN_FIT_TRACKS, SubjectTracks

MIN_PART_TRACKS = 8  # a part needs this many tracks
DEFORMATION_NODES = 7  # the deformation's kernels sit on a 7 × 7 grid over the subject
PART_TOLERANCE_PX = 0.75  # one similarity that explains a part this well is not split
PART_SPLIT_GAIN = 0.6  # a split must bring the error below this fraction of the part's
PART_BLEND = 0.08  # width of the blend between parts, as a fraction of the subject's size
PART_NEIGHBOURS = 5  # a control point's distance to a part is to its 5th nearest track
PART_POSITION_WEIGHT = 0.5  # how much being near each other counts when splitting into parts
THIN_PLATE_SMOOTHING = 3e-3  # regularisation of the deformation (subject size = 1)
MIN_SKETCH_SIDE = 0.02  # of the canvas: the extent of a dot or a line is widened to this
POINT_CHUNK = 4096  # control points evaluated at once (bounds memory on huge sketches)


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
        points, still = sketch.flat_points(), sketch.still_points()
        points = points[~still] if (~still).any() else points  # what moves: a pinned ground line does not widen the extent
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
    still = sketch.still_points()  # pinned (and invisible) paths stay where they are drawn
    frames[:, still] = points[still]
    return frames


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


