"""The add-on's side of the job folder (engine/job/client.py, folder.py, environment.py), without Blender:
real engine processes started, watched, killed and resumed as the Animate button does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from engine.errors import SketchAnimatorError
from engine.job import client as jobclient
from engine.job import environment
from engine.job.events import EventLog
from engine.job.folder import JobError, JobSpec, write_job
from engine.job.results import is_result_complete, read_result
from engine.settings import DISTILLATION_OPTIONS
from engine.vector.sketch import Path as SketchPath
from engine.vector.sketch import Sketch

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("client-inputs")
    sketch = Sketch(
        paths=[
            SketchPath(points=[[20, 40], [30, 10], [50, 10], [60, 40]], half_width=2.0),
            SketchPath(points=[[15, 50], [35, 60], [45, 60], [65, 50]], half_width=1.5),
        ],
        width=64,
        height=64,
    )
    frames = np.full((10, 64, 64, 3), 250, np.uint8)
    texture = np.random.default_rng(0).integers(0, 120, (16, 16, 3), dtype=np.uint8)
    for i in range(10):
        frames[i, 24:40, 4 + 3 * i : 20 + 3 * i] = texture
    iio.imwrite(folder / "video.mp4", frames, fps=10, codec="libx264")
    return {"sketch": sketch, "video": str(folder / "video.mp4")}


def make_job(folder: Path, inputs: dict, **overrides) -> Path:
    spec = JobSpec(video=inputs["video"], subject_prompt="A doodle.", motion_prompt="A doodle moves.", num_frames=4, resolution=64, device="cpu", **overrides)
    return write_job(folder, inputs["sketch"], spec)


def test_every_overridable_option_reaches_its_settings_and_others_are_refused_by_name() -> None:
    from engine.settings import DistillationSettings, PreviewSettings

    defaults = DistillationSettings()
    changed = {name: (not getattr(defaults, name)) if isinstance(getattr(defaults, name), bool) else getattr(defaults, name) for name in DISTILLATION_OPTIONS}
    changed.update(lr=1e-3, guidance=20.0, t_min=10, t_max=900, weighting="uniform", appearance_weight=0.25, motion_weight=0.75)
    spec = JobSpec(video="v.mp4", subject_prompt="A.", motion_prompt="A moves.", distillation=changed, preview={"strength": 0.5, "rigidity": "similarity"})
    built = DistillationSettings.from_dict({**spec.distillation, "steps": 3})
    assert {name: getattr(built, name) for name in DISTILLATION_OPTIONS} == changed
    assert PreviewSettings.from_dict(spec.preview).strength == 0.5
    for field, options in (("distillation", {"guidanse": 3}), ("preview", {"strenght": 1})):
        with pytest.raises(JobError, match="guidanse|strenght"):
            JobSpec(video="v.mp4", subject_prompt="A.", motion_prompt="A moves.", **{field: options})
    with pytest.raises(JobError, match="steps"):  # set by the job from its preset, not an option
        JobSpec(video="v.mp4", subject_prompt="A.", motion_prompt="A moves.", distillation={"steps": 3})
    assert isinstance(JobError("x"), SketchAnimatorError)


def test_progress_fraction_weights_stages_by_their_steps(tmp_path) -> None:
    log = EventLog(tmp_path / "events.jsonl")
    (tmp_path / "job.json").write_text("{}")
    log.emit("job_start", steps=[10, 10, 20])
    log.emit("stage_start", stage="appearance", total=10, initial=0)
    log.emit("stage_end", stage="appearance", step=10, total=10, ok=True)
    log.emit("stage_start", stage="motion", total=10, initial=0)
    log.emit("progress", stage="motion", step=5, total=10, loss=0.1, eta_s=75.0)
    status = jobclient.JobWatcher(tmp_path).poll()
    assert status.fraction == pytest.approx((10 + 5) / 40)
    assert status.summary() == "Motion (2/3): step 5/10 · ETA 1 min 15 s"
    log.emit("cache_hit", stage="distillation")  # (not a real cache kind, but counted as done the same way)
    log.emit("done", result=str(tmp_path / "result"))
    watcher = jobclient.JobWatcher(tmp_path)
    assert watcher.poll().state == jobclient.DONE and watcher.status.fraction == 1.0


def test_preview_job_runs_through_the_client_to_a_complete_result(inputs, tmp_path) -> None:
    job = make_job(tmp_path / "job", inputs, method="preview")
    watcher = jobclient.JobWatcher(job, jobclient.start_job(job, sys.executable, ROOT))
    assert watcher.status.state == jobclient.STARTING
    status = watcher.wait(300)
    assert status.state == jobclient.DONE, (status.error, (job / "engine.log").read_text()[-2000:])
    assert status.summary() == "Finished" and status.fraction == 1.0 and status.error is None
    assert is_result_complete(job / "result")
    result = read_result(job / "result")
    assert result.num_frames == 4 and result.metadata["kind"] == "preview"
    record = json.loads((job / "process.json").read_text())
    assert record["command"] == [sys.executable, "-m", "engine", "run", str(job.resolve())]
    assert "engine run" in (job / "engine.log").read_text()  # the log holds the run's header and output


def test_killed_engine_is_reported_stopped_and_a_resume_finishes(inputs, tiny_model_dir, tmp_path) -> None:
    job = make_job(
        tmp_path / "job", inputs, model=str(tiny_model_dir), cache_dir=str(tmp_path / "cache"),
        steps={"appearance": 2, "motion": 2, "distillation": 60}, checkpoint_every=2,
    )  # fmt: skip
    process = jobclient.start_job(job, sys.executable, ROOT)
    watcher = jobclient.JobWatcher(job, process)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = watcher.poll()
        if status.stage == "distillation" and status.step >= 4 or not status.is_active:
            break
        time.sleep(0.2)
    assert status.state == jobclient.RUNNING and status.stage == "distillation", status
    os.killpg(process.pid, signal.SIGKILL)  # a crash, the OOM killer, a closed laptop lid …
    process.wait(30)
    status = watcher.poll()
    assert status.state == jobclient.STOPPED and "exit code -9" in status.error and "Resume" in status.error
    assert jobclient.JobWatcher(job).poll().state == jobclient.STOPPED  # a later Blender session sees the same

    watcher.attach(jobclient.start_job(job, sys.executable, ROOT))
    status = watcher.wait(600)
    assert status.state == jobclient.DONE, status.error
    starts = [json.loads(line) for line in (job / "events.jsonl").read_text().splitlines()]
    resumed = [e["initial"] for e in starts if e["kind"] == "stage_start" and e["stage"] == "distillation"]
    assert resumed[0] == 0 and resumed[-1] >= 2  # continued from a checkpoint, not from zero
    assert [e["kind"] for e in starts].count("cache_hit") == 2  # stages 1–2 were not learned again


def test_an_older_runs_last_word_does_not_end_a_running_resume(tmp_path) -> None:
    """Reattaching (no process handle) to a job whose previous run failed, while a new run is going."""
    job = tmp_path / "job"
    job.mkdir()
    (job / "job.json").write_text("{}")
    log = EventLog(job / "events.jsonl")
    log.emit("job_start", steps=[1, 1, 1])
    log.emit("error", message="out of memory", type="RuntimeError")
    time.sleep(0.05)
    runner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(job.resolve())], start_new_session=True)
    try:
        (job / "process.json").write_text(json.dumps({"pid": runner.pid, "started": time.time()}))
        deadline = time.monotonic() + 10
        while not jobclient.pid_runs_job(runner.pid, job.resolve()) and time.monotonic() < deadline:
            time.sleep(0.05)  # until the child has exec'd its own command line
        watcher = jobclient.JobWatcher(job)
        assert watcher.poll().state == jobclient.RUNNING
        assert watcher.cancel(grace_s=0.0)
        runner.wait(30)
        assert watcher.poll().state == jobclient.CANCELLED and (job / "cancel").exists()
    finally:
        runner.kill()
    other = jobclient.JobWatcher(job)  # the pid is gone now: the old failure is what is left
    assert other.poll().state == jobclient.STOPPED


def test_start_job_refuses_a_missing_python_or_folder_in_one_line(inputs, tmp_path) -> None:
    job = make_job(tmp_path / "job", inputs)
    with pytest.raises(jobclient.JobStartError, match=r"engine Python /nope/python does not exist: set it in the add-on preferences"):
        jobclient.start_job(job, "/nope/python", ROOT)
    with pytest.raises(jobclient.JobStartError, match="is not a job folder"):
        jobclient.start_job(tmp_path / "empty", sys.executable, ROOT)


def test_engine_python_check_finds_missing_packages_and_devices(tmp_path) -> None:
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    report = environment.check_engine_python(environment.venv_python(bare), probe_torch=False)
    requirements = environment.engine_requirements()
    assert {r.split(">")[0].split("=")[0].split("<")[0] for r in requirements} >= {"torch", "diffusers", "peft", "transformers"}
    assert not report.ok and all(f"{name} is missing" in report.problems for name in ("torch", "diffusers"))
    assert "Create engine environment" in report.summary()
    good = environment.check_engine_python(sys.executable)
    assert good.ok, good.problems
    assert good.packages["torch"].split("+")[0] and good.cuda in (True, False)
    assert good.summary().startswith(f"Python {sys.version_info.major}.{sys.version_info.minor}")
    assert environment.check_engine_python("/nope/python").problems == ["this file does not exist"]
    assert environment.check_engine_python("").problems == ["no engine Python is set"]


def test_environment_setup_command_creates_a_working_venv(tmp_path) -> None:
    folder = tmp_path / "engine-env"
    task = jobclient.BackgroundCommand(environment.setup_command(folder, requirements=[]), tmp_path / "setup.log")
    deadline = time.monotonic() + 300
    while task.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert task.poll() == 0, (tmp_path / "setup.log").read_text()
    assert task.last_line() == f"ready: {environment.venv_python(folder)}"
    out = subprocess.run([str(environment.venv_python(folder)), "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True)
    assert Path(out.stdout.strip()).resolve() == folder.resolve()
