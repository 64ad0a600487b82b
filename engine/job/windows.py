"""Long clips as overlapping windows of the video model's native length, and what a plan costs.

A clip of F poses longer than the model's window W is cut into windows that overlap by O poses:
window k covers poses [s_k, s_k + W), s_0 = 0, each next window starting W − O later, the
last one aligned to the end of the clip. Each window's motion is learned on its own frames, and
stage 3 optimises each window with the poses it shares with the previous window held at that
window's result, so the joins are continuous. Standard library only: the plan is checked before
a job starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import SketchAnimatorError

# Seconds per training step for ModelScope T2V at its native 16 frames of 256² on a 24 GB GPU
# (benchmarks/stages.py and benchmarks/sds.py: exact FLOP counts at 44 TFLOP/s), and how much
# slower the other devices are. Used only to refuse a plan that would take far longer than the
# user allowed; real runs report their own ETA.
GPU_SECONDS_PER_STEP = {"appearance": 0.009, "motion": 0.25, "distillation": 0.43}
DEVICE_SLOWDOWN = {"cuda": 1.0, "mps": 4.0, "cpu": 60.0}
NATIVE_FRAMES, NATIVE_PIXELS = 16, 256 * 256


class WindowPlanError(SketchAnimatorError):
    """The window plan does not fit the settings or the time the user allowed."""


@dataclass(frozen=True)
class Window:
    index: int
    start: int  # first pose of the clip in this window
    stop: int  # one past its last pose
    held: int  # how many of its first poses are shared with (and held at) the previous window

    @property
    def size(self) -> int:
        return self.stop - self.start


def plan_windows(num_poses: int, window: int, overlap: int) -> list[Window]:
    """Overlapping windows covering poses 0 … num_poses − 1 (one window when the clip fits)."""
    if window < 2:
        raise WindowPlanError(f"a window of {window} poses is too short: use at least 2")
    if not 0 <= overlap < window:
        raise WindowPlanError(f"a window overlap of {overlap} poses must be 0 to {window - 1} (less than the window of {window})")
    if num_poses <= window:
        return [Window(0, 0, num_poses, 0)]
    stride = window - overlap
    count = 1 + math.ceil((num_poses - window) / stride)
    windows, previous_stop = [], 0
    for index in range(count):
        start = min(index * stride, num_poses - window)
        windows.append(Window(index, start, start + window, max(0, previous_stop - start) if index else 0))
        previous_stop = start + window
    return windows


def estimate_minutes(windows: list[Window], steps: tuple[int, int, int], frame_size: tuple[int, int], device: str, uses_model: bool = True) -> float:
    """Minutes the plan is expected to take: stage 1 once, stages 2 and 3 per window, scaled by
    frames and pixels from the native 16 × 256² (see `GPU_SECONDS_PER_STEP`)."""
    pixels = frame_size[0] * frame_size[1] / NATIVE_PIXELS
    seconds = steps[0] * GPU_SECONDS_PER_STEP["appearance"] * pixels if uses_model else 0.0
    for window in windows:
        frames = window.size / NATIVE_FRAMES
        if uses_model:
            seconds += steps[1] * GPU_SECONDS_PER_STEP["motion"] * frames * pixels
        seconds += steps[2] * GPU_SECONDS_PER_STEP["distillation"] * frames * pixels
    slowdown = DEVICE_SLOWDOWN.get(device.split(":")[0], DEVICE_SLOWDOWN["cpu"])
    return seconds * slowdown / 60.0


def check_time_budget(minutes: float, limit: float | None, windows: list[Window]) -> None:
    """Refuse, in one line, a plan expected to take longer than the user allowed."""
    if limit is None or minutes <= limit:
        return
    raise WindowPlanError(
        f"the plan ({len(windows)} window{'s' * (len(windows) != 1)} of up to {max(w.size for w in windows)} poses) would take "
        f"about {minutes:.0f} min, more than the {limit:g} min allowed: lower the pose rate or the quality, or allow more time"
    )
