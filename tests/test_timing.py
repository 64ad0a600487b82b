"""Timing and length (issue 13), without Blender: the timing a result records, the key schedule and
its in-betweens (grease_pencil/timing.py), windows over long clips, cycles, and time budgets."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from engine.job import client as jobclient
from engine.job.events import EventLog, read_events
from engine.job.folder import JobError, JobSpec, write_job
from engine.job.pipeline import run_job
from engine.job.results import read_result
from engine.job.windows import WindowPlanError, estimate_minutes, plan_windows
from engine.vector.sketch import Path as Stroke
from engine.vector.sketch import Sketch
from sketch_animator.grease_pencil import timing as gt

ORACLE = dict(prior="target-frames", prior_options={"targets": "targets.json"}, distillation={"lr": 1e-2, "augment": False}, checkpoint_every=1000)


def sketch() -> Sketch:
    return Sketch(
        paths=[Stroke(points=[[20, 40], [30, 10], [50, 10], [60, 40]], half_width=2.0), Stroke(points=[[15, 50], [35, 60], [45, 60], [65, 50]], half_width=1.5)],
        width=80,
        height=80,
    )


def video(path: Path, seconds: float, fps: float, size: int = 64) -> Path:
    count = int(round(seconds * fps))
    frames = np.full((count, size, size, 3), 255, np.uint8)
    for i in range(count):
        x = 4 + int(30 * i / max(count - 1, 1))
        frames[i, 20:40, x : x + 20] = (30, 30, 200)
    iio.imwrite(path, frames, fps=fps, codec="libx264")
    return path


def oracle_job(folder: Path, truth: np.ndarray, clip: Path, **spec) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sketch().with_frames(truth).save_json(folder / "targets.json")
    settings = {**ORACLE, **spec}
    settings["distillation"] = {**ORACLE["distillation"], **spec.get("distillation", {})}
    return write_job(folder, sketch(), JobSpec(video=str(clip), subject_prompt="", motion_prompt="", resolution=80, **settings))


# ----------------------------------------------------------------------- timing in the result
def test_results_and_previews_record_when_each_pose_happens(tmp_path) -> None:
    clip = video(tmp_path / "two_seconds.mp4", 2.0, 12)  # 24 frames
    truth = np.repeat(sketch().flat_points()[None], 16, axis=0)
    result = read_result(run_job(oracle_job(tmp_path / "job", truth, clip, num_frames=16, steps={"distillation": 2})))
    timing = result.metadata["timing"]
    indices = [round(k * 23 / 15 + 1e-9) for k in range(16)]  # the sampling contract: first + round(k·(M−1)/(F−1))
    assert timing["source_indices"] == indices and timing["fps"] == pytest.approx(12.0)
    np.testing.assert_allclose(timing["times_s"], np.array(indices) / 12.0)
    assert timing["period_s"] == pytest.approx(23 / 12 + 23 / 12 / 15) and timing["periodic"] is False
    preview_job = write_job(tmp_path / "preview", sketch(), JobSpec(video=str(clip), subject_prompt="", motion_prompt="", num_frames=16, method="preview"))
    assert read_result(run_job(preview_job)).metadata["timing"]["times_s"] == timing["times_s"]


def test_pose_rate_sets_the_number_of_poses_from_the_clip(tmp_path) -> None:
    clip = video(tmp_path / "four_seconds.mp4", 4.0, 24)
    assert JobSpec(video=str(clip), subject_prompt="", motion_prompt="", pose_rate=8.0).num_poses() == 32
    assert JobSpec(video=str(clip), subject_prompt="", motion_prompt="", pose_rate=8.0, video_start_s=1.0, video_end_s=3.0).num_poses() == 16
    with pytest.raises(JobError, match="pose rate must be a number from 0.1"):
        JobSpec(video=str(clip), subject_prompt="", motion_prompt="", pose_rate=0.0)
    with pytest.raises(JobError, match="a window of 100 poses"):
        JobSpec(video=str(clip), subject_prompt="", motion_prompt="", window=100)


# ----------------------------------------------------------------------- windows
def test_window_plan_covers_the_clip_with_the_chosen_overlap() -> None:
    windows = plan_windows(96, 16, 4)
    assert [(w.start, w.stop, w.held) for w in windows[:3]] == [(0, 16, 0), (12, 28, 4), (24, 40, 4)]
    assert windows[-1].stop == 96 and all(w.size == 16 for w in windows)
    covered = np.zeros(96, int)
    for w in windows:
        covered[w.start : w.stop] += 1
    assert covered.min() == 1 and all(b.start < a.stop for a, b in zip(windows, windows[1:]))  # every join overlaps
    assert plan_windows(10, 16, 4) == [plan_windows(10, 16, 4)[0]] and plan_windows(10, 16, 4)[0].stop == 10
    with pytest.raises(WindowPlanError, match="overlap of 16"):
        plan_windows(40, 16, 16)
    long, short = estimate_minutes(windows, (300, 300, 500), (256, 256), "cuda"), estimate_minutes(windows[:1], (300, 300, 500), (256, 256), "cuda")
    assert long > 6 * short and estimate_minutes(windows, (300, 300, 500), (256, 256), "cpu") == pytest.approx(60 * long)


def test_long_clip_windows_join_continuously_and_recover_a_known_motion(tmp_path) -> None:
    clip = video(tmp_path / "four_seconds.mp4", 4.0, 24)
    base = sketch().flat_points()
    truth = np.stack([base + [6 * np.sin(2 * np.pi * k / 96), 3 * np.cos(2 * np.pi * k / 96) - 3] for k in range(96)])
    job = oracle_job(tmp_path / "long", truth, clip, pose_rate=24.0, window=16, window_overlap=4, steps={"distillation": 120})
    result = read_result(run_job(job))
    assert result.num_frames == 96 and len(result.metadata["windows"]) == 8
    error = np.linalg.norm(result.frames - truth, axis=-1).mean(axis=1)
    assert error.mean() < 1.0, error
    joins = [w["start"] + w["held"] for w in result.metadata["windows"][1:]]  # the first pose each later window optimised
    steps, true_steps = np.diff(result.frames, axis=0), np.diff(truth, axis=0)
    join_jumps = [np.linalg.norm(steps[j - 1] - true_steps[j - 1], axis=-1).mean() for j in joins]
    assert max(join_jumps) < 0.5, join_jumps
    progress = [e for e in read_events(job / "events.jsonl")[0] if e["kind"] == "progress"]
    assert {e["window"] for e in progress} == set(range(1, 9)) and {e["windows"] for e in progress} == {8}
    history = result.metadata["history"]
    assert len(history["loss"]) == 8 * 120 and sorted(set(history["window"])) == list(range(8))


def test_resumed_long_clip_continues_with_the_window_it_stopped_in(tmp_path) -> None:
    clip = video(tmp_path / "clip.mp4", 2.0, 24)
    truth = np.stack([sketch().flat_points() + [0.2 * k, 0.0] for k in range(24)])
    job = oracle_job(tmp_path / "job", truth, clip, num_frames=24, window=10, window_overlap=2, steps={"distillation": 20})
    straight = read_result(run_job(job)).frames
    (job / "result" / "result_manifest.json").unlink()  # as if the last window were interrupted
    for stored in sorted((job / "windows").glob("window_*.json"))[-1:]:
        stored.unlink()
    resumed = read_result(run_job(job)).frames
    np.testing.assert_allclose(resumed, straight, atol=1e-5)


def test_long_clip_with_the_tiny_model_learns_a_motion_per_window(tiny_model_dir, tmp_path) -> None:
    clip = video(tmp_path / "four_seconds.mp4", 4.0, 24)
    spec = JobSpec(
        video=str(clip), subject_prompt="A doodle.", motion_prompt="A doodle slides.", pose_rate=24.0, model=str(tiny_model_dir),
        resolution=64, device="cpu", cache_dir=str(tmp_path / "cache"), steps={"appearance": 1, "motion": 1, "distillation": 2}, checkpoint_every=100,
    )  # fmt: skip
    job = write_job(tmp_path / "job", sketch(), spec)
    result = read_result(run_job(job))
    assert result.frames.shape == (96, sketch().num_points, 2) and np.isfinite(result.frames).all()
    stored = [json.loads(p.read_text()) for p in (tmp_path / "cache" / "adapters").glob("*/manifest.json")]
    assert sorted(m["stage"] for m in stored).count("motion") == 8 == len(result.metadata["adapters"]["motion_temporal"])
    assert len(set(result.metadata["adapters"]["motion_temporal"])) == 8  # one motion per window, each its own frames
    events = read_events(job / "events.jsonl")[0]
    assert events[0]["stage_steps"] == {"appearance": 1, "motion": 8, "distillation": 16} and events[0]["windows"] == 8


def test_progress_says_which_window_runs(tmp_path) -> None:
    (tmp_path / "job.json").write_text("{}")
    log = EventLog(tmp_path / "events.jsonl")
    log.emit("job_start", stage_steps={"appearance": 10, "motion": 40, "distillation": 80}, windows=4)
    log.emit("stage_end", stage="appearance", ok=True)
    log.emit("stage_end", stage="motion", ok=True)
    log.emit("stage_start", stage="distillation", total=20, initial=0, window=2, windows=4)
    log.emit("progress", stage="distillation", step=5, total=20, loss=1.0, eta_s=15.0, window=2, windows=4)
    status = jobclient.JobWatcher(tmp_path).poll()
    assert status.summary().startswith("Distillation (3/3) · window 2 of 4: step 5/20")
    assert status.fraction == pytest.approx((10 + 40 + 20 + 5) / 130)
    assert status.eta_s == pytest.approx(15.0 + 2 * 20 * 1.0)  # this window's 15 s, then two more windows at 1 s per step


# ----------------------------------------------------------------------- cycles and budgets
def test_periodic_option_recovers_a_periodic_motion_with_a_smooth_seam(tmp_path) -> None:
    clip = video(tmp_path / "clip.mp4", 2.0, 12)
    base = sketch().flat_points()
    frames = 12
    truth = np.stack([base + 4 * np.array([np.cos(2 * np.pi * k / frames) - 1, np.sin(2 * np.pi * k / frames)]) for k in range(frames)])
    job = oracle_job(tmp_path / "cycle", truth, clip, num_frames=frames, steps={"distillation": 150}, distillation={"periodic": True})
    result = read_result(run_job(job))
    assert np.linalg.norm(result.frames - truth, axis=-1).mean() < 1.0
    step = np.linalg.norm(np.diff(np.concatenate([result.frames, result.frames[:1]]), axis=0), axis=-1).mean(axis=1)  # includes last → first
    assert abs(step[-1] - np.median(step[:-1])) < 0.5, step  # the seam moves like every other step
    assert result.metadata["timing"]["periodic"] is True


def test_a_plan_longer_than_the_time_allowed_is_refused_before_anything_runs(tmp_path) -> None:
    clip = video(tmp_path / "four_seconds.mp4", 4.0, 24)
    truth = np.repeat(sketch().flat_points()[None], 96, axis=0)
    job = oracle_job(tmp_path / "budget", truth, clip, pose_rate=24.0, window=16, max_minutes=0.01, steps={"distillation": 500}, device="cpu")
    with pytest.raises(WindowPlanError) as error:
        run_job(job)
    message = str(error.value)
    assert "\n" not in message and "8 windows" in message and "more than the 0.01 min allowed" in message
    events = read_events(job / "events.jsonl")[0]
    assert [e["kind"] for e in events] == ["error"] and not (job / "result").exists()


# ----------------------------------------------------------------------- the key schedule (Apply)
TWO_SECONDS_AT_12 = {"times_s": [round(k * 23 / 15 + 1e-9) / 12 for k in range(16)], "period_s": 23 / 12 * 16 / 15}


@pytest.mark.parametrize(("fps", "fps_base", "speed"), [(24, 1.0, 1.0), (30, 1.001, 1.0), (24, 1.0, 0.5), (24, 1.0, 2.0)])
def test_keys_land_on_the_scene_frame_rate(fps, fps_base, speed) -> None:
    scene_fps = gt.scene_frame_rate(fps, fps_base)
    schedule = gt.plan_schedule(TWO_SECONDS_AT_12, 16, scene_fps, gt.TimingOptions(speed=speed, inbetweens="hold"))
    expected = [round(t * scene_fps * speed) for t in TWO_SECONDS_AT_12["times_s"]]
    unique = sorted(set(expected))
    assert schedule.key_offsets.tolist() == unique
    assert len(unique) == 16 or schedule.notes  # poses that share a frame are reported
    if (fps, speed) == (24, 1.0):
        assert schedule.key_offsets.tolist() == [2 * round(k * 23 / 15 + 1e-9) for k in range(16)]  # 12 fps → 24 fps: every other frame


def test_key_modes_every_frame_every_n_and_fit() -> None:
    consecutive = gt.plan_schedule(TWO_SECONDS_AT_12, 16, 24.0, gt.TimingOptions(keys="every_frame"))
    assert consecutive.key_offsets.tolist() == list(range(16)) and consecutive.is_key.all()
    twos = gt.plan_schedule(TWO_SECONDS_AT_12, 16, 24.0, gt.TimingOptions(keys="every_n", every_n=2, inbetweens="hold"))
    assert twos.key_offsets.tolist() == list(range(0, 32, 2))
    fit = gt.plan_schedule(TWO_SECONDS_AT_12, 16, 24.0, gt.TimingOptions(keys="fit", fit_frames=100, inbetweens="hold"))
    assert fit.key_offsets[0] == 0 and fit.key_offsets[-1] == 99
    old = gt.plan_schedule(None, 5, 24.0, gt.TimingOptions())
    assert old.key_offsets.tolist() == [0, 1, 2, 3, 4] and "older version" in old.notes[0]


def synthetic_poses(count: int) -> np.ndarray:
    """A point on a circle and a second one on a wave: a smooth known motion."""
    k = np.arange(count)[:, None]
    return np.stack([np.c_[40 + 20 * np.cos(0.4 * k), 40 + 20 * np.sin(0.4 * k)], np.c_[10 + 3 * k, 30 + 5 * np.sin(0.7 * k)]], axis=1)


def test_smooth_inbetweens_are_exact_at_the_keys_and_c1_between_them() -> None:
    poses = synthetic_poses(16)
    schedule = gt.plan_schedule(TWO_SECONDS_AT_12, 16, 24.0, gt.TimingOptions())
    frames = gt.scheduled_frames(poses, schedule)
    assert schedule.frame_offsets.tolist() == list(range(schedule.key_offsets[-1] + 1))
    at_keys = frames[np.searchsorted(schedule.frame_offsets, schedule.key_offsets)]
    np.testing.assert_array_equal(at_keys, poses[schedule.key_poses])
    # C1: one-sided derivatives of the spline agree at every interior key
    knots = schedule.key_offsets.astype(float)
    for t in knots[1:-1]:
        h = 1e-6
        left = (gt.hermite(poses, knots, np.array([t])) - gt.hermite(poses, knots, np.array([t - h]))) / h
        right = (gt.hermite(poses, knots, np.array([t + h])) - gt.hermite(poses, knots, np.array([t]))) / h
        np.testing.assert_allclose(left, right, atol=1e-3)
    # and the frames' own finite differences change smoothly: no velocity jump at keys beyond what the motion's curvature gives
    velocity = np.diff(frames, axis=0)
    jumps = np.linalg.norm(np.diff(velocity, axis=0), axis=-1).max(axis=-1)
    holds = gt.scheduled_frames(poses, gt.plan_schedule(TWO_SECONDS_AT_12, 16, 24.0, gt.TimingOptions(inbetweens="hold")))
    assert jumps.max() < 3.0 and len(holds) == 16 and (holds == poses[schedule.key_poses]).all()


def test_cycle_inbetweens_run_back_into_the_first_key_with_a_smooth_seam() -> None:
    count = 12
    k = np.arange(count)
    poses = np.stack([np.c_[40 + 20 * np.cos(2 * np.pi * k / count), 40 + 20 * np.sin(2 * np.pi * k / count)]], axis=1)
    timing = {"times_s": (k / 12.0).tolist(), "period_s": 1.0}
    schedule = gt.plan_schedule(timing, count, 24.0, gt.TimingOptions(loop="cycle"))
    assert schedule.period == 24 and schedule.loop_range == (0, 23) and schedule.frame_offsets[-1] == 23
    frames = gt.scheduled_frames(poses, schedule, "cycle")
    looped = np.concatenate([frames, frames[:2]])  # the loop plays frame 0 again after frame 23
    speed = np.linalg.norm(np.diff(looped, axis=0), axis=-1)[:, 0]
    seam, inside = speed[23], speed[:23]
    assert abs(seam - inside.mean()) < 0.02 * inside.mean(), (seam, inside.mean())  # the seam moves like its neighbours
    pingpong = gt.plan_schedule(timing, count, 24.0, gt.TimingOptions(loop="pingpong"))
    assert pingpong.loop_range == (0, 22) and pingpong.period is None


@pytest.mark.parametrize(
    ("options", "fps", "fragment"),
    [
        (gt.TimingOptions(speed=0.0), 24.0, "speed 0 is out of range"),
        (gt.TimingOptions(speed=1e6), 24.0, "speed 1e+06 is out of range"),
        (gt.TimingOptions(keys="fit", fit_frames=0), 24.0, "fit to 0 frames"),
        (gt.TimingOptions(), 0.0, "runs at 0.0 frames per second"),
        (gt.TimingOptions(), gt.scene_frame_rate(24, 0), "frames per second"),
    ],
)
def test_bad_timing_is_one_line_naming_the_value(options, fps, fragment) -> None:
    with pytest.raises(gt.TimingError) as error:
        gt.plan_schedule(TWO_SECONDS_AT_12, 16, fps, options)
    assert fragment in str(error.value) and "\n" not in str(error.value)
