"""The subject's first-frame region to the pixel, from what explains each pixel over time.

Optical flow and point tracks blur motion boundaries by their window (8–10 px too large a box
at 256 px), and the box sets the scale and centre of the sketch's motion. So the tracks give
only a coarse region, and each pixel is then judged by its colour: warped into every later
frame once with the camera's motion (where it would be if it were background) and once with
the subject's (where it would be on the subject): which of the two lands on the same colour?
A frame votes for the subject when only the subject's motion explains the pixel (its error is
near the typical noise and the camera's is not), for the background when only the camera's
does; a frame where both or neither explain it (flat colour, the pixel covered by the moving
subject) does not vote. A pixel is the subject's when more frames vote for it than against. The votes "for" need a telling colour: one that, were the pixel background,
the subject's motion would not find (a flat or smooth background matches itself a few pixels
away, and must not look like it moves with the subject). The
region is the largest connected part that overlaps the coarse one, holes filled.
"""

from __future__ import annotations

import numpy as np

from .alignment import apply_motion, import_cv2

COLOUR_BLUR_PX = 0.0  # blur before comparing colours, at 256 px (0: none; a blur mixes the background into the subject's edge pixels)
EVIDENCE_WINDOW = 1  # px; colour differences are averaged over this square (1: per pixel, sharpest edges)
EXPLAINED_FACTOR = 2.0  # the subject's motion explains a pixel when its colour error is within 2× its typical one on the subject …
EXPLAINED_FLOOR = 3.0  # … plus this (0–255 RGB, summed over channels)
UNEXPLAINED_FACTOR = 2.0  # … and the other hypothesis does not: its error is more than twice that
MIXED_RATIO = 0.5  # a pixel the subject's motion explains at least twice as well as the camera's is not voted against
MIN_SUBJECT_PIXELS = 16  # fewer voted subject pixels: the coarse region stands
PART_INSIDE = 0.5  # a connected part of the voted pixels is the subject's when at least half of it lies in the coarse region …
PART_SHARE = 0.02  # … and it is at least this share of the coarse region's area (not a speck)
SEAM_PX = 7  # gaps this narrow between parts (where two motions meet and neither explains a pixel) are closed
MIN_SEPARATION_PX = 3.0  # frames where the two motions move a pixel less apart than this say nothing about it (smooth textures look alike a pixel or two away)
MAX_EVIDENCE_FRAMES = 8  # frames compared (spread over the clip); more add little


def subject_mask(
    first: np.ndarray,
    frames: np.ndarray,
    cameras: np.ndarray,
    subject_fields: list[np.ndarray],
    coarse: np.ndarray,
    anchors: np.ndarray,
    pixel_scale: float,
) -> np.ndarray:
    """(H, W) bool: the subject's pixels on the first frame.

    `first` (H, W, 3) uint8 and `frames` (F, H, W, 3) the later frames; `cameras` (F, 3, 3) maps
    first-frame pixels into each frame for the background; `subject_fields` (F of (H, W, 2)
    float32) is where each first-frame pixel would be in each frame on the subject; `coarse`
    (H, W) bool is the tracks' region; `anchors` (N, 2) are points surely on the subject (tracked
    well), where the subject's motion shows how well it explains its own pixels.
    """
    height, width = coarse.shape
    sigma = COLOUR_BLUR_PX * pixel_scale
    reference = soften(first, sigma)
    grid = pixel_grid(width, height)
    errors = []  # per frame: (background error, subject error, the subject's error if the pixel were background, valid)
    for t in evidence_frames(len(frames)):
        frame = soften(frames[t], sigma)
        on_background = apply_motion(cameras[t], grid.reshape(-1, 2)).reshape(height, width, 2).astype(np.float32)
        on_subject = subject_fields[t]
        separated = np.linalg.norm(on_subject - on_background, axis=2) >= MIN_SEPARATION_PX * pixel_scale
        valid = separated & within(on_background, width, height) & within(on_subject, width, height)
        # were the pixel background, the subject's motion would look at background that is still there in
        # the first frame: its colour a few pixels away, which a smooth or flat background shares
        seen_first = apply_motion(np.linalg.inv(cameras[t]), on_subject.reshape(-1, 2)).reshape(height, width, 2).astype(np.float32)
        errors.append((
            colour_error(reference, frame, on_background), colour_error(reference, frame, on_subject),
            colour_error(reference, reference, seen_first), valid & within(seen_first, width, height),
        ))  # fmt: skip
    if not errors:
        return fill_holes(coarse)
    explained = explained_level(errors, anchor_mask(anchors, coarse))
    votes = np.zeros((height, width), np.float32)
    for background_error, subject_error, if_background, valid in errors:
        telling = if_background > UNEXPLAINED_FACTOR * explained  # a background pixel would fail the subject's test
        for_subject = telling & (subject_error <= explained) & (background_error > UNEXPLAINED_FACTOR * explained)
        # its colour does not go where the subject goes, and the camera's motion is no worse at explaining it
        # (a pixel on the subject's edge, half background, is explained by neither, but by the subject better)
        against = (subject_error > UNEXPLAINED_FACTOR * explained) & (subject_error > MIXED_RATIO * background_error)
        votes += valid * (for_subject.astype(np.float32) - against)
    subject = connected_to(votes > 0, coarse, fallback=None)
    return fill_holes(coarse) if subject is None or subject.sum() < MIN_SUBJECT_PIXELS else subject


def anchor_mask(anchors: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels at the anchor points (the coarse region when there are too few)."""
    height, width = coarse.shape
    mask = np.zeros_like(coarse)
    cols = np.clip(np.round(anchors[:, 0]).astype(int), 0, width - 1)
    rows = np.clip(np.round(anchors[:, 1]).astype(int), 0, height - 1)
    mask[rows, cols] = True
    return mask if mask.sum() >= MIN_SUBJECT_PIXELS else coarse


def explained_level(errors: list[tuple[np.ndarray, ...]], sure: np.ndarray) -> float:
    """The colour error below which the subject's motion explains a pixel: a few times its typical
    error where the subject surely is (interpolation, compression, a bending limb's leftovers)."""
    inside = np.concatenate([subject[valid & sure] for _, subject, _, valid in errors])
    typical = float(np.median(inside)) if len(inside) else 0.0
    return EXPLAINED_FACTOR * typical + EXPLAINED_FLOOR


def soften(image: np.ndarray, sigma: float) -> np.ndarray:
    cv2 = import_cv2()
    image = image.astype(np.float32)
    return cv2.GaussianBlur(image, (0, 0), sigma) if sigma > 0 else image


def evidence_frames(count: int) -> list[int]:
    """Up to `MAX_EVIDENCE_FRAMES` frames spread over the clip, the first frame left out."""
    if count <= 1:
        return []
    chosen = np.unique(np.round(np.linspace(1, count - 1, min(MAX_EVIDENCE_FRAMES, count - 1))).astype(int))
    return chosen.tolist()


def pixel_grid(width: int, height: int) -> np.ndarray:
    """(H, W, 2) pixel coordinates (x, y) in OpenCV's convention: pixel (i, j) is at (j, i)."""
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    return np.stack([xs, ys], axis=-1)


def within(positions: np.ndarray, width: int, height: int) -> np.ndarray:
    return (positions[..., 0] >= 0) & (positions[..., 0] <= width - 1) & (positions[..., 1] >= 0) & (positions[..., 1] <= height - 1)


def colour_error(reference: np.ndarray, frame: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(H, W) summed absolute RGB difference between the reference and `frame` sampled at `positions`, locally averaged."""
    cv2 = import_cv2()
    sampled = cv2.remap(frame, positions[..., 0], positions[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    error = np.abs(sampled - reference).sum(axis=2)
    return cv2.blur(error, (EVIDENCE_WINDOW, EVIDENCE_WINDOW))


def connected_to(mask: np.ndarray, coarse: np.ndarray, fallback: np.ndarray | None = None) -> np.ndarray | None:
    """The parts of `mask` that lie mostly in `coarse` (a second moving part is as much the subject as
    the first), the seams between them closed and holes filled; `fallback` if there are none."""
    cv2 = import_cv2()
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count < 2:
        return fallback
    area = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    inside = np.bincount(labels[coarse & mask], minlength=count)
    keep = (inside >= PART_INSIDE * area) & (area >= PART_SHARE * max(1, int(coarse.sum())))
    keep[0] = False
    if not keep.any():
        return fallback
    parts = keep[labels].astype(np.uint8)
    closed = cv2.morphologyEx(parts, cv2.MORPH_CLOSE, np.ones((SEAM_PX, SEAM_PX), np.uint8))
    return fill_holes(closed.astype(bool) | parts.astype(bool))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """The mask with every enclosed hole filled (what the border cannot reach is inside)."""
    cv2 = import_cv2()
    padded = np.pad(mask.astype(np.uint8), 1)
    flood_mask = np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8)
    cv2.floodFill(padded, flood_mask, (0, 0), 2)
    return (padded != 2)[1:-1, 1:-1]


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """The mask's extent in pixel-edge coordinates x0 y0 x1 y1 (pixel (i, j) covers [j, j+1) × [i, i+1))."""
    rows, cols = np.nonzero(mask)
    return (float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1))
