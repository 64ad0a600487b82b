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

from engine.events import read_events
from engine.outputs import read_result
from engine.sketch import Path as SketchPath
from engine.sketch import Sketch

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

    kinds = [e["kind"] for e in read_events(job / "events.jsonl")[0]]
    assert kinds[0] == "job_start" and kinds[-1] == "done"
    assert {"appearance", "motion", "distillation"} <= {e.get("stage") for e in read_events(job / "events.jsonl")[0]}

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
    from engine.pipeline import JobError, JobSpec

    base = dict(video="v.mp4", subject_prompt="A horse.", motion_prompt="A horse is galloping.")
    with pytest.raises(JobError, match="unknown distillation option"):
        JobSpec(**base, distillation={"guidence": 30})
    with pytest.raises(JobError, match="2 to 64"):
        JobSpec(**base, num_frames=200)
    with pytest.raises(JobError, match="unknown quality preset"):
        JobSpec(**base, quality="ultra")
    spec = JobSpec(**base, quality="draft", steps={"distillation": 7}, distillation={"motion_weight": 0.0})
    assert spec.stage_steps() == (150, 150, 7)
    assert JobSpec.from_dict(spec.to_dict(), "job.json") == spec


def test_preview_init_gives_stage_3_the_tracked_motion(inputs, tmp_path) -> None:
    from engine.events import EventLog
    from engine.pipeline import JobError, JobSpec, previewed_motion
    from engine.video import VideoSpec

    with pytest.raises(JobError, match="unknown init"):
        JobSpec(video="v.mp4", subject_prompt="A.", motion_prompt="B.", init="optical")
    sketch = Sketch.load_json(inputs["sketch"])
    frames = previewed_motion(sketch, VideoSpec(path=str(inputs["video"]), num_frames=4, size=64), EventLog(tmp_path / "events.jsonl"))
    assert frames.shape == (4, sketch.num_points, 2)
    np.testing.assert_allclose(frames[0], sketch.flat_points(), atol=1e-6)
    shift = (frames - sketch.flat_points()[None]).mean(axis=1)
    assert np.all(np.diff(shift[:, 0]) > 0)  # the box moves right in the video: so does the sketch
