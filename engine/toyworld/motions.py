"""The toy world's motions: each is a known per-frame similarity transform (and, for waving, a part's
angle about its joint), so that what a method produced can be compared with the truth from the
control points alone.

Coordinates are canvas pixels, y down; a positive angle turns clockwise on screen. A track is
relative to the first frame: frame 0 is the drawing as given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# name → caption phrase; translations are unit directions on screen (y down)
DIRECTIONS: dict[str, tuple[float, float]] = {
    "right": (1.0, 0.0), "left": (-1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0),
    "up-right": (math.sqrt(0.5), -math.sqrt(0.5)), "up-left": (-math.sqrt(0.5), -math.sqrt(0.5)),
    "down-right": (math.sqrt(0.5), math.sqrt(0.5)), "down-left": (-math.sqrt(0.5), math.sqrt(0.5)),
}  # fmt: skip
PHRASES: dict[str, str] = {
    "right": "moving right", "left": "moving left", "up": "moving up", "down": "moving down",
    "up-right": "moving up and right", "up-left": "moving up and left", "down-right": "moving down and right", "down-left": "moving down and left",
    "clockwise": "spinning clockwise", "counterclockwise": "spinning counterclockwise",
    "grow": "growing", "shrink": "shrinking", "bounce": "bouncing", "wave": "waving",
}  # fmt: skip
MOTIONS = tuple(PHRASES)
TRANSLATIONS = tuple(DIRECTIONS)
NEUTRAL_PROMPT = "a shape moving"  # says that something moves, not how: the reference clip has to carry the motion


@dataclass(frozen=True)
class MotionTrack:
    """Per-frame motion relative to frame 0: translation (F, 2) px, rotation (F,) rad (clockwise +),
    log-scale (F,), and the articulated part's extra angle (F,) rad."""

    translation: np.ndarray
    rotation: np.ndarray
    log_scale: np.ndarray
    part_angle: np.ndarray

    @property
    def num_frames(self) -> int:
        return len(self.rotation)

    def to_dict(self) -> dict:
        return {name: np.asarray(getattr(self, name)).tolist() for name in ("translation", "rotation", "log_scale", "part_angle")}

    @classmethod
    def from_dict(cls, data: dict) -> "MotionTrack":
        return cls(**{name: np.asarray(data[name], dtype=np.float64) for name in ("translation", "rotation", "log_scale", "part_angle")})

    @classmethod
    def still(cls, num_frames: int) -> "MotionTrack":
        zero = np.zeros(num_frames)
        return cls(np.zeros((num_frames, 2)), zero, zero.copy(), zero.copy())


@dataclass(frozen=True)
class MotionRanges:
    """How far each motion goes per frame, drawn uniformly from these ranges (canvas px, degrees)."""

    speed: tuple[float, float] = (2.0, 3.0)  # px per frame for translations
    spin: tuple[float, float] = (6.0, 9.0)  # degrees per frame
    growth: tuple[float, float] = (0.05, 0.08)  # log-scale per frame
    hop: tuple[float, float] = (10.0, 15.0)  # px, the bounce's height
    wave: tuple[float, float] = (30.0, 45.0)  # degrees, the part's swing


def motion_track(motion: str, num_frames: int, magnitude: float) -> MotionTrack:
    """The track of `motion` over `num_frames`, with `magnitude` in the motion's own unit
    (px per frame, degrees per frame, log-scale per frame, hop px or swing degrees)."""
    k = np.arange(num_frames, dtype=np.float64)
    u = k / max(num_frames - 1, 1)
    track = MotionTrack.still(num_frames)
    translation, rotation, log_scale, part_angle = track.translation, track.rotation, track.log_scale, track.part_angle
    if motion in DIRECTIONS:
        translation[:] = np.outer(k * magnitude, DIRECTIONS[motion])
    elif motion in ("clockwise", "counterclockwise"):
        rotation[:] = np.radians(magnitude) * k * (1 if motion == "clockwise" else -1)
    elif motion in ("grow", "shrink"):
        log_scale[:] = magnitude * k * (1 if motion == "grow" else -1)
    elif motion == "bounce":
        translation[:, 1] = -magnitude * 4 * u * (1 - u)  # one hop: up, then down again
    elif motion == "wave":
        part_angle[:] = np.radians(magnitude) * np.sin(2 * math.pi * u)
    else:
        raise KeyError(f"unknown toy-world motion {motion!r}: use one of {', '.join(MOTIONS)}")
    return track


def magnitude_range(motion: str, ranges: MotionRanges) -> tuple[float, float]:
    if motion in DIRECTIONS:
        return ranges.speed
    return {"clockwise": ranges.spin, "counterclockwise": ranges.spin, "grow": ranges.growth, "shrink": ranges.growth, "bounce": ranges.hop, "wave": ranges.wave}[motion]


def apply_track(points: np.ndarray, track: MotionTrack, centre: np.ndarray, part_mask: np.ndarray | None = None, joint: np.ndarray | None = None) -> np.ndarray:
    """(P, 2) canvas points of frame 0 → (F, P, 2): the part turned about its joint first, then the
    whole drawing scaled and turned about `centre` and translated."""
    frames = []
    for f in range(track.num_frames):
        moved = points.copy()
        if part_mask is not None and joint is not None and track.part_angle[f]:
            moved[part_mask] = rotate(moved[part_mask], track.part_angle[f], joint)
        moved = rotate(moved, track.rotation[f], centre, math.exp(track.log_scale[f])) + track.translation[f]
        frames.append(moved)
    return np.stack(frames)


def rotate(points: np.ndarray, angle: float, centre: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Turn by `angle` (clockwise on screen, y down) and scale about `centre`."""
    c, s = math.cos(angle), math.sin(angle)
    matrix = scale * np.array([[c, -s], [s, c]])
    return (points - centre) @ matrix.T + centre


def motion_class(translation: np.ndarray, rotation: float, log_scale: float, hop: float, subject_size: float) -> str:
    """The toy motion that best explains a net motion: a translation's direction (8 sectors), a turn's
    sense, a growth's sign, or a bounce (up, then back down). Each component is measured as the
    distance a point on the subject's outline travels, so they compare in one unit (px)."""
    candidates = {
        "translation": float(np.hypot(*translation)),
        "rotation": abs(rotation) * subject_size,
        "scale": abs(math.expm1(log_scale)) * subject_size,
        "bounce": hop,
    }
    kind = max(candidates, key=candidates.get)
    if kind == "translation":
        angle = math.atan2(translation[1], translation[0])
        return min(DIRECTIONS, key=lambda d: abs(math.remainder(angle - math.atan2(DIRECTIONS[d][1], DIRECTIONS[d][0]), 2 * math.pi)))
    if kind == "rotation":
        return "clockwise" if rotation > 0 else "counterclockwise"
    if kind == "scale":
        return "grow" if log_scale > 0 else "shrink"
    return "bounce"
