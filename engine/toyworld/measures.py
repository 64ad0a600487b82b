"""Measures of an animation from its control points alone, against a known motion.

- **Motion**: each frame's similarity (translation of the centroid, turn, scale) relative to the
  first frame, fitted by least squares (Umeyama). Per frame it is written in units of the
  subject's size R (RMS distance of its points from their centroid): translation / R, turn in
  radians, log-scale — how far a point on the outline travels, in R, for each part of the motion.
  *Alignment* is the cosine between the animation's and the reference's stacked per-frame
  vectors (1: the same motion, 0: unrelated, −1: the opposite); *gain* is the ratio of their
  lengths; *follows* says whether the net motion's class (a direction of 8, a turn's sense, a
  growth's sign, a bounce) is the reference's.
- **Appearance**: each frame aligned to the input drawing by the best similarity; the RMS
  distance left, in canvas px (0: the drawing only moved, turned or scaled).
- **Temporal consistency**: the mean length of the third difference of every point over time
  (jerk), in canvas px.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .motions import motion_class


@dataclass(frozen=True)
class Similarity:
    translation: np.ndarray  # (2,) centroid displacement
    rotation: float  # rad, clockwise on screen (y down)
    log_scale: float


def fit_similarity(source: np.ndarray, target: np.ndarray) -> tuple[Similarity, float]:
    """The similarity carrying `source` (P, 2) onto `target` (P, 2) in least squares, and the RMS residual."""
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    a, b = source - mu_s, target - mu_t
    covariance = b.T @ a / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rotation = u @ np.diag(sign) @ vt
    variance = (a**2).sum() / len(source)
    scale = float((singular * sign).sum() / variance) if variance > 0 else 1.0
    residual = b - scale * a @ rotation.T
    angle = math.atan2(rotation[1, 0], rotation[0, 0])
    return Similarity(mu_t - mu_s, angle, math.log(max(scale, 1e-9))), float(np.sqrt((residual**2).sum(axis=1).mean()))


def subject_size(points: np.ndarray) -> float:
    """RMS distance of the points from their centroid."""
    return float(np.sqrt(((points - points.mean(axis=0)) ** 2).sum(axis=1).mean()))


def motion_vectors(frames: np.ndarray) -> np.ndarray:
    """(F − 1, 4) per-frame motion relative to frame 0 in units of the subject's size:
    (tx / R, ty / R, turn, log-scale)."""
    size = subject_size(frames[0]) or 1.0
    rows = []
    for frame in frames[1:]:
        similarity, _ = fit_similarity(frames[0], frame)
        rows.append([*(similarity.translation / size), similarity.rotation, similarity.log_scale])
    return np.asarray(rows)


def vectors_from_track(track, size: float) -> np.ndarray:
    """The same (F − 1, 4) vectors from a known track (translation of the subject's centroid)."""
    return np.column_stack([track.translation[1:] / size, track.rotation[1:], track.log_scale[1:]])


def net_class(vectors: np.ndarray, size: float, centroid_path: np.ndarray | None = None) -> str:
    """The toy motion class of the net motion (first frame → last) of per-frame motion vectors."""
    translation = vectors[-1, :2] * size
    hop = 0.0
    if centroid_path is not None:
        y = centroid_path[:, 1]
        hop = float(max(0.0, np.max(y[0] + (y[-1] - y[0]) * np.linspace(0, 1, len(y)) - y)))
    return motion_class(translation, float(vectors[-1, 2]), float(vectors[-1, 3]), hop, size)


def centroid_path(vectors: np.ndarray, size: float) -> np.ndarray:
    """(F, 2) the centroid's path from the vectors (frame 0 at the origin)."""
    return np.vstack([[0.0, 0.0], vectors[:, :2] * size])


def alignment(vectors: np.ndarray, reference: np.ndarray) -> float:
    """Cosine between stacked motion vectors (0 when either is still)."""
    a, b = vectors.ravel(), reference.ravel()
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / norm) if norm > 0 else 0.0


def appearance_residual(sketch_points: np.ndarray, frames: np.ndarray) -> float:
    """Mean over frames of the RMS distance (px) left after the best similarity onto the drawing."""
    return float(np.mean([fit_similarity(frame, sketch_points)[1] for frame in frames]))


def jerk(frames: np.ndarray) -> float:
    """Mean length (px) of the third difference of the points over time; 0 for fewer than 4 frames."""
    if len(frames) < 4:
        return 0.0
    third = frames[3:] - 3 * frames[2:-1] + 3 * frames[1:-2] - frames[:-3]
    return float(np.linalg.norm(third, axis=-1).mean())


@dataclass(frozen=True)
class CaseMeasures:
    follows: bool | None  # None without a known reference motion
    alignment: float | None
    gain: float | None
    motion: str  # the animation's net motion class
    appearance_px: float
    jerk_px: float

    def to_dict(self) -> dict:
        return dict(vars(self))


def measure(sketch_points: np.ndarray, frames: np.ndarray, reference: np.ndarray | None, reference_class: str | None, moving: np.ndarray | None = None) -> CaseMeasures:
    """Every measure of one animation; `reference` (F − 1, 4) vectors and class when the motion is known.
    `moving` (P,) selects the points that may move (pinned ones are left out of the motion fit)."""
    points = frames if moving is None else frames[:, moving]
    size = subject_size(points[0]) or 1.0
    vectors = motion_vectors(points)
    found = net_class(vectors, size, centroid_path(vectors, size))
    known = reference is not None
    ref_norm = float(np.linalg.norm(reference)) if known else 0.0
    return CaseMeasures(
        follows=(found == reference_class) if known and reference_class else None,
        alignment=alignment(vectors, reference) if known else None,
        gain=float(np.linalg.norm(vectors) / ref_norm) if known and ref_norm > 0 else None,
        motion=found,
        appearance_px=appearance_residual(sketch_points, frames),
        jerk_px=jerk(frames),
    )


def paired_permutation_p(a: np.ndarray, b: np.ndarray, rounds: int = 20000, seed: int = 0) -> float:
    """Two-sided p-value that paired samples `a` and `b` have the same mean (sign-flip permutation
    test on the differences; exact enough for a table, and it needs no distribution assumption)."""
    d = np.asarray(a, float) - np.asarray(b, float)
    d = d[np.isfinite(d)]
    if len(d) == 0 or not np.any(d):
        return 1.0
    observed = abs(d.mean())
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(rounds, len(d)))
    return float((np.sum(np.abs((signs * d).mean(axis=1)) >= observed - 1e-12) + 1) / (rounds + 1))
