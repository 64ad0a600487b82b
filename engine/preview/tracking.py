"""Subject motion from the reference clip (step 1 of the preview, see engine/preview/__init__.py).

1. Seed tracks: a grid of first-frame points carried frame to frame by pyramidal LK with a
   forward–backward check (engine/preview/alignment.py); a point also dies when it nears the
   frame's edge or its colour jumps (the subject ran over it).
2. The camera: per step, the homography most tracks agree with (RANSAC), chained, then
   aligned to the first frame without drift on the background's points.
3. The coarse subject: the largest connected region of points that move as the subject's
   overall motion predicts, once the camera is undone (flow bleeding onto the background
   moves points less), holes filled; a user-given box says where to look instead.
4. The subject's motion: per output frame, a similarity seeded by the tracks and aligned to
   the first frame without drift; then the region to the pixel (segmentation.py), its tight
   box, and the final tracks: each point's own motion beyond the similarity, measured by LK in
   the frames warped back by it (direct from the first frame, or from the previous warped frame
   where the subject's look has changed), so a rigid subject's tracks have no drift at all.

Coordinates: inside this module OpenCV's (pixel (i, j) is the point (j, i)); what it returns
(`SubjectTracks`) is in pixel-edge coordinates (pixel (i, j) covers [j, j+1) × [i, i+1)), like
the sketch's canvas and the user's box.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import PreviewError
from ..settings import PreviewSettings
from .alignment import (
    CHAINED_FORWARD_BACKWARD_PX,
    SEED_LEVELS,
    PointTracker,
    align_to_first,
    apply_motion,
    fit_homography_matrix,
    fit_similarity_matrix,
    import_cv2,
    inside_frame,
    warp_to_first,
)
from .segmentation import mask_box, subject_mask

REFERENCE_SIZE = 256  # px; the tolerances below are for frames of this size
GRID_STEP = 4  # px between the subject's tracked points on the first frame
SEED_GRID_STEP = 8  # px between the seed points (frame to frame, all over the frame)
SEED_WINDOW_PX = 11  # px, their LK window
CAMERA_RANSAC_PX = 1.0  # a track agrees with the camera's motion within this distance
MIN_CAMERA_TRACKS = 40  # first-frame tracks needed to fit the camera straight from the first frame
MIN_CAMERA_SHARE = 0.3  # of the frame's seed points that must agree with a camera motion for it to count
MAX_CAMERA_POINTS = 600  # background points used to align the camera (spread over the frame)
MAX_FIRST_PASS_POINTS = 300  # subject points of the first alignment (before the region is known to the pixel)
CAMERA_STILL_PX = 0.1  # a camera whose chained motion moves the frame's corners less than this is still
BORDER_PX = 6  # tracks this close to the frame's edge are dropped, where content enters and leaves
COLOUR_CHANGE = 20.0  # a seed track dies when its (blurred) colour changes more than this from one frame to the next
COLOUR_DRIFT = 30.0  # … or more than this from its first frame (0–255 RGB distance)
COLOUR_BLUR_PX = 1.5  # Gaussian blur of the frames before colours are compared
NO_MOTION_PX = 1.0  # a subject must move at least this far (after removing the camera's motion)
MIN_SUBJECT_TRACKS = 8  # fewer moving points than this is noise, not a subject
MIN_FIT_TRACKS = 6  # fewer visible tracks in a frame: its motion is extrapolated
LOST_FRACTION = 0.5  # warn when fewer than this fraction of the subject's tracks are visible
EDGE_CLEARANCE = 0.5  # of the LK window: final tracks keep this far inside the subject's region
RESIDUAL_SPREAD_CELLS = 1.5  # Gaussian sigma, in grid cells, that spreads the points' own motion over the frame


@dataclass
class SubjectTracks:
    """Where the subject's points go, in first-frame pixel-edge coordinates (the camera's motion removed)."""

    tracks: np.ndarray  # (F, T, 2) float64
    visible: np.ndarray  # (F, T) bool: the track is still on the subject in this frame
    box: tuple[float, float, float, float]  # the subject's extent on the first frame, x0 y0 x1 y1
    cameras: np.ndarray  # (F, 3, 3): first-frame pixel → frame-t pixel, the camera's motion
    frame_size: tuple[int, int]  # (height, width) of the analysed frames
    diagnostics: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    times_s: np.ndarray | None = None  # (F,) when each frame is shown, from the first (None: evenly spaced)

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

    def frame_times(self) -> np.ndarray:
        """(F,) each frame's time in seconds from the first (evenly spaced frames: 1 apart)."""
        return np.arange(self.num_frames, dtype=np.float64) if self.times_s is None else np.asarray(self.times_s, dtype=np.float64)


def track_subject(
    frames: np.ndarray, settings: PreviewSettings = PreviewSettings(), substeps: int = 1, times_s: Any = None
) -> SubjectTracks:
    """Find the moving subject in `frames` (N, H, W, 3) uint8 and track its points, camera removed.

    With `substeps` k > 1, only every k-th frame is an output frame (N = k·(F − 1) + 1); the
    frames between shorten each seed step, which keeps fast motion within LK's reach. `times_s`
    (F,) are the output frames' times (uneven when sampled from a clip), kept for smoothing.
    """
    frames = checked_frames(frames)
    if not isinstance(substeps, int) or substeps < 1 or (len(frames) - 1) % substeps:
        raise PreviewError(f"{len(frames)} frames cannot be split into steps of {substeps}: give k·(F − 1) + 1 frames")
    num_frames, height, width = frames.shape[:3]
    outputs = slice(None, None, substeps)
    num_outputs = len(range(num_frames)[outputs])
    times = checked_times(times_s, num_outputs)
    pixel_scale = max(height, width) / REFERENCE_SIZE
    user_box = clipped_box(settings.subject_box, width, height)
    if num_frames == 1:
        return still_subject(np.eye(3)[None], user_box, (height, width), times, "the video gives a single frame: there is no motion to preview")

    import_cv2().setRNGSeed(settings.seed)
    started = time.perf_counter()
    grey = to_grey(frames)
    tracker = PointTracker(pixel_scale)
    step = max(2, round(SEED_GRID_STEP * pixel_scale))
    grid, grid_shape = grid_points(width, height, step)
    seeder = PointTracker(pixel_scale, levels=SEED_LEVELS, window_px=SEED_WINDOW_PX)
    raw, visible = chain_tracks(grey, grid, seeder, blurred(frames, pixel_scale), pixel_scale)
    in_box = None if user_box is None else points_in_box(grid, edge_box_to_cv(user_box))
    cameras = camera_motions(raw, visible, in_box, pixel_scale)
    motion = track_motion(undo_cameras(raw, cameras), visible)
    region = subject_region(motion, grid_shape, in_box, pixel_scale)
    seed_s = time.perf_counter() - started

    diagnostics: dict[str, Any] = {
        "tracker": "lucas-kanade",
        "flow_steps": num_frames - 1,
        "seed_seconds": round(seed_s, 3),
        "grid_step_px": step,
        "box_source": "detected" if user_box is None else "user",
    }
    if region.sum() < MIN_SUBJECT_TRACKS:
        largest = motion if in_box is None else motion[in_box]
        result = still_subject(to_edge_cameras(cameras[outputs]), user_box, (height, width), times, no_motion_message(float(largest.max(initial=0.0))))
        result.diagnostics.update(diagnostics, num_tracks=0, camera_motion_px=round(camera_travel(cameras, width, height), 2))
        return result

    grey_out, frames_out = grey[outputs], frames[outputs]
    raw_out, visible_out = raw[outputs], visible[outputs]
    coarse = cell_mask(region, grid_shape, step, (height, width))
    cameras_out = align_cameras(grey_out, grid, coarse, cameras[outputs], tracker)
    seeds = np.flatnonzero(region)
    motions = seeded_similarities(grid[seeds], raw_out[:, seeds], visible_out[:, seeds], pixel_scale)
    fine_grid = grid_points(width, height, max(2, round(GRID_STEP * pixel_scale)))[0]
    points = spread(clear_of_edges(fine_grid, coarse, tracker), MAX_FIRST_PASS_POINTS)  # enough for the similarity
    subject = align_subject(grey_out, points, motions, tracker)

    if user_box is None:
        fields = [subject_field(subject.motions[t], points, subject.residuals[t], subject.ok[t], (height, width), tracker) for t in range(num_outputs)]
        anchors = points[subject.ok.mean(axis=0) >= 0.5]  # tracked in most frames: surely on the subject
        mask = subject_mask(frames_out[0], frames_out, cameras_out, fields, coarse, anchors, pixel_scale)
        box = mask_box(mask)
        points = clear_of_edges(fine_grid, mask, tracker)
        subject = align_subject(grey_out, points, subject.motions, tracker)
    else:
        box = user_box

    tracks = np.stack([apply_motion(np.linalg.inv(cameras_out[t]), apply_motion(subject.motions[t], subject.residuals[t])) for t in range(num_outputs)])
    shown = subject.ok & np.stack([inside_frame(apply_motion(subject.motions[t], subject.residuals[t]), width, height, BORDER_PX * pixel_scale) for t in range(num_outputs)])
    shown[0] = True
    diagnostics.update(
        camera_motion_px=round(camera_travel(cameras_out, width, height), 2),
        subject_motion_px=round(float(motion[region].max(initial=0.0)), 2),
        num_tracks=len(points),
        track_seconds=round(time.perf_counter() - started, 3),
    )
    result = SubjectTracks(tracks + 0.5, shown, box, to_edge_cameras(cameras_out), (height, width), diagnostics, times_s=times)
    result.warnings.extend(visibility_warnings(result.visible))
    return result


def no_motion_message(largest_px: float) -> str:
    return (
        f"no subject motion detected (the largest motion is {largest_px:.1f} px after removing the camera's): "
        "the preview is still; choose a clip where the subject moves, or mark the subject with a box"
    )


# ================================================================================== input
def checked_frames(frames: Any) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or 0 in frames.shape:
        raise PreviewError(f"frames must be a uint8 array (F, H, W, 3), not {frames.dtype} {frames.shape}")
    if min(frames.shape[1:3]) < 16:
        raise PreviewError(f"frames of {frames.shape[2]}×{frames.shape[1]} px are too small to track; use at least 16 px")
    return frames


def checked_times(times_s: Any, count: int) -> np.ndarray | None:
    """The output frames' times as (F,) increasing seconds, or None (evenly spaced)."""
    if times_s is None:
        return None
    times = np.asarray(times_s, dtype=np.float64).reshape(-1)
    if len(times) != count or not np.isfinite(times).all() or (count > 1 and (np.diff(times) < 0).any()):
        raise PreviewError(f"frame times must be {count} increasing numbers of seconds, one per output frame")
    return times - times[0]


def to_grey(frames: np.ndarray) -> list[np.ndarray]:
    cv2 = import_cv2()
    return [cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY) for frame in frames]


def blurred(frames: np.ndarray, pixel_scale: float) -> np.ndarray:
    """(F, H, W, 3) float32 frames, slightly blurred so that colours compare despite sub-pixel errors."""
    cv2 = import_cv2()
    sigma = COLOUR_BLUR_PX * pixel_scale
    return np.stack([cv2.GaussianBlur(frame.astype(np.float32), (0, 0), sigma) for frame in frames])


def sample_field(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear samples of an (H, W, C) image at (N, 2) positions (x, y), OpenCV coordinates."""
    cv2 = import_cv2()
    map_x = np.ascontiguousarray(points[None, :, 0], dtype=np.float32)
    map_y = np.ascontiguousarray(points[None, :, 1], dtype=np.float32)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0].astype(np.float64)


# ============================================================================== seed tracks
def grid_points(width: int, height: int, step: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Points every `step` px (OpenCV coordinates), row by row: (N, 2) and the grid's (rows, cols)."""
    xs = np.arange((step - 1) / 2, width - 0.5, step)
    ys = np.arange((step - 1) / 2, height - 0.5, step)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    return grid, (len(ys), len(xs))


def chain_tracks(
    grey: list[np.ndarray], grid: np.ndarray, tracker: PointTracker, colours: np.ndarray, pixel_scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Carry the grid through all frames: (F, N, 2) positions in each frame and (F, N) visibility.

    A track dies, and stays still, when it nears the frame's edge, fails the forward–backward
    check, or changes colour: a background point that the subject runs over would otherwise be
    swept along with it.
    """
    height, width = grey[0].shape[:2]
    positions = [grid]
    visible = [np.ones(len(grid), bool)]
    first_colour = colour = sample_field(colours[0], grid)
    for t in range(len(grey) - 1):
        alive = visible[-1]
        moved = positions[-1].copy()
        moved[alive], ok = tracker.track(grey[t], grey[t + 1], positions[-1][alive])
        consistent = np.zeros(len(grid), bool)
        consistent[alive] = ok
        inside = inside_frame(moved, width, height, BORDER_PX * pixel_scale)
        new_colour = sample_field(colours[t + 1], moved)
        same_look = (np.linalg.norm(new_colour - colour, axis=1) <= COLOUR_CHANGE) & (np.linalg.norm(new_colour - first_colour, axis=1) <= COLOUR_DRIFT)
        alive = alive & consistent & inside & same_look
        positions.append(np.where(alive[:, None], moved, positions[-1]))
        visible.append(alive)
        colour = np.where(alive[:, None], new_colour, colour)
    return np.stack(positions), np.stack(visible)


# ================================================================================== camera
def camera_motions(raw: np.ndarray, visible: np.ndarray, in_box: np.ndarray | None, pixel_scale: float) -> np.ndarray:
    """(F, 3, 3) homographies first frame → frame t: the motion most of the frame agrees with.

    Fitted from the first frame straight to frame t while enough first-frame tracks live (a
    slow subject's one-step motion is within any threshold, but not its motion since the first
    frame, so it cannot pull the camera along); chained step by step from there on (a long pan
    leaves few of them; when too few are left the camera is held where it was). A fit that less than `MIN_CAMERA_SHARE` of the frame's seed points
    agree with is no camera motion: on a plain background only the subject has texture to
    track, and the camera, whatever it does, shows nothing. Tracks inside the user's subject
    box are left out."""
    cameras = [np.eye(3)]
    usable = np.ones(raw.shape[1], bool) if in_box is None else ~in_box
    needed = MIN_CAMERA_SHARE * usable.sum()
    threshold = CAMERA_RANSAC_PX * pixel_scale
    for t in range(1, len(raw)):
        direct = visible[t] & usable
        if direct.sum() >= MIN_CAMERA_TRACKS:
            fitted = supported_homography(raw[0][direct], raw[t][direct], threshold, needed)
            cameras.append(np.eye(3) if fitted is None else fitted)
            continue
        both = visible[t] & visible[t - 1] & usable
        step = supported_homography(raw[t - 1][both], raw[t][both], threshold, needed)  # too few left: held where it was
        cameras.append((np.eye(3) if step is None else step) @ cameras[-1])
    return np.stack(cameras)


def supported_homography(source: np.ndarray, target: np.ndarray, threshold: float, needed: float) -> np.ndarray | None:
    """The RANSAC homography of the tracks, if at least `needed` of them agree with it."""
    fitted = fit_homography_matrix(source, target, threshold)
    if fitted is None:
        return None
    agree = np.linalg.norm(apply_motion(fitted, source) - target, axis=1) <= threshold
    return fitted if agree.sum() >= needed else None


def align_cameras(grey: list[np.ndarray], grid: np.ndarray, subject: np.ndarray, cameras: np.ndarray, tracker: PointTracker) -> np.ndarray:
    """Each output frame's camera aligned to the first frame on background points (no drift)."""
    cv2 = import_cv2()
    clearance = cv2.dilate(subject.astype(np.uint8), np.ones((tracker.window, tracker.window), np.uint8)).astype(bool)
    background = spread(grid[~at_points(clearance, grid)], MAX_CAMERA_POINTS)
    if camera_travel(cameras, *grey[0].shape[::-1]) < CAMERA_STILL_PX * tracker.pixel_scale:
        return np.repeat(np.eye(3)[None], len(cameras), axis=0)  # a camera on a tripod: exactly still
    aligned = [np.eye(3)]
    for t in range(1, len(grey)):
        alignment = align_to_first(grey[0], grey[t], background, cameras[t], fit_homography_matrix, tracker)
        supported = alignment.ok.sum() >= max(8, MIN_CAMERA_SHARE * len(background))
        aligned.append(alignment.motion if supported else cameras[t])
    return np.stack(aligned)


def spread(points: np.ndarray, limit: int) -> np.ndarray:
    """At most `limit` of the points, evenly spread through them (they are in row order)."""
    if len(points) <= limit:
        return points
    return points[np.linspace(0, len(points) - 1, limit).round().astype(int)]


def undo_cameras(raw: np.ndarray, cameras: np.ndarray) -> np.ndarray:
    """Track positions in first-frame coordinates: what remains is the subject's own motion."""
    return np.stack([apply_motion(np.linalg.inv(camera), positions) for camera, positions in zip(cameras, raw)])


def camera_travel(cameras: np.ndarray, width: int, height: int) -> float:
    """How far the camera's motion moves the frame's corners at most (px), for diagnostics."""
    corners = np.array([[0, 0], [width, 0], [0, height], [width, height]], dtype=np.float64)
    return float(max(np.linalg.norm(apply_motion(camera, corners) - corners, axis=1).mean() for camera in cameras))


def to_edge_cameras(cameras: np.ndarray) -> np.ndarray:
    """Homographies in OpenCV coordinates → pixel-edge coordinates (x_edge = x_cv + 0.5)."""
    shift, back = np.eye(3), np.eye(3)
    shift[:2, 2], back[:2, 2] = 0.5, -0.5
    return np.stack([shift @ camera @ back for camera in cameras])


# ========================================================================= coarse subject
def track_motion(tracks: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(N,) how far each track gets from its start while it is visible."""
    distance = np.linalg.norm(tracks - tracks[:1], axis=2)
    return np.where(visible, distance, 0.0).max(axis=0)


def subject_region(motion: np.ndarray, grid_shape: tuple[int, int], candidates: np.ndarray | None, pixel_scale: float) -> np.ndarray:
    """(N,) seed points on the subject: the largest connected region of points that move (the
    camera's motion undone), gaps of one grid cell closed (the still centre of a turn, a joint)
    and holes filled. Its edge is only as good as the tracks' window; segmentation.py refines it.
    `candidates` (a user box) limits where it may be."""
    from .segmentation import fill_holes

    cv2 = import_cv2()
    allowed = np.ones_like(motion, bool) if candidates is None else candidates
    moving = (motion > NO_MOTION_PX * pixel_scale) & allowed
    if moving.sum() < MIN_SUBJECT_TRACKS:
        return np.zeros_like(motion, bool)
    mask = cv2.morphologyEx(moving.reshape(grid_shape).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count < 2:
        return np.zeros_like(motion, bool)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return fill_holes(labels == largest).reshape(-1) & allowed


def cell_mask(region: np.ndarray, grid_shape: tuple[int, int], step: int, frame_size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the grid region as pixels, each grid point standing for its step × step cell."""
    height, width = frame_size
    cells = np.repeat(np.repeat(region.reshape(grid_shape), step, axis=0), step, axis=1)
    out = np.zeros((height, width), bool)
    out[: min(height, cells.shape[0]), : min(width, cells.shape[1])] = cells[:height, :width]
    return out


def at_points(mask: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N,) the mask's value at the pixels nearest to the points (OpenCV coordinates)."""
    height, width = mask.shape
    cols = np.clip(np.round(points[:, 0]).astype(int), 0, width - 1)
    rows = np.clip(np.round(points[:, 1]).astype(int), 0, height - 1)
    return mask[rows, cols]


def clear_of_edges(grid: np.ndarray, mask: np.ndarray, tracker: PointTracker) -> np.ndarray:
    """The grid points whose LK window lies (mostly) inside the region: a window across its edge sees two motions."""
    cv2 = import_cv2()
    for fraction in (EDGE_CLEARANCE, EDGE_CLEARANCE / 2, 0.0):
        side = 2 * round(fraction * tracker.window / 2) + 1
        inner = cv2.erode(mask.astype(np.uint8), np.ones((side, side), np.uint8)).astype(bool) if side > 1 else mask
        chosen = grid[at_points(inner, grid)]
        if len(chosen) >= 2 * MIN_SUBJECT_TRACKS:
            return chosen
    return grid[at_points(mask, grid)]


# ========================================================================= subject motion
def seeded_similarities(starts: np.ndarray, raw: np.ndarray, visible: np.ndarray, pixel_scale: float) -> np.ndarray:
    """(F, 3, 3) the subject's image motion (camera included) per output frame, from the seed tracks;
    extrapolated at constant speed where too few of them are left."""
    motions = [np.eye(3)]
    for t in range(1, len(raw)):
        shown = visible[t]
        fitted = fit_similarity_matrix(starts[shown], raw[t][shown], CAMERA_RANSAC_PX * pixel_scale) if shown.sum() >= MIN_FIT_TRACKS else None
        motions.append(fitted if fitted is not None else extrapolated(motions))
    return np.stack(motions)


def extrapolated(motions: list[np.ndarray]) -> np.ndarray:
    """The next motion at the last step's speed (the last one when there is no step yet)."""
    if len(motions) < 2:
        return motions[-1]
    return motions[-1] @ np.linalg.inv(motions[-2]) @ motions[-1]


@dataclass
class SubjectAlignment:
    motions: np.ndarray  # (F, 3, 3) first frame → frame t, the subject's similarity (camera included)
    residuals: np.ndarray  # (F, N, 2) each point's position in the frame warped back by that motion
    ok: np.ndarray  # (F, N) the point was tracked there


def align_subject(grey: list[np.ndarray], points: np.ndarray, seeds: np.ndarray, tracker: PointTracker) -> SubjectAlignment:
    """Per output frame: the subject's similarity aligned to the first frame, and each point's own motion.

    A point is tracked from the first frame straight into the warped-back frame (no drift); where
    that fails (the subject's look there has changed: a bending limb), from its place in the
    previous warped-back frame instead.
    """
    motions, residuals, ok = [np.eye(3)], [points.copy()], [np.ones(len(points), bool)]
    chained = replace(tracker, forward_backward_px=CHAINED_FORWARD_BACKWARD_PX)
    for t in range(1, len(grey)):
        seed = seeds[t] if t < len(seeds) else extrapolated(motions)
        alignment = align_to_first(grey[0], grey[t], points, seed, fit_similarity_matrix, tracker, guess=residuals[-1])
        motion, residual, tracked = alignment.motion, alignment.residual.copy(), alignment.ok.copy()
        if tracked.sum() < MIN_FIT_TRACKS:
            motion = extrapolated(motions)
        lost = ~tracked & ok[-1]
        if lost.any():  # from the previous warped-back frame, where the look is closer
            previous = warp_to_first(grey[t - 1], motions[-1])
            moved, again = chained.track(previous, warp_to_first(grey[t], motion), residuals[-1][lost])
            residual[lost] = np.where(again[:, None], moved, residuals[-1][lost])
            tracked[np.flatnonzero(lost)[again]] = True
        residual[~tracked] = residuals[-1][~tracked]
        motions.append(motion)
        residuals.append(residual)
        ok.append(tracked)
    return SubjectAlignment(np.stack(motions), np.stack(residuals), np.stack(ok))


def subject_field(
    motion: np.ndarray, points: np.ndarray, residuals: np.ndarray, ok: np.ndarray, frame_size: tuple[int, int], tracker: PointTracker
) -> np.ndarray:
    """(H, W, 2) float32: where each first-frame pixel is in frame t if it moves with the subject:
    its own motion beyond the similarity (the tracked points' residuals, spread smoothly over
    the frame by normalised convolution, so a second part or a bending limb moves as it does),
    then the similarity."""
    from .segmentation import pixel_grid

    cv2 = import_cv2()
    height, width = frame_size
    cell = max(2, round(GRID_STEP * tracker.pixel_scale))
    rows, cols = -(-height // cell), -(-width // cell)
    sums = np.zeros((rows, cols, 2), np.float32)
    counts = np.zeros((rows, cols), np.float32)
    r = np.clip(np.round((points[ok, 1] - (cell - 1) / 2) / cell).astype(int), 0, rows - 1)
    c = np.clip(np.round((points[ok, 0] - (cell - 1) / 2) / cell).astype(int), 0, cols - 1)
    np.add.at(sums, (r, c), (residuals[ok] - points[ok]).astype(np.float32))
    np.add.at(counts, (r, c), 1.0)
    sigma = RESIDUAL_SPREAD_CELLS
    weight = cv2.GaussianBlur(counts, (0, 0), sigma)
    spread = np.stack([cv2.GaussianBlur(np.ascontiguousarray(sums[..., k]), (0, 0), sigma) for k in range(2)], axis=-1)
    offsets = np.where(weight[..., None] > 1e-3, spread / np.maximum(weight, 1e-6)[..., None], 0.0).astype(np.float32)
    dense = cv2.resize(offsets, (cols * cell, rows * cell), interpolation=cv2.INTER_LINEAR)[:height, :width]
    positions = pixel_grid(width, height) + dense
    return apply_motion(motion, positions.reshape(-1, 2)).reshape(height, width, 2).astype(np.float32)


# ============================================================================== boxes, results
def points_in_box(points: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    return (points[:, 0] >= box[0]) & (points[:, 0] <= box[2]) & (points[:, 1] >= box[1]) & (points[:, 1] <= box[3])


def edge_box_to_cv(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """A pixel-edge box as the OpenCV-coordinate span of the pixel centres it covers."""
    return (box[0] - 0.5, box[1] - 0.5, box[2] - 0.5, box[3] - 0.5)


def clipped_box(box: tuple[float, float, float, float] | None, width: int, height: int) -> tuple[float, float, float, float] | None:
    """The user's box limited to the frame; refuses a box that misses the frame."""
    if box is None:
        return None
    x0, y0, x1, y1 = max(box[0], 0.0), max(box[1], 0.0), min(box[2], float(width)), min(box[3], float(height))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise PreviewError(f"the subject box {list(box)} lies outside the {width}×{height} frame; give it in frame pixels")
    return (x0, y0, x1, y1)


def still_subject(cameras: np.ndarray, box: tuple | None, frame_size: tuple[int, int], times: np.ndarray | None, warning: str) -> SubjectTracks:
    """No tracks: the sketch will stay still, and the warning says why."""
    height, width = frame_size
    num_frames = len(cameras) if times is None else len(times)
    if len(cameras) != num_frames:
        cameras = np.repeat(np.eye(3)[None], num_frames, axis=0)
    return SubjectTracks(
        tracks=np.zeros((num_frames, 0, 2)),
        visible=np.zeros((num_frames, 0), bool),
        box=box or (0.0, 0.0, float(width), float(height)),
        cameras=cameras,
        frame_size=frame_size,
        diagnostics={"num_tracks": 0},
        warnings=[warning],
        times_s=times,
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
