"""Sub-pixel point tracks and drift-free alignment to the first frame, with OpenCV.

Tracks are OpenCV's pyramidal Lucas–Kanade (`calcOpticalFlowPyrLK`), each checked forward
then backward: a track whose backward run misses its start by more than a fraction of a
pixel is dropped (it was hidden, ran off texture, or straddles two motions), and so is one
whose window no longer looks like where it came from (the subject ran over it).

Chaining frame-to-frame tracks adds each step's small error; for turns and zooms LK reads a
few per cent short, which adds up to pixels. `align_to_first` removes that drift the classic
way: frame t is warped back into the first frame by the current estimate of its motion (a
similarity for the subject, a homography for the camera), what is left over is measured by
LK between the first frame and the warped one (small, and the same look on both sides, where
LK is unbiased), and the motion is refitted to it (`estimateAffinePartial2D`, `findHomography`,
both robust). Two or three rounds bring the estimate to the noise floor (~0.02 px).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..errors import PreviewError

LK_WINDOW_PX = 15  # LK window at 256 px frames (scaled with the frame size, kept odd)
SEED_LEVELS = 3  # pyramid levels for frame-to-frame seed tracks: motions of up to ~2^3 windows per step
ALIGN_LEVELS = 1  # … and for the leftover motion in a warped-back frame, which is small
LK_ITERATIONS = 30
LK_EPSILON = 0.01  # px: an LK iteration that moves less has converged
FORWARD_BACKWARD_PX = 0.3  # a track whose backward run misses its start by more is dropped …
FORWARD_BACKWARD_RELATIVE = 0.02  # … plus this fraction of its step
CHAINED_FORWARD_BACKWARD_PX = 0.6  # frame to frame on a turning or bending part, LK reads less exactly
LK_MIN_EIGENVALUE = 1e-3  # windows flatter than this have no texture to track
LK_MAX_ERROR = 12.0  # mean grey-level difference between a window and where LK put it, above which the look changed
MIN_ALIGN_POINTS = 6  # fewer tracked points cannot fit a motion
ALIGN_ROUNDS = 3
CONVERGED_PX = 0.01  # a refit that moves the points less than this ends the rounds
ROBUST_PX = 0.5  # a point farther than this from the fitted motion is an outlier (RANSAC), at 256 px

Fit = Callable[[np.ndarray, np.ndarray, float], np.ndarray | None]


def import_cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise PreviewError("the motion preview needs OpenCV: pip install opencv-python-headless") from None
    return cv2


@dataclass(frozen=True)
class PointTracker:
    """Pyramidal Lucas–Kanade with a forward–backward check, sized for the frames' resolution."""

    pixel_scale: float = 1.0  # pixels of these frames per pixel of a 256 px frame
    levels: int = ALIGN_LEVELS  # pyramid levels above the frame itself
    window_px: float = LK_WINDOW_PX  # window side at 256 px frames
    forward_backward_px: float = FORWARD_BACKWARD_PX  # at 256 px frames

    @property
    def window(self) -> int:
        side = max(7, round(self.window_px * self.pixel_scale))
        return side if side % 2 else side + 1

    def track(self, first: np.ndarray, second: np.ndarray, points: np.ndarray, guess: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Where `points` (N, 2) of grey image `first` are in `second`, and which passed the check.

        `guess` (N, 2) starts the search (OpenCV's OPTFLOW_USE_INITIAL_FLOW)."""
        cv2 = import_cv2()
        if len(points) == 0:
            return points.copy(), np.zeros(0, bool)
        window = (self.window, self.window)
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, LK_ITERATIONS, LK_EPSILON)
        start = np.ascontiguousarray(points, dtype=np.float32)
        flags = 0
        seed = None
        if guess is not None:
            seed, flags = np.ascontiguousarray(guess, dtype=np.float32).copy(), cv2.OPTFLOW_USE_INITIAL_FLOW
        moved, status, error = cv2.calcOpticalFlowPyrLK(
            first, second, start, seed, winSize=window, maxLevel=self.levels, criteria=criteria, flags=flags, minEigThreshold=LK_MIN_EIGENVALUE
        )
        back, back_status, _ = cv2.calcOpticalFlowPyrLK(
            second, first, moved, start.copy(), winSize=window, maxLevel=self.levels, criteria=criteria,
            flags=cv2.OPTFLOW_USE_INITIAL_FLOW, minEigThreshold=LK_MIN_EIGENVALUE,
        )  # fmt: skip
        step = np.linalg.norm(moved - start, axis=1)
        missed = np.linalg.norm(back - start, axis=1)
        tolerance = self.forward_backward_px * self.pixel_scale + FORWARD_BACKWARD_RELATIVE * step
        same_look = error[:, 0] <= LK_MAX_ERROR  # the window's content changed (the subject ran over a background point)
        ok = (status[:, 0] == 1) & (back_status[:, 0] == 1) & (missed <= tolerance) & same_look & np.isfinite(moved).all(axis=1)
        return moved.astype(np.float64), ok


# ================================================================== motions as 3×3 matrices
def apply_motion(motion: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) points by a 3×3 homography (an affine map or similarity as a special case)."""
    mapped = points @ motion[:2, :2].T + motion[:2, 2]
    denominator = points @ motion[2, :2] + motion[2, 2]
    return mapped / denominator[:, None]


def as_matrix(affine: np.ndarray) -> np.ndarray:
    """A 2×3 affine map as 3×3."""
    return np.vstack([np.asarray(affine, dtype=np.float64), [0.0, 0.0, 1.0]])


def fit_similarity_matrix(source: np.ndarray, target: np.ndarray, threshold: float) -> np.ndarray | None:
    """The turn, uniform scale and shift most points agree with (OpenCV's estimateAffinePartial2D, RANSAC then refined)."""
    cv2 = import_cv2()
    if len(source) < MIN_ALIGN_POINTS:
        return None
    affine, _ = cv2.estimateAffinePartial2D(
        source.astype(np.float32), target.astype(np.float32), method=cv2.RANSAC, ransacReprojThreshold=threshold, maxIters=2000, refineIters=20
    )
    return None if affine is None or not np.isfinite(affine).all() else as_matrix(affine)


def fit_homography_matrix(source: np.ndarray, target: np.ndarray, threshold: float) -> np.ndarray | None:
    """The homography most points agree with (OpenCV's findHomography, RANSAC; refined on the inliers)."""
    cv2 = import_cv2()
    if len(source) < max(8, MIN_ALIGN_POINTS):
        return None
    homography, _ = cv2.findHomography(source.astype(np.float32), target.astype(np.float32), cv2.RANSAC, threshold, maxIters=2000, confidence=0.995)
    if homography is None or not np.isfinite(homography).all() or abs(homography[2, 2]) < 1e-9:
        return None
    return homography / homography[2, 2]


# ================================================================== drift-free alignment
def warp_to_first(frame: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """Frame t seen in first-frame coordinates: out(x) = frame(motion(x)), 0 outside the frame."""
    cv2 = import_cv2()
    height, width = frame.shape[:2]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return cv2.warpPerspective(frame, motion.astype(np.float64), (width, height), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def inside_frame(points: np.ndarray, width: int, height: int, margin: float) -> np.ndarray:
    return np.all((points >= margin) & (points <= np.array([width, height]) - margin), axis=1)


@dataclass
class Alignment:
    """A motion first frame → frame t and how well it is supported."""

    motion: np.ndarray  # 3×3, first-frame pixel → frame-t pixel
    residual: np.ndarray  # (N, 2) where each point is in the warped-back frame (its own motion beyond `motion`)
    ok: np.ndarray  # (N,) the point was tracked in the warped-back frame
    rounds: int


def align_to_first(
    first: np.ndarray, frame: np.ndarray, points: np.ndarray, motion: np.ndarray, fit: Fit, tracker: PointTracker, guess: np.ndarray | None = None
) -> Alignment:
    """Refine `motion` (first frame → `frame`) until the first frame's `points` sit still in the
    warped-back frame: warp, measure the leftover motion with LK, refit, repeat (module docstring).

    Points whose motion maps them off the frame are not used. `guess` (N, 2) is where the points
    were in the previous warped-back frame (their own motion so far, a good start for LK).
    """
    height, width = frame.shape[:2]
    margin = tracker.window / 2
    threshold = ROBUST_PX * tracker.pixel_scale
    residual, ok = points.copy(), np.zeros(len(points), bool)
    rounds = 0
    for rounds in range(1, ALIGN_ROUNDS + 1):
        visible = inside_frame(apply_motion(motion, points), width, height, margin)
        if visible.sum() < MIN_ALIGN_POINTS:
            ok[:] = False
            break
        moved, tracked = tracker.track(first, warp_to_first(frame, motion), points[visible], None if guess is None else guess[visible])
        residual = points.copy()
        residual[visible] = moved
        ok = np.zeros(len(points), bool)
        ok[visible] = tracked
        correction = fit(points[ok], residual[ok], threshold) if ok.sum() >= MIN_ALIGN_POINTS else None
        if correction is None:
            break
        motion = motion @ correction
        shift = np.linalg.norm(apply_motion(correction, points[ok]) - points[ok], axis=1).max()
        residual = apply_inverse(correction, residual)  # the points' own motion, beyond the refitted one
        guess = residual
        if shift < CONVERGED_PX:
            break
    return Alignment(motion, residual, ok, rounds)


def apply_inverse(motion: np.ndarray, points: np.ndarray) -> np.ndarray:
    return apply_motion(np.linalg.inv(motion), points)
