"""Nothing lost, nothing misreported: full disks (a real tmpfs), read-only folders (a real read-only
bind mount), two real processes on one job, real symlinks, real nested JSON, damaged results,
stale settings, and the tested set of engine packages."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from engine.errors import SketchAnimatorError, SketchError
from engine.job import environment
from engine.job.events import read_events
from engine.job.folder import JobSpec, write_job
from engine.job.outputs import write_result
from engine.job.pipeline import run_job
from engine.job.results import is_result_complete, read_result, result_damage
from engine.vector.sketch import Path as Stroke
from engine.vector.sketch import Sketch

ROOT = Path(__file__).resolve().parent.parent
SKETCH = Sketch(
    paths=[Stroke(points=[[20, 40], [30, 10], [50, 10], [60, 40]], half_width=2.0), Stroke(points=[[15, 50], [35, 60], [45, 60], [65, 50]], half_width=1.5)],
    width=80, height=80,
)  # fmt: skip


def engine(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})


def one_error_line(done: subprocess.CompletedProcess) -> str:
    """The run failed with exit status 2 and said so in exactly one line, nothing before it."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    frames = np.full((10, 64, 64, 3), 240, np.uint8)
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 160, (20, 20, 3), dtype=np.uint8)
    for i in range(10):
        frames[i, 20:40, 4 + 3 * i : 24 + 3 * i] = texture
    path = tmp_path_factory.mktemp("video") / "block.mp4"
    iio.imwrite(path, frames, fps=10, codec="libx264")
    return path


def preview_job(folder: Path, video: Path, **changes) -> Path:
    spec = JobSpec(video=str(video), subject_prompt="", motion_prompt="", num_frames=4, method="preview", **changes)
    return write_job(folder, SKETCH, spec)


def oracle_job(folder: Path, video: Path, steps: int = 60, **changes) -> Path:
    """A stage-3 job that needs no video model (the target-frames prior), `steps` long."""
    folder.mkdir(parents=True, exist_ok=True)
    truth = np.stack([SKETCH.flat_points() + [2.0 * f, -1.0 * f] for f in range(4)])
    SKETCH.with_frames(truth).save_json(folder / "targets.json")
    spec = JobSpec(
        video=str(video), subject_prompt="", motion_prompt="", num_frames=4, resolution=80, seed=1, prior="target-frames",
        prior_options={"targets": "targets.json"}, steps={"distillation": steps}, distillation={"lr": 1e-2, "augment": False},
        checkpoint_every=10, **changes,
    )  # fmt: skip
    return write_job(folder, SKETCH, spec)


def last_event(job: Path) -> dict:
    return read_events(job / "events.jsonl")[0][-1]


@contextlib.contextmanager
def mounted(kind: str, target: Path, source: Path | None = None, size: str = "256k"):
    """A real tmpfs of `size`, or a read-only bind mount of `source`, at `target` (root only)."""
    target.mkdir(parents=True, exist_ok=True)
    if kind == "tmpfs":
        commands = [["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)]]
    else:
        commands = [["mount", "--bind", str(source), str(target)], ["mount", "-o", "remount,ro,bind", str(target)]]
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            subprocess.run(["umount", str(target)], capture_output=True)
            pytest.skip(f"cannot {' '.join(command[:3])} here ({done.stderr.strip() or 'not root'}): CI runs this as root")
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], capture_output=True)


# ------------------------------------------------------------------------------- full disks
def test_an_mp4_on_a_full_disk_is_one_line_exit_2_and_nothing_half_written(tmp_path) -> None:
    rng = np.random.default_rng(0)
    sketch = Sketch(paths=[Stroke(points=rng.uniform(0, 256, (31, 2)), half_width=3.0) for _ in range(20)])
    animation = sketch.with_frames(np.stack([sketch.flat_points() + rng.normal(0, 20, (sketch.num_points, 2)) for _ in range(48)]))
    animation.save_json(tmp_path / "anim.json")
    with mounted("tmpfs", tmp_path / "disk", size="200k") as disk:
        for name in ("anim.mp4", "anim.gif"):
            line = one_error_line(engine("render", str(tmp_path / "anim.json"), "-o", str(disk / name), "--size", "1024"))
            assert f"no space left on device while writing {disk / name}: it needs more than" in line and "free" in line
            assert "ffmpeg" not in line.lower() or "could not" in line
            assert list(disk.iterdir()) == []  # no truncated video, no temporary file


def test_a_preview_on_a_nearly_full_disk_keeps_its_result_and_names_what_did_not_fit(tmp_path, video) -> None:
    with mounted("tmpfs", tmp_path / "disk", size="160k") as disk:
        out = disk / "preview"
        done = engine("preview", "--sketch", str(save(SKETCH, tmp_path / "sketch.json")), "--video", str(video), "--out", str(out), "--frames", "24")
        line = one_error_line(done)
        assert "no space left on device while writing" in line and "finished stages are kept" in line
        assert read_result(out).num_frames == 24  # result.json and its frames were vouched for before the previews
        assert json.loads((out / "result_manifest.json").read_text())["previews"] == "pending"
        assert not [p.name for p in out.rglob("*") if p.name.startswith(".")]  # nothing half written left behind
        import imageio_ffmpeg

        for video_file in out.glob("*.mp4"):  # a preview that is there is whole, never truncated
            assert imageio_ffmpeg.count_frames_and_secs(str(video_file))[0] == 24, video_file.name


def save(sketch: Sketch, path: Path) -> Path:
    sketch.save_json(path)
    return path


def test_a_checkpoint_on_a_full_disk_is_one_line_and_keeps_the_previous_one(tmp_path) -> None:
    import torch

    from engine.job.checkpoint import CheckpointError, TrainingState, load_checkpoint, save_checkpoint

    small = TrainingState(step=1, tensors={"points": torch.zeros(100)}, optimizer=None, rng={}, extra={})
    with mounted("tmpfs", tmp_path / "disk", size="512k") as disk:
        path = disk / "distillation.ckpt"
        save_checkpoint(path, small)
        big = TrainingState(step=2, tensors={"points": torch.zeros(400_000)}, optimizer=None, rng={}, extra={})
        with pytest.raises(CheckpointError) as error:
            save_checkpoint(path, big)
        message = str(error.value)
        assert "\n" not in message and f"no space left on device while writing {path}" in message and "needs more than" in message
        assert load_checkpoint(path).step == 1  # the finished checkpoint is kept, nothing half written beside it
        assert sorted(p.name for p in disk.iterdir()) == ["distillation.ckpt", "distillation.ckpt.prev"]


# ------------------------------------------------------------------------- read-only folders
def test_a_read_only_job_folder_still_reports_its_result_and_refuses_to_run_in_one_line(tmp_path, video) -> None:
    finished = preview_job(tmp_path / "finished", video)
    run_job(finished)
    unfinished = preview_job(tmp_path / "unfinished", video)
    with mounted("bind", tmp_path / "ro-finished", source=finished) as readonly:
        done = engine("run", str(readonly))
        assert done.returncode == 0 and done.stdout.strip() == f"result: {readonly / 'result'}", done.stderr
    with mounted("bind", tmp_path / "ro-unfinished", source=unfinished) as readonly:
        line = one_error_line(engine("run", str(readonly)))
        assert f"the job folder {readonly} is read-only" in line and "copy the folder" in line


# --------------------------------------------------------------------- stale job settings
def test_animate_into_an_existing_job_with_other_settings_refuses_and_offers_restart_or_resume(tmp_path, video) -> None:
    job = tmp_path / "job"
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    targets = tmp_path / "targets.json"
    SKETCH.with_frames(np.stack([SKETCH.flat_points() + [f, 0.0] for f in range(4)])).save_json(targets)
    sketch = save(SKETCH, tmp_path / "sketch.json")
    base = ["animate", "--sketch", str(sketch), "--out", str(job), "--frames", "4", "--resolution", "80", "--prior", "target-frames",
            "--prior-option", f"targets={targets}", "--distillation-steps", "5", "--motion", "It moves."]  # fmt: skip
    assert "cannot decode" in one_error_line(engine(*base, "--video", str(broken), "--subject", "A box."))
    line = one_error_line(engine(*base, "--video", str(video), "--subject", "A block."))
    assert f"{job} already holds a job with other settings" in line and "video:" in line and "subject_prompt:" in line
    assert "--resume" in line and "--restart" in line
    assert "cannot decode" in one_error_line(engine(*base, "--video", str(video), "--subject", "A block.", "--resume"))  # as it was
    done = engine(*base, "--video", str(video), "--subject", "A block.", "--restart")
    assert done.returncode == 0, done.stderr
    assert read_result(job / "result").metadata["subject_prompt"] == "A block."
    assert [e["kind"] for e in read_events(job / "events.jsonl")[0]].count("error") == 0  # the old log went with the old job
    again = engine(*base, "--video", str(video), "--subject", "A block.")  # the same settings: the finished job
    assert again.returncode == 0 and again.stdout.strip() == f"result: {job / 'result'}"


# ------------------------------------------------------------------- one process per job
def test_a_second_run_refuses_or_waits_and_a_stale_lock_is_taken_over(tmp_path, video) -> None:
    job = oracle_job(tmp_path / "job", video, steps=400)
    first = subprocess.Popen([sys.executable, "-m", "engine", "run", str(job)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not (job / "job.lock").exists():
        time.sleep(0.05)
    holder = json.loads((job / "job.lock").read_text())
    assert holder["pid"] == first.pid
    line = one_error_line(engine("run", str(job)))
    assert f"being run by process {first.pid}" in line and "--wait" in line
    waited = engine("run", str(job), "--wait", timeout=600)
    assert first.wait(timeout=600) == 0 and waited.returncode == 0, waited.stderr
    assert waited.stdout.strip() == f"result: {job / 'result'}" and not (job / "job.lock").exists()
    kinds = [e["kind"] for e in read_events(job / "events.jsonl")[0]]
    assert kinds.count("job_start") == 1 and kinds.count("done") == 1 and "error" not in kinds  # one run, one log

    stale = oracle_job(tmp_path / "stale", video, steps=5)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (stale / "job.lock").write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename, "started": "earlier"}))
    assert engine("run", str(stale)).returncode == 0 and is_result_complete(stale / "result")


# ----------------------------------------------------------------------------- symlinks
def test_links_inside_the_result_are_replaced_never_written_through(tmp_path) -> None:
    frames = np.stack([SKETCH.flat_points() + [f, 0.0] for f in range(3)])
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "frame_0007.svg").write_text("someone else's file")
    (outside / "result_manifest.json").write_text("someone else's manifest")
    result = tmp_path / "job" / "result"
    result.mkdir(parents=True)
    (result / "frames").symlink_to(outside, target_is_directory=True)
    write_result(result, SKETCH, frames)
    assert not (result / "frames").is_symlink() and len(list((result / "frames").glob("*.svg"))) == 3
    assert sorted(p.name for p in outside.iterdir()) == ["frame_0007.svg", "result_manifest.json"]
    assert (outside / "frame_0007.svg").read_text() == "someone else's file"

    linked = tmp_path / "job2" / "result"
    linked.parent.mkdir()
    linked.symlink_to(outside, target_is_directory=True)
    write_result(linked, SKETCH, frames)
    assert not linked.is_symlink() and is_result_complete(linked)
    assert (outside / "result_manifest.json").read_text() == "someone else's manifest"


def test_a_linked_event_log_is_refused_in_one_line(tmp_path, video) -> None:
    job = preview_job(tmp_path / "job", video)
    elsewhere = tmp_path / "elsewhere.log"
    elsewhere.write_text("not yours\n")
    (job / "events.jsonl").symlink_to(elsewhere)
    line = one_error_line(engine("run", str(job)))
    assert "events.jsonl is a symbolic link" in line and elsewhere.read_text() == "not yours\n"


# --------------------------------------------------------------------------------- JSON
def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_deeply_nested_json_is_one_line_and_the_job_log_ends_with_an_error(tmp_path, video) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text('{"schema": "sketch-animator/sketch", "version": 2, "paths": ' + nested(100_000) + "}")
    with pytest.raises(SketchError, match="nested too deeply") as error:
        Sketch.load_json(deep)
    assert "\n" not in str(error.value)
    moderate = tmp_path / "moderate.json"
    moderate.write_text('{"schema": "sketch-animator/sketch", "version": 2, "paths": ' + nested(200) + "}")
    with pytest.raises(SketchError, match="nested 201 levels deep"):
        Sketch.load_json(moderate)

    job = preview_job(tmp_path / "job", video)
    (job / "job.json").write_text('{"schema": "sketch-animator/job", "version": 3, "video": ' + nested(100_000) + "}")
    line = one_error_line(engine("run", str(job)))
    assert "nested too deeply" in line
    assert last_event(job)["kind"] == "error" and "nested too deeply" in last_event(job)["message"]


def test_field_types_are_checked_by_name(tmp_path) -> None:
    data = SKETCH.to_dict()
    data["paths"][1]["closed"] = "false"
    with pytest.raises(SketchError, match=r"paths\[1\]\.closed must be true or false, not 'false'"):
        Sketch.from_dict(data)
    data = SKETCH.to_dict()
    data["paths"][0]["points"][2] = ["1", 2]
    with pytest.raises(SketchError, match=r"paths\[0\]\.points\[\] must be a number"):
        Sketch.from_dict(data)
    spec = JobSpec(video="v.mp4", subject_prompt="A.", motion_prompt="B.").to_dict()
    from engine.job.folder import JobError

    for field, value, words in (("num_frames", "16", "num_frames must be a whole number"), ("subject_prompt", 3, "subject_prompt must be a string"),
                                ("steps", [], "steps must be an object"), ("pose_rate", True, "pose_rate must be a number or null")):  # fmt: skip
        with pytest.raises(JobError, match=words):
            JobSpec.from_dict({**spec, field: value}, "job.json")


def test_errors_reading_the_job_end_the_log_with_an_error_event(tmp_path, video) -> None:
    job = preview_job(tmp_path / "job", video)
    run_job(job)
    (job / "result" / "result_manifest.json").unlink()  # the job must run again …
    (job / "input_sketch.json").write_text("{ not json")  # … and cannot read its sketch
    line = one_error_line(engine("run", str(job)))
    assert "input_sketch.json is not valid JSON" in line
    assert last_event(job)["kind"] == "error" and last_event(job)["type"] == "SketchError"  # not the old "done"


# ------------------------------------------------------------------------ damaged results
def test_a_damaged_result_is_incomplete_and_computed_again_with_a_warning(tmp_path, video) -> None:
    job = preview_job(tmp_path / "job", video)
    result = run_job(job)
    original = read_result(result).frames
    text = (result / "result.json").read_text()
    index = text.index('"metadata"') + 1  # same size, other bytes
    (result / "result.json").write_text(text[:index] + text[index].swapcase() + text[index + 1 :])
    assert result_damage(result) == "result.json has changed" and not is_result_complete(result)
    run_job(job)
    assert is_result_complete(result) and np.allclose(read_result(result).frames, original)
    warnings = [e["message"] for e in read_events(job / "events.jsonl")[0] if e["kind"] == "warning"]
    assert any("is damaged (result.json has changed): computing it again" in w for w in warnings)
    (result / "animation.gif").unlink()
    assert result_damage(result) == "animation.gif is missing"
    with pytest.raises(SketchAnimatorError, match=r"incomplete \(animation.gif is missing\)"):
        read_result(result)
    run_job(job)
    assert is_result_complete(result)


# ------------------------------------------------------------------------- relative paths
def test_a_relative_video_is_relative_to_the_job_folder(tmp_path, video) -> None:
    job = tmp_path / "job"
    job.mkdir()
    (job / "clip.mp4").write_bytes(video.read_bytes())
    preview_job(job, Path("clip.mp4"))
    assert json.loads((job / "job.json").read_text())["video"] == "clip.mp4"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = engine("run", str(job), cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert is_result_complete(job / "result")


# ------------------------------------------------------------------- library noise
def test_a_malicious_checkpoint_is_one_error_line_without_torch_s_warning(tmp_path, video) -> None:
    job = oracle_job(tmp_path / "job", video, steps=20)

    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    import zipfile

    with zipfile.ZipFile(job / "distillation.ckpt", "w") as archive:  # torch's layout, with a pickle that runs code
        archive.writestr("archive/data.pkl", pickle.dumps(Exploit()))
        archive.writestr("archive/version", "3\n")
    line = one_error_line(engine("run", str(job)))
    assert "distillation.ckpt is damaged or truncated" in line
    assert not (tmp_path / "pwned").exists() and last_event(job)["kind"] == "error"


# ------------------------------------------------------------------ the tested environment
def test_the_engine_environment_is_the_tested_set() -> None:
    pins = dict(line.split("==") for line in environment.tested_versions())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    from importlib import metadata

    for name in ("torch", "diffusers", "transformers", "peft"):
        assert metadata.version(name).split("+")[0] == pins[name]  # this suite runs on the tested set
        requirement = next(r for r in project if re.match(rf"{name}\b", r))
        assert "<" in requirement, requirement  # an upper bound on the major
    report = environment.check_engine_python(sys.executable, probe_torch=False)
    assert report.ok and report.untested == []
    outside = environment.check_engine_python(sys.executable, probe_torch=False, tested=["numpy==1.0.0", "torch==" + pins["torch"]])
    assert outside.untested == [f"numpy {metadata.version('numpy')} (tested: 1.0.0)"]
    assert "not the tested versions: numpy" in outside.summary() and "constraints.txt" in outside.summary()
    command = environment.setup_command("/tmp/env")
    assert command[-1] == str(ROOT / "constraints.txt")
    assert "-c" in environment._SETUP_SCRIPT
