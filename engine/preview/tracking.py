"""Subject motion from the reference clip (step 1 of the preview, see engine/preview/__init__.py):
dense optical flow, point tracks with a forward–backward check, the camera's motion removed,
and the moving subject's region and box."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import PreviewError
from ..settings import PreviewSettings
from .similarity import fit_similarity_robust

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
LOST_FRACTION = 0.5  # warn when fewer than this fraction of the subject's tracks are visible


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


