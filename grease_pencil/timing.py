"""When each pose plays in the scene: keys on the scene's frame rate, in-betweens or holds, cycles.

A result records each pose's time in the reference (`metadata["timing"]`, seconds from the first
pose). Apply places key i at scene frame `start + round(t_i · scene_fps · speed)` ("match the
reference"; `speed` scales the timing: 2 makes the animation twice as long, 0.5 half), on every
frame, every N frames ("on twos, threes"), or spread over a fixed number of frames. The scene
frames between keys get smooth in-betweens or holds:

* **Smooth**: a cubic Hermite spline in time through the keys with Catmull–Rom tangents on
  the (uneven) key times, m_i = (p_{i+1} − p_{i−1}) / (t_{i+1} − t_{i−1}): exact at the keys and
  C1 (the velocity is continuous) everywhere. It interpolates every control point, so knots and
  handles move alike. Written as keyframes of type BREAKDOWN.
* **Hold**: only the keys; each stays until the next (Grease Pencil's own behaviour).

Loops: a *cycle* runs over one period (the poses' span plus one mean spacing; the pose after the
last is the first) and its in-betweens after the last key run back into the first key, with
tangents that wrap around, so the seam is as smooth as the rest; a *ping-pong* plays forward
then backward, so its ends come to rest (zero tangents). Blender's Time Offset modifier then
repeats the range over the whole scene. numpy only: tested without Blender.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

KEY_MODES = ("reference", "every_frame", "every_n", "fit")
INBETWEENS = ("smooth", "hold")
LOOPS = ("none", "cycle", "pingpong")
MIN_SPEED, MAX_SPEED = 0.01, 100.0
MAX_SCENE_FRAMES = 1_000_000


class TimingError(ValueError):
    """Timing options that cannot be applied; the message is one line and names the fix."""


@dataclass(frozen=True)
class TimingOptions:
    speed: float = 1.0  # scales the reference's timing: 2 = twice as long, 0.5 = half
    keys: str = "reference"  # reference | every_frame | every_n | fit
    every_n: int = 2  # with keys "every_n": on twos, threes, …
    fit_frames: int = 48  # with keys "fit": the animation (or one loop) spans this many scene frames
    inbetweens: str = "smooth"  # smooth | hold
    loop: str = "none"  # none | cycle | pingpong

    def check(self, scene_fps: float) -> None:
        """Refuse, in one line naming the value and the fix, what cannot be applied."""
        if not (isinstance(scene_fps, (int, float)) and math.isfinite(scene_fps) and scene_fps > 0):
            raise TimingError(f"the scene runs at {scene_fps} frames per second: set a frame rate above 0 in Output Properties → Frame Rate")
        for name, value, choices in (("keys", self.keys, KEY_MODES), ("in-betweens", self.inbetweens, INBETWEENS), ("loop", self.loop, LOOPS)):
            if value not in choices:
                raise TimingError(f"unknown {name} setting {value!r}: use {', '.join(choices)}")
        if self.keys == "reference" and not (math.isfinite(self.speed) and MIN_SPEED <= self.speed <= MAX_SPEED):
            raise TimingError(f"speed {self.speed:g} is out of range: use {MIN_SPEED:g} to {MAX_SPEED:g} (1 plays at the reference's speed)")
        if self.keys == "every_n" and not 1 <= self.every_n <= 1000:
            raise TimingError(f"keys every {self.every_n} frames: use 1 to 1000 (2 is 'on twos')")
        if self.keys == "fit" and self.fit_frames < 2:
            raise TimingError(f"fit to {self.fit_frames} frames: the animation needs at least 2 frames; choose more")


@dataclass
class Schedule:
    """Which scene frames (offsets from the start frame) get which pose, key or in-between."""

    frame_offsets: np.ndarray  # (N,) int, increasing: every frame that gets a Grease Pencil keyframe
    frame_times: np.ndarray  # (N,) float: where each frame sits on the keys' time axis (a key's own offset)
    is_key: np.ndarray  # (N,) bool: a key (KEYFRAME) or an in-between (BREAKDOWN)
    key_offsets: np.ndarray  # (K,) int, increasing: the frames of the keys
    key_poses: np.ndarray  # (K,) int: the pose each key shows
    loop_range: tuple[int, int] | None  # offsets of the first and last frame one loop plays (Time Offset's range)
    period: int | None  # a cycle's length in scene frames (the pose after the last is the first)
    notes: list[str] = field(default_factory=list)


def scene_frame_rate(fps: Any, fps_base: Any) -> float:
    """Blender's frame rate: `render.fps / render.fps_base` (29.97 is 30 / 1.001)."""
    try:
        fps, fps_base = float(fps), float(fps_base)
    except (TypeError, ValueError):
        return float("nan")
    return fps / fps_base if fps_base > 0 else float("nan")


def pose_times(timing: dict[str, Any] | None, num_poses: int) -> tuple[np.ndarray, float | None, list[str]]:
    """Each pose's time in seconds and a cycle's period, from a result's timing (None: an older
    result without it, whose poses play one per frame, with a note saying so)."""
    if not timing or "times_s" not in timing:
        return np.arange(num_poses, dtype=np.float64), None, [
            "this result has no timing (it was made by an older version): its poses are keyed on consecutive frames"
        ]
    times = np.asarray(timing["times_s"], dtype=np.float64)
    if times.shape != (num_poses,) or not np.isfinite(times).all() or np.any(np.diff(times) < 0):
        raise TimingError(f"the result's timing has {len(times)} times for {num_poses} poses or is not increasing: animate again")
    period = timing.get("period_s")
    return times - times[0], (float(period) if period else None), []


def key_positions(times: np.ndarray, period_s: float | None, scene_fps: float, options: TimingOptions, timed: bool) -> tuple[np.ndarray, float | None]:
    """Exact (unrounded) scene-frame offsets of every pose, and a cycle's period in frames."""
    count = len(times)
    spacing = float(np.mean(np.diff(times))) if count > 1 else 1.0
    period = period_s if period_s else float(times[-1] + spacing)
    if options.keys == "every_frame" or (options.keys == "reference" and not timed):
        return np.arange(count, dtype=np.float64), float(count)
    if options.keys == "every_n":
        return np.arange(count, dtype=np.float64) * options.every_n, float(count * options.every_n)
    if options.keys == "fit":
        if options.loop == "cycle":  # one loop spans the frames
            return times / period * options.fit_frames, float(options.fit_frames)
        last = times[-1] if times[-1] > 0 else 1.0
        return times / last * (options.fit_frames - 1), None
    scale = scene_fps * options.speed
    return times * scale, period * scale


def plan_schedule(timing: dict[str, Any] | None, num_poses: int, scene_fps: float, options: TimingOptions) -> Schedule:
    """The frames to write for `num_poses` poses: keys placed by the options, then in-betweens."""
    options.check(scene_fps)
    times, period_s, notes = pose_times(timing, num_poses)
    exact, period_exact = key_positions(times, period_s, scene_fps, options, timed=not notes)
    offsets = np.rint(exact).astype(np.int64)
    if offsets[-1] > MAX_SCENE_FRAMES:
        raise TimingError(f"the animation would span {offsets[-1]} scene frames: lower the speed or the frames between keys")
    key_offsets, key_poses, dropped = one_pose_per_frame(offsets, exact)
    if dropped:
        notes.append(
            f"{dropped} of {num_poses} poses fell on the same scene frame as another and were left out: "
            "raise the speed or the scene's frame rate to key them all"
        )
    period = None
    if options.loop == "cycle":
        period = max(int(round(period_exact)) if period_exact else int(key_offsets[-1]) + 1, int(key_offsets[-1]) + 1)
    last = (period - 1) if period is not None else int(key_offsets[-1])
    if options.inbetweens == "smooth":
        frame_offsets = np.arange(0, last + 1, dtype=np.int64)
    else:
        frame_offsets = key_offsets.copy()
    is_key = np.isin(frame_offsets, key_offsets)
    loop_range = None if options.loop == "none" else (0, last)
    return Schedule(frame_offsets, frame_offsets.astype(np.float64), is_key, key_offsets, key_poses, loop_range, period, notes)


def one_pose_per_frame(offsets: np.ndarray, exact: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Where several poses round to one frame, keep the pose whose exact time is nearest to it."""
    keep: dict[int, int] = {}
    for pose, (frame, value) in enumerate(zip(offsets.tolist(), exact.tolist())):
        if frame not in keep or abs(value - frame) < abs(exact[keep[frame]] - frame):
            keep[frame] = pose
    frames = np.array(sorted(keep), dtype=np.int64)
    poses = np.array([keep[f] for f in frames.tolist()], dtype=np.int64)
    return frames, poses, len(offsets) - len(frames)


def scheduled_frames(poses: np.ndarray, schedule: Schedule, loop: str = "none") -> np.ndarray:
    """(N, P, 2) control points of every scheduled frame: the keys' own poses, in-betweens interpolated."""
    key_points = np.asarray(poses, dtype=np.float64)[schedule.key_poses]
    if len(schedule.key_offsets) == 1:
        return np.repeat(key_points, len(schedule.frame_offsets), axis=0)
    return hermite(key_points, schedule.key_offsets.astype(np.float64), schedule.frame_times, schedule.period if loop == "cycle" else None, rest_at_ends=loop == "pingpong")


def tangents(points: np.ndarray, times: np.ndarray, period: float | None, rest_at_ends: bool) -> np.ndarray:
    """Catmull–Rom tangents on uneven times: (p_{i+1} − p_{i−1}) / (t_{i+1} − t_{i−1}), wrapping
    around a cycle's period; at open ends one-sided differences, or zero where the motion turns."""
    count = len(times)
    if period is not None:
        before = np.r_[times[-1] - period, times[:-1]]
        after = np.r_[times[1:], times[0] + period]
        previous = np.concatenate([points[-1:], points[:-1]])
        following = np.concatenate([points[1:], points[:1]])
        return (following - previous) / (after - before)[:, None, None]
    out = np.empty_like(points)
    out[1:-1] = (points[2:] - points[:-2]) / (times[2:] - times[:-2])[:, None, None]
    if rest_at_ends:
        out[0] = out[-1] = 0.0
    else:
        out[0] = (points[1] - points[0]) / (times[1] - times[0])
        out[-1] = (points[-1] - points[-2]) / (times[-1] - times[-2])
    if count == 2 and not rest_at_ends:
        out[:] = (points[1] - points[0]) / (times[1] - times[0])
    return out


def hermite(points: np.ndarray, times: np.ndarray, query: np.ndarray, period: float | None = None, rest_at_ends: bool = False) -> np.ndarray:
    """Cubic Hermite interpolation of keys `points` (K, P, 2) at `times` (K,) for `query` (Q,):
    exact at the keys, C1 in time. With `period` the curve is closed: after the last key it runs
    into the first key at `times[0] + period`. Queries outside the keys' span hold the nearest key."""
    slopes = tangents(points, times, period, rest_at_ends)
    knots, values, slope_values = times, points, slopes
    if period is not None:  # the segment from the last key back to the first, one period later
        knots = np.r_[times, times[0] + period]
        values = np.concatenate([points, points[:1]])
        slope_values = np.concatenate([slopes, slopes[:1]])
    q = np.clip(np.asarray(query, dtype=np.float64), knots[0], knots[-1])
    segment = np.clip(np.searchsorted(knots, q, side="right") - 1, 0, len(knots) - 2)
    t0, t1 = knots[segment], knots[segment + 1]
    h = t1 - t0
    s = ((q - t0) / h)[:, None, None]
    h = h[:, None, None]
    s2, s3 = s * s, s * s * s
    return (
        (2 * s3 - 3 * s2 + 1) * values[segment]
        + (s3 - 2 * s2 + s) * h * slope_values[segment]
        + (-2 * s3 + 3 * s2) * values[segment + 1]
        + (s3 - s2) * h * slope_values[segment + 1]
    )
