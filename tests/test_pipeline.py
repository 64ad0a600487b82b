"""`animate` / `run` end to end on the tiny model: every output, the topology, kill and resume."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from engine.job.events import read_events
from engine.job.results import read_result
from engine.vector.sketch import Path as SketchPath
from engine.vector.sketch import Sketch

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("inputs")
    sketch = Sketch(
        paths=[
            SketchPath(points=[[20, 40], [30, 10], [50, 10], [60, 40]], half_width=2.0),
            SketchPath(points=[[15, 50], [35, 60], [45, 60], [65, 50], [70, 45], [72, 40], [70, 30]], half_width=1.5),
        ],
        width=80,
        height=80,
    )
    sketch.save_json(folder / "sketch.json")
    frames = np.full((10, 64, 64, 3), 255, np.uint8)
    for i in range(10):
        frames[i, 20:40, 4 + 4 * i : 24 + 4 * i] = (30, 30, 200)
    iio.imwrite(folder / "video.mp4", frames, fps=10, codec="libx264")
    return {"sketch": folder / "sketch.json", "video": folder / "video.mp4"}


def animate_command(inputs, job: Path, model: Path, distillation_steps: int) -> list[str]:
    return [
        sys.executable, "-m", "engine", "animate", "--sketch", str(inputs["sketch"]), "--video", str(inputs["video"]),
        "--subject", "A rainbow.", "--motion", "A rainbow moves right.", "--out", str(job), "--model", str(model),
        "--frames", "4", "--resolution", "64", "--device", "cpu", "--cache-dir", str(job.parent / f"{job.name}-cache"),
        "--appearance-steps", "3", "--motion-steps", "3", "--distillation-steps", str(distillation_steps),
    ]


def run_engine(command: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_animate_writes_every_output_with_the_input_topology(inputs, tiny_model_dir, tmp_path) -> None:
    job = tmp_path / "job"
    run_engine(animate_command(inputs, job, tiny_model_dir, 6))
    result = job / "result"
    for name in ["result.json", "animation.gif", "animation.mp4", "side_by_side.gif", "side_by_side.mp4", "loss.png", "result_manifest.json"]:
        assert (result / name).is_file(), name
    assert len(list((result / "frames").glob("frame_*.svg"))) == 4
    assert (job / "reference_frames.png").is_file()

    animated = read_result(result)
    original = Sketch.load_json(inputs["sketch"])
    assert animated.frames.shape == (4, original.num_points, 2)
    assert [len(p.points) for p in animated.paths] == [len(p.points) for p in original.paths]
    assert np.isfinite(animated.frames).all()
    assert not np.allclose(animated.frames, original.flat_points()[None])  # the points moved
    assert animated.metadata["motion_prompt"] == "A rainbow moves right."

    events = read_events(job / "events.jsonl")[0]
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "job_start" and kinds[-1] == "done"
    assert {"appearance", "motion", "distillation"} <= {e.get("stage") for e in events}
    # every diagnostic the diffusion prior returns reaches the progress events and the result's history
    sds_progress = [e for e in events if e["kind"] == "progress" and e.get("stage") == "distillation"]
    assert sds_progress and all(e["grad_norm"] > 0 and 50 <= e["t"] <= 950 for e in sds_progress)
    history = animated.metadata["history"]
    assert set(history) == {"loss", "grad_norm", "t"} and all(len(v) == 6 for v in history.values())
    assert history["loss"] == json.loads((result / "result.json").read_text())["metadata"]["history"]["loss"]
    assert animated.metadata["prior"] == "diffusion" and animated.metadata["frame_size"] == [64, 64]

    # Running the finished job again does nothing but report it.
    again = run_engine([sys.executable, "-m", "engine", "run", str(job)])
    assert "result:" in again.stdout
    assert read_events(job / "events.jsonl")[0][-1]["resumed"] is True


def test_kill_during_distillation_then_resume_equals_uninterrupted(inputs, tiny_model_dir, tmp_path) -> None:
    steps = 40
    straight = tmp_path / "straight"
    command = animate_command(inputs, straight, tiny_model_dir, steps) + ["--seed", "3"]
    run_engine(command)
    expected = read_result(straight / "result").frames

    job = tmp_path / "killed"
    killed_command = animate_command(inputs, job, tiny_model_dir, steps) + ["--seed", "3"]
    # checkpoint every 2 steps so that the kill lands between checkpoints of stage 3
    job.mkdir()
    process = subprocess.Popen(killed_command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 600
    while time.time() < deadline and process.poll() is None and not (job / "distillation.ckpt").exists():
        time.sleep(0.01)
    assert process.poll() is None, "the job ended before it could be killed"
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (job / "result" / "result_manifest.json").exists()

    run_engine([sys.executable, "-m", "engine", "run", str(job)])
    assert np.allclose(read_result(job / "result").frames, expected, atol=1e-5)


def test_old_job_folder_is_refused_in_one_line(tmp_path) -> None:
    (tmp_path / "job.json").write_text(json.dumps({"schema": "sketch-animator/job", "version": 0}))
    result = subprocess.run([sys.executable, "-m", "engine", "run", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "another version" in lines[0]


def test_job_settings_are_checked_before_anything_runs() -> None:
    from engine.job.folder import JobError, JobSpec

    base = dict(video="v.mp4", subject_prompt="A horse.", motion_prompt="A horse is galloping.")
    with pytest.raises(JobError, match="unknown distillation option"):
        JobSpec(**base, distillation={"guidence": 30})
    with pytest.raises(JobError, match="use 2 to 1024"):
        JobSpec(**base, num_frames=2000)
    with pytest.raises(JobError, match="handles 2 to 64"):
        JobSpec(**base, window=200)
    with pytest.raises(JobError, match="unknown quality preset"):
        JobSpec(**base, quality="ultra")
    spec = JobSpec(**base, quality="draft", steps={"distillation": 7}, distillation={"motion_weight": 0.0})
    assert spec.stage_steps() == (150, 150, 7)
    assert JobSpec.from_dict(spec.to_dict(), "job.json") == spec


def test_preview_init_gives_stage_3_the_tracked_motion(inputs, tmp_path) -> None:
    from engine.job.events import EventLog
    from engine.job.folder import JobError, JobSpec
    from engine.job.pipeline import previewed_motion
    from engine.media.reference import VideoSpec

    with pytest.raises(JobError, match="unknown init"):
        JobSpec(video="v.mp4", subject_prompt="A.", motion_prompt="B.", init="optical")
    sketch = Sketch.load_json(inputs["sketch"])
    frames = previewed_motion(sketch, VideoSpec(path=str(inputs["video"]), num_frames=4, size=64), EventLog(tmp_path / "events.jsonl"))
    assert frames.shape == (4, sketch.num_points, 2)
    np.testing.assert_allclose(frames[0], sketch.flat_points(), atol=1e-6)
    shift = (frames - sketch.flat_points()[None]).mean(axis=1)
    assert np.all(np.diff(shift[:, 0]) > 0)  # the box moves right in the video: so does the sketch


def test_target_frames_prior_by_name_recovers_a_known_motion_without_the_video_model(inputs, tmp_path) -> None:
    from engine.job.folder import JobSpec, write_job
    from engine.job.pipeline import run_job

    sketch = Sketch.load_json(inputs["sketch"])
    truth = np.stack([sketch.flat_points() + [2.0 * f, -1.0 * f] for f in range(4)])
    job = tmp_path / "oracle"
    job.mkdir()
    sketch.with_frames(truth).save_json(job / "targets.json")
    spec = JobSpec(
        video=str(inputs["video"]), subject_prompt="", motion_prompt="", num_frames=4, resolution=80, seed=1,
        prior="target-frames", prior_options={"targets": "targets.json"},  # relative to the job folder
        steps={"distillation": 150}, distillation={"lr": 1e-2, "augment": False}, checkpoint_every=1000,
    )  # fmt: skip
    result = read_result(run_job(write_job(job, sketch, spec)))
    assert np.linalg.norm(result.frames - truth, axis=-1).mean() < 1.0
    events = read_events(job / "events.jsonl")[0]
    assert events[0]["stage_steps"] == {"distillation": 150}  # no model: stages 1 and 2 do not run
    assert {e.get("stage") for e in events if e["kind"] == "stage_start"} == {"distillation"}
    assert result.metadata["prior"] == "target-frames" and result.metadata["model"] is None
    history = result.metadata["history"]["loss"]
    assert len(history) == 150 and np.mean(history[-10:]) < 0.2 * np.mean(history[:10])


def test_unknown_prior_or_prior_option_is_refused_by_name() -> None:
    from engine.job.folder import JobError, JobSpec

    base = dict(video="v.mp4", subject_prompt="A.", motion_prompt="B.")
    with pytest.raises(JobError, match="unknown prior 'oracle'.*diffusion, target-frames"):
        JobSpec(**base, prior="oracle")
    with pytest.raises(JobError, match="the diffusion prior has no option 'targets'"):
        JobSpec(**base, prior_options={"targets": "t.json"})
    with pytest.raises(JobError, match="unknown backbone 'sora'"):
        JobSpec(**base, backbone="sora")


def test_a_job_json_of_format_1_still_loads() -> None:
    from engine.job.folder import JOB_VERSION, JobSpec

    version_1 = {  # what the previous engine wrote (resolution was always set, no prior or backbone)
        "schema": "sketch-animator/job", "version": 1, "video": "/clips/gallop.mp4", "subject_prompt": "A horse.",
        "motion_prompt": "A horse is galloping.", "num_frames": 16, "video_start_s": None, "video_end_s": None, "video_fit": "crop",
        "model": None, "quality": "draft", "seed": 4, "resolution": 256, "device": "auto", "dtype": "auto", "cache_dir": None,
        "steps": {}, "checkpoint_every": 25, "distillation": {"guidance": 30.0}, "init": "static", "method": "diffusion", "preview": {},
    }  # fmt: skip
    spec = JobSpec.from_dict(version_1, "job.json")
    assert (spec.resolution, spec.seed, spec.quality, spec.prior, spec.backbone) == (256, 4, "draft", "diffusion", None)
    assert spec.distillation == {"guidance": 30.0} and spec.to_dict()["version"] == JOB_VERSION == 3
    assert (spec.pose_rate, spec.window, spec.max_minutes) == (None, None, None)  # exactly num_frames poses, as format 1 meant


def test_a_second_backbone_is_one_registration_and_its_frame_size_reaches_every_stage(inputs, tiny_model_dir, tmp_path, monkeypatch) -> None:
    from engine import backbones
    from engine.job.folder import JobSpec, write_job
    from engine.job.pipeline import run_job

    # a checkpoint of the ModelScope layout trained at another size: wide frames, 4-frame clips
    entry = backbones.BackboneEntry("tiny-wide", ".modelscope:ModelScopeBackbone", frame_size=(64, 128), num_frames=4)
    monkeypatch.setitem(backbones.BACKBONES, entry.name, entry)
    spec = JobSpec(
        video=str(inputs["video"]), subject_prompt="A rainbow.", motion_prompt="A rainbow moves right.", num_frames=4,
        model=str(tiny_model_dir), backbone="tiny-wide", device="cpu", cache_dir=str(tmp_path / "cache"),
        steps={"appearance": 2, "motion": 2, "distillation": 3}, checkpoint_every=100,
    )  # fmt: skip
    job = write_job(tmp_path / "wide", Sketch.load_json(inputs["sketch"]), spec)
    result = read_result(run_job(job))
    assert result.metadata["backbone"] == "tiny-wide" and result.metadata["frame_size"] == [64, 128]
    assert iio.imread(job / "reference_frames.png").shape == (64, 4 * 128, 3)  # stage 2 read wide frames
    assert np.isfinite(result.frames).all() and not np.allclose(result.frames, result.flat_points()[None])
    stored = [json.loads(p.read_text()) for p in (tmp_path / "cache" / "adapters").glob("*/manifest.json")]
    assert sorted(m["stage"] for m in stored) == ["appearance", "motion"]
