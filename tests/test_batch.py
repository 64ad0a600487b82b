"""The batch runner on a real local Ray (CPU, the tiny model): one graph for many jobs, each motion
learned once, each appearance once, results equal to the jobs run one by one, lost workers and a
killed driver recovered, racing workers on one cache key, and bad plans refused before anything runs."""

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

from engine.backbones.adapter_cache import AdapterCache
from engine.job.events import read_events
from engine.job.folder import JobSpec, read_job, write_job
from engine.job.pipeline import run_job
from engine.job.results import is_result_complete, read_result
from engine.vector.sketch import Path as Stroke
from engine.vector.sketch import Sketch

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("ray")


def engine(*args: str, timeout: float = 900, **popen) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=batch_env(), **popen)


def batch_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "RAY_DISABLE_USAGE_STATS": "1"}


def sketch_a() -> Sketch:
    return Sketch(paths=[Stroke(points=[[20, 40], [30, 10], [50, 10], [60, 40]], half_width=2.0)], width=80, height=80)


def sketch_b() -> Sketch:
    return Sketch(paths=[Stroke(points=[[15, 50], [35, 60], [45, 60], [65, 50]], half_width=1.5), Stroke(points=[[40, 20], [40, 30], [40, 40], [40, 50]], half_width=1.0)], width=80, height=80)


def write_video(path: Path, step: int) -> Path:
    frames = np.full((10, 64, 64, 3), 245, np.uint8)
    texture = np.random.default_rng(step).integers(0, 150, (18, 18, 3), dtype=np.uint8)
    for i in range(10):
        frames[i, 20:38, 4 + step * i : 22 + step * i] = texture
    iio.imwrite(path, frames, fps=10, codec="libx264")
    return path


SETTINGS = {"num_frames": 4, "resolution": 64, "device": "cpu", "steps": {"appearance": 2, "motion": 2, "distillation": 4}, "checkpoint_every": 1, "seed": 5}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("batch-inputs")
    svg = folder / "wave.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="80" height="80"><path d="M10 40 C 25 10, 55 70, 70 40" stroke="black" stroke-width="3" fill="none"/></svg>')
    sketch_a().save_json(folder / "arch.json")
    return {"svg": svg, "arch": folder / "arch.json", "right": write_video(folder / "right.mp4", 3), "left": write_video(folder / "down.mp4", 2)}


def write_plan(folder: Path, inputs: dict[str, Path], model: Path, rig: Path, out: str = "out") -> Path:
    plan = folder / "plan.toml"
    settings = {**SETTINGS, "model": str(model), "cache_dir": "cache"}
    lines = [f'out = "{out}"', 'pairs = "all"', "", "[settings]"]
    lines += [f"{key} = {json.dumps(value) if not isinstance(value, dict) else '{ ' + ', '.join(f'{k} = {v}' for k, v in value.items()) + ' }'}" for key, value in settings.items()]
    lines += ["", "[sketches.wave]", f'file = "{inputs["svg"]}"', 'subject = "A wave."', "", "[sketches.arch]", f'file = "{inputs["arch"]}"', 'subject = "An arch."']
    lines += ["", "[sketches.rig]", f'job = "{rig}"']
    lines += ["", "[motions.right]", f'video = "{inputs["right"]}"', 'prompt = "It slides right."', "", "[motions.down]", f'video = "{inputs["left"]}"', 'prompt = "It slides."', "end = 0.8"]
    plan.write_text("\n".join(lines) + "\n")
    return plan


def rig_job(folder: Path, inputs: dict[str, Path], model: Path) -> Path:
    """A job folder as the add-on writes it: its own sketch, subject and settings."""
    spec = JobSpec(video=str(inputs["right"]), subject_prompt="Two lines.", motion_prompt="", model=str(model), **{k: v for k, v in SETTINGS.items()})
    return write_job(folder / "rig-from-blender", sketch_b(), spec)


def job_events(job: Path) -> list[dict]:
    return read_events(job / "events.jsonl")[0]


def sequential_frames(job: Path, scratch: Path) -> np.ndarray:
    """The same job run alone, one process, a fresh cache: what the batch must equal."""
    import torch

    sketch, spec = read_job(job)
    from dataclasses import replace

    alone = write_job(scratch / job.parent.name / job.name, sketch, replace(spec, cache_dir=str(scratch / "cache")))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a batch task given one CPU
    try:
        return read_result(run_job(alone)).frames
    finally:
        torch.set_num_threads(threads)


# ------------------------------------------------------------------------------ the graph
def test_three_sketches_by_two_motions_learn_each_stage_once_and_equal_the_jobs_run_alone(tmp_path, inputs, tiny_model_dir) -> None:
    rig = rig_job(tmp_path, inputs, tiny_model_dir)
    plan = write_plan(tmp_path, inputs, tiny_model_dir, rig)
    done = engine("batch", str(plan), "--workers", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "out"
    jobs = sorted(p.parent for p in out.glob("*/*/job.json"))
    assert [f"{j.parent.name}/{j.name}" for j in jobs] == ["arch/down", "arch/right", "rig/down", "rig/right", "wave/down", "wave/right"]
    assert all(is_result_complete(j / "result") for j in jobs)
    assert "batch: 6/6 done · 0 running · 0 failed · 0 waiting" in done.stderr

    entries = AdapterCache(tmp_path / "cache" / "adapters").entries()
    assert sorted(e.kind for e in entries) == ["appearance"] * 3 + ["motion"] * 2  # learned once each, nothing more
    batch_log = read_events(out / "batch.jsonl")[0]
    stage_tasks = [e for e in batch_log if e["kind"] == "stage_task"]
    assert sorted(e["stage"] for e in stage_tasks) == ["appearance"] * 3 + ["motion"] * 2
    stored = {(e["stage"], e["key"]) for j in jobs for e in job_events(j) if e["kind"] == "adapter_stored"}
    assert sorted(stage for stage, _ in stored) == ["appearance"] * 3 + ["motion"] * 2
    for job in jobs:  # each job's own run found both of its stages learned, and ran stage 3 itself
        events = job_events(job)
        own_run = events[max(i for i, e in enumerate(events) if e["kind"] == "job_start") :]
        assert sorted(e["stage"] for e in own_run if e["kind"] == "cache_hit") == ["appearance", "motion"]
        assert [e["kind"] for e in own_run][-1] == "done" and any(e.get("stage") == "distillation" for e in own_run)
    rig_result = read_result(out / "rig" / "right" / "result")
    assert rig_result.metadata["subject_prompt"] == "Two lines." and rig_result.metadata["motion_prompt"] == "It slides right."

    for job in jobs:
        batch_frames = read_result(job / "result").frames
        assert np.array_equal(batch_frames, sequential_frames(job, tmp_path / "alone")), job

    again = engine("batch", str(plan))  # all finished: nothing runs, not even Ray
    assert again.returncode == 0 and "6 of 6 jobs were already finished" in again.stdout
    assert [e["kind"] for e in job_events(jobs[0])].count("job_start") == 1


# ------------------------------------------------------------------------------ recovery
def oracle_plan(folder: Path, inputs: dict[str, Path], names: list[str], steps: int) -> Path:
    """Jobs with the target-frames prior (no video model): stage 3 only, `steps` long."""
    truth = sketch_a().with_frames(np.stack([sketch_a().flat_points() + [2.0 * f, -1.0 * f] for f in range(4)]))
    truth.save_json(folder / "targets.json")
    plan = {
        "out": "out", "pairs": "all",
        "settings": {"num_frames": 4, "resolution": 80, "seed": 2, "prior": "target-frames", "prior_options": {"targets": str(folder / "targets.json")},
                     "steps": {"distillation": steps}, "distillation": {"lr": 1e-2, "augment": False}, "checkpoint_every": 5},
        "sketches": {name: {"file": str(inputs["arch"])} for name in names},
        "motions": {"right": {"video": str(inputs["right"]), "prompt": "It slides."}},
    }  # fmt: skip
    (folder / "plan.json").write_text(json.dumps(plan))
    return folder / "plan.json"


def wait_for(condition, timeout_s: float = 300, what: str = "") -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def distillation_step(job: Path) -> int:
    steps = [e.get("step", 0) for e in read_events(job / "events.jsonl")[0] if e["kind"] == "progress" and e.get("stage") == "distillation"]
    return max(steps, default=0)


def test_a_worker_killed_during_stage_3_is_retried_and_the_result_equals_an_uninterrupted_run(tmp_path, inputs) -> None:
    plan = oracle_plan(tmp_path, inputs, ["arch"], steps=400)
    job = tmp_path / "out" / "arch" / "right"
    driver = subprocess.Popen([sys.executable, "-m", "engine", "batch", str(plan), "--workers", "1"], cwd=ROOT, env=batch_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        wait_for(lambda: distillation_step(job) >= 30 and (job / "distillation.ckpt").exists(), what="stage 3 to be under way")
        worker = json.loads((job / "job.lock").read_text())["pid"]
        assert worker != driver.pid  # the job runs in a Ray worker, not in the driver
        os.kill(worker, signal.SIGKILL)
        out, err = driver.communicate(timeout=600)
    finally:
        kill_group(driver)
    assert driver.returncode == 0, err[-3000:]
    starts = [e for e in job_events(job) if e["kind"] == "job_start"]
    assert len(starts) == 2  # the lost try, and the retry that resumed from its checkpoint
    assert np.array_equal(read_result(job / "result").frames, sequential_frames(job, tmp_path / "alone"))


def kill_group(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_a_killed_driver_run_again_does_only_the_unfinished_work(tmp_path, inputs) -> None:
    plan = oracle_plan(tmp_path, inputs, ["one", "two", "three"], steps=150)
    out = tmp_path / "out"
    driver = subprocess.Popen([sys.executable, "-m", "engine", "batch", str(plan), "--workers", "1"], cwd=ROOT, env=batch_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        def one_done_and_one_midway() -> bool:
            done = any(e["kind"] == "job_done" for e in read_events(out / "batch.jsonl")[0])
            midway = [j for j in out.glob("*/right") if (j / "distillation.ckpt").exists() and not (j / "result" / "result_manifest.json").exists()]
            return done and bool(midway)

        wait_for(one_done_and_one_midway, what="one job finished and another midway")
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray it started
        driver.wait()
    finally:
        kill_group(driver)
    finished = sorted(p.parents[2].name for p in out.glob("*/right/result/result_manifest.json"))
    assert 1 <= len(finished) < 3
    interrupted = [n for n in ("one", "two", "three") if n not in finished and (out / n / "right" / "distillation.ckpt").exists()]
    done = engine("batch", str(plan), "--workers", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    second = [e for e in read_events(out / "batch.jsonl")[0] if e["kind"] == "batch_start"][-1]
    assert sorted(second["already"]) == [f"{name}/right" for name in finished]
    assert sorted(second["to_do"]) == sorted(f"{n}/right" for n in ("one", "two", "three") if n not in finished)
    for name in ("one", "two", "three"):
        events = job_events(out / name / "right")
        assert [e["kind"] for e in events].count("done") == 1  # a finished job was not run again
        assert is_result_complete(out / name / "right" / "result")
    assert interrupted
    for name in interrupted:  # a job stopped midway continued from its checkpoint, not from step 0
        starts = [e for e in job_events(out / name / "right") if e["kind"] == "stage_start" and e["stage"] == "distillation"]
        assert len(starts) == 2 and starts[-1]["initial"] > 0


def test_a_job_that_travels_gives_the_same_result_as_one_run_in_place(tmp_path, inputs, tiny_model_dir) -> None:
    here, away = tmp_path / "here", tmp_path / "away"
    for folder in (here, away):
        folder.mkdir()
        plan = {"out": "out", "pairs": "all", "settings": {**SETTINGS, "model": str(tiny_model_dir), "cache_dir": "cache"},
                "sketches": {"arch": {"file": str(inputs["arch"]), "subject": "An arch."}},
                "motions": {"right": {"video": str(inputs["right"]), "prompt": "It slides right."}}}  # fmt: skip
        (folder / "plan.json").write_text(json.dumps(plan))
    scratch = tmp_path / "worker-cache"
    assert engine("batch", str(here / "plan.json")).returncode == 0
    shipped = subprocess.run([sys.executable, "-m", "engine", "batch", str(away / "plan.json"), "--ship"], cwd=ROOT, capture_output=True, text=True,
                             timeout=900, env={**batch_env(), "SKETCH_ANIMATOR_CACHE": str(scratch)})  # fmt: skip
    assert shipped.returncode == 0, shipped.stderr[-3000:]
    job = away / "out" / "arch" / "right"
    assert is_result_complete(job / "result")
    assert np.array_equal(read_result(job / "result").frames, read_result(here / "out" / "arch" / "right" / "result").frames)
    assert not (away / "cache").exists()  # the worker used its own cache …
    assert len(AdapterCache(scratch / "adapters").entries()) == 2  # … filled by the shared stages that travelled to it
    kinds = [e["kind"] for e in job_events(job)]
    assert kinds[-1] == "done" and "adapter_stored" in kinds  # its events came back with the result


# ------------------------------------------------------------------------------ racing workers
def test_two_workers_racing_on_one_adapter_key_leave_one_valid_entry_used_by_both(tmp_path, inputs, tiny_model_dir) -> None:
    import ray
    import safetensors.torch

    from engine.batch.tasks import stage_task

    spec = JobSpec(video=str(inputs["right"]), subject_prompt="An arch.", motion_prompt="It slides.", model=str(tiny_model_dir), cache_dir=str(tmp_path / "cache"),
                   **{**SETTINGS, "steps": {"appearance": 6, "motion": 2, "distillation": 2}})  # fmt: skip
    folders = [write_job(tmp_path / name, sketch_a(), spec) for name in ("first", "second")]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(stage_task)
        host = os.uname().nodename
        refs = [task.remote("appearance", f.name, str(f), [str(f)], host, [None]) for f in folders]
        returned = ray.get(refs)
    finally:
        ray.shutdown()
    entries = AdapterCache(tmp_path / "cache" / "adapters").entries()
    assert len(entries) == 1 and entries[0].kind == "appearance"
    kinds = sorted(e["kind"] for f in folders for e in job_events(f) if e["kind"] in ("adapter_stored", "cache_hit"))
    assert kinds == ["adapter_stored", "cache_hit"]  # one wrote it, the other reused it
    assert [list(r["entries"]) for r in returned] == [[entries[0].key]] * 2
    tensors = safetensors.torch.load_file(entries[0].path / "appearance.safetensors")
    assert tensors and all(t.isfinite().all() for t in tensors.values())
    assert not [p for p in (tmp_path / "cache" / "adapters").iterdir() if p.name.startswith((".tmp", ".lock"))]


# ------------------------------------------------------------------------------ bad plans
@pytest.mark.parametrize(
    "change, words",
    [
        (lambda p: p["sketches"]["arch"].update(file="missing.svg"), "sketches.arch.file 'missing.svg' does not exist"),
        (lambda p: p["motions"]["right"].update(video="nowhere.mp4"), "motions.right.video 'nowhere.mp4' does not exist"),
        (lambda p: p["sketches"]["arch"].update(colour="red"), "sketches.arch has an unknown key 'colour': use file, job, subject"),
        (lambda p: p.update(sketchs={}), "unknown key 'sketchs'"),
        (lambda p: p["settings"].update(qualty="draft"), "settings has an unknown key 'qualty'"),
        (lambda p: p.update(pairs=[["arch", "right"], ["arch", "galop"]]), "pairs[1] names the motion 'galop', which the plan does not define: use one of right"),
        (lambda p: p.update(pairs=[["arch", "right"], ["arch", "right"]]), "pairs[1] pairs arch with right a second time"),
        (lambda p: p["sketches"].update(Arch={"file": p["sketches"]["arch"]["file"]}), "differ only in case"),
        (lambda p: p["settings"].update(num_frames="16"), "num_frames must be a whole number"),
        (lambda p: p["motions"]["right"].update(prompt="  "), "motions.right.prompt is empty"),
        (lambda p: p["sketches"]["arch"].pop("subject"), "sketches.arch needs a subject"),
    ],
)
def test_bad_plan_entries_are_one_line_before_anything_runs(tmp_path, inputs, change, words) -> None:
    plan = {"out": "out", "pairs": "all", "settings": {"quality": "demo"}, "sketches": {"arch": {"file": str(inputs["arch"]), "subject": "An arch."}},
            "motions": {"right": {"video": str(inputs["right"]), "prompt": "It slides."}}}  # fmt: skip
    change(plan)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    done = engine("batch", str(tmp_path / "plan.json"), timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], done.stderr
    assert not (tmp_path / "out").exists()  # nothing was written, nothing ran


def test_duplicate_names_in_the_plan_file_itself_are_refused(tmp_path, inputs) -> None:
    (tmp_path / "plan.json").write_text('{"sketches": {"arch": {"file": "a.svg"}, "arch": {"file": "b.svg"}}, "motions": {}}')
    done = engine("batch", str(tmp_path / "plan.json"), timeout=120)
    assert done.returncode == 2 and "the name 'arch' is given twice" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    (tmp_path / "plan.toml").write_text('[sketches.arch]\nfile = "a.svg"\n[sketches.arch]\nfile = "b.svg"\n')
    done = engine("batch", str(tmp_path / "plan.toml"), timeout=120)
    assert done.returncode == 2 and "is not valid TOML" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    job = write_job(tmp_path / "job", sketch_a(), JobSpec(video=str(inputs["right"]), subject_prompt="A.", motion_prompt="B."))
    (tmp_path / "jobs.json").write_text(json.dumps({"jobs": [str(job), str(job)]}))
    for args in (["batch", str(tmp_path / "jobs.json")], ["batch", "--job", str(job), "--job", str(tmp_path / "job" / ".." / "job")]):
        done = engine(*args, timeout=120)
        assert done.returncode == 2 and f"the job folder {job} is given twice" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_failed_job_is_reported_in_one_line_and_the_others_finish(tmp_path, inputs) -> None:
    plan_path = oracle_plan(tmp_path, inputs, ["arch"], steps=5)
    plan = json.loads(plan_path.read_text())
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video" * 100)
    plan["motions"]["broken"] = {"video": str(broken), "prompt": "It breaks."}
    plan_path.write_text(json.dumps(plan))
    done = engine("batch", str(plan_path), "--workers", "1")
    assert done.returncode == 2
    assert is_result_complete(tmp_path / "out" / "arch" / "right" / "result")
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "1 of 2 jobs failed (arch/broken)" in errors[0], done.stderr
    failed = [line for line in done.stderr.splitlines() if line.startswith("failed: arch/broken: ")]
    assert len(failed) == 1 and "cannot decode" in failed[0], done.stderr
    assert job_events(tmp_path / "out" / "arch" / "broken")[-1]["kind"] == "error"


def test_a_task_asks_for_a_gpu_exactly_when_its_job_runs_on_cuda() -> None:
    from engine.batch.runner import task_resources

    assert task_resources("cuda", 0) == task_resources("cuda:1", 4) == {"num_gpus": 1, "num_cpus": 1}
    assert task_resources("auto", 2) == {"num_gpus": 1, "num_cpus": 1}  # "auto" on a cluster with GPUs takes one
    assert task_resources("auto", 0) == task_resources("cpu", 8) == task_resources("mps", 0) == {"num_cpus": 1}


def test_cancelling_one_job_of_a_batch_stops_that_job_alone(tmp_path, inputs) -> None:
    from engine.job import client

    plan = oracle_plan(tmp_path, inputs, ["kept", "cancelled"], steps=2000)
    from engine.batch.plan import load_plan

    _, jobs = load_plan(plan)
    folders = [j.folder for j in jobs]
    process = client.start_batch(folders, sys.executable, ROOT)
    try:
        watchers = [client.JobWatcher(f, process) for f in folders]
        assert watchers[0].poll().summary() == "Waiting in the batch for a free worker…"  # Ray is still starting: no event yet
        wait_for(lambda: distillation_step(folders[1]) >= 5, what="the job to be cancelled to run")
        assert watchers[1].cancel()  # its cancel file alone: the batch and the other job go on
        assert watchers[1].wait(120).state == client.CANCELLED
        assert process.poll() is None and watchers[0].poll().state == client.RUNNING
        assert watchers[0].cancel() and watchers[0].wait(120).state == client.CANCELLED
        assert process.wait(120) == 2  # the batch ends, reporting both jobs as not done
    finally:
        kill_group(process)
    record = json.loads((folders[0] / "process.json").read_text())
    assert record["batch"] and record["pid"] == process.pid and str(folders[1]) in record["command"]


# ------------------------------------------------------------------------------ an existing cluster
@pytest.fixture
def ray_cluster(tmp_path):
    """A real Ray cluster started with `ray start --head`, as on a GPU machine, whose workers keep
    their files in their own folder (`worker/`: the worker machine's disk); stopped afterwards."""
    ray_cli = Path(sys.executable).with_name("ray")
    port = 26379 + os.getpid() % 1000
    worker_disk = {**batch_env(), "SKETCH_ANIMATOR_CACHE": str(tmp_path / "worker")}
    started = subprocess.run([str(ray_cli), "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"],
                             capture_output=True, text=True, timeout=180, env=worker_disk)  # fmt: skip
    assert started.returncode == 0, started.stderr[-2000:]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(ray_cli), "stop", "--force"], capture_output=True, timeout=120, env=batch_env())


def test_a_batch_on_an_existing_cluster_sends_jobs_follows_them_live_and_cancels_one(tmp_path, inputs, ray_cluster) -> None:
    plan = oracle_plan(tmp_path, inputs, ["quick", "long"], steps=60)
    plan_data = json.loads(plan.read_text())
    plan_data["pairs"] = [["quick", "right"]]
    plan_data["sketches"]["long"]["file"] = str(inputs["arch"])
    plan.write_text(json.dumps(plan_data))
    long_plan = tmp_path / "long.json"
    long_plan.write_text(json.dumps({**plan_data, "out": "out-long", "pairs": [["long", "right"]], "settings": {**plan_data["settings"], "steps": {"distillation": 5000}}}))
    env = batch_env()
    done = subprocess.run([sys.executable, "-m", "engine", "batch", str(plan), "--address", ray_cluster, "--ship"], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    quick = tmp_path / "out" / "quick" / "right"
    assert np.array_equal(read_result(quick / "result").frames, sequential_frames(quick, tmp_path / "alone"))
    assert [p.name[:12] for p in (tmp_path / "worker" / "batch-jobs").iterdir()] == ["quick-right-"]  # it ran from the files sent, on the worker's disk

    job = tmp_path / "out-long" / "long" / "right"
    driver = subprocess.Popen([sys.executable, "-m", "engine", "batch", str(long_plan), "--address", ray_cluster, "--ship"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        wait_for(lambda: distillation_step(job) >= 10, what="the travelled job's progress in the local log")  # live, while it runs there
        (job / "cancel").write_text("cancel\n")  # what Cancel in Blender does
        out, err = driver.communicate(timeout=300)
    finally:
        kill_group(driver)
    assert driver.returncode == 2 and "failed: long/right: " in err, err[-2000:]
    last = job_events(job)[-1]
    assert last["kind"] == "error" and last["type"] == "JobCancelled"
    assert distillation_step(job) < 5000 and not is_result_complete(job / "result")


def test_a_shared_stage_that_fails_fails_every_job_waiting_for_it_in_one_line_each(tmp_path, inputs, tiny_model_dir) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video" * 100)
    plan = {"out": "out", "pairs": "all", "settings": {**SETTINGS, "model": str(tiny_model_dir), "cache_dir": "cache"},
            "sketches": {"wave": {"file": str(inputs["svg"]), "subject": "A wave."}, "arch": {"file": str(inputs["arch"]), "subject": "An arch."}},
            "motions": {"broken": {"video": str(broken), "prompt": "It breaks."}}}  # fmt: skip
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    done = engine("batch", str(tmp_path / "plan.json"), "--workers", "2")
    assert done.returncode == 2 and "2 of 2 jobs failed" in done.stderr
    failed = sorted(line for line in done.stderr.splitlines() if line.startswith("failed: "))
    assert [line.split(":")[1].strip() for line in failed] == ["arch/broken", "wave/broken"] and all("cannot decode" in line for line in failed)
    for name in ("wave", "arch"):  # each waiting job's log ends with the stage's error, once
        events = job_events(tmp_path / "out" / name / "broken")
        assert events[-1]["kind"] == "error" and "cannot decode" in events[-1]["message"]
        assert [e["kind"] for e in events].count("error") == 1 and not any(e["kind"] == "job_start" for e in events)
    assert sorted(e.kind for e in AdapterCache(tmp_path / "cache" / "adapters").entries()) == ["appearance", "appearance"]  # what could be learned is kept


def test_jobs_of_one_motion_send_one_copy_of_its_video(tmp_path, inputs) -> None:
    import ray

    from engine.batch.plan import load_plan
    from engine.batch.runner import job_work, travel_bundles

    _, jobs = load_plan(oracle_plan(tmp_path, inputs, ["one", "two"], steps=5))
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        bundles = travel_bundles(ray, [job_work(job, {}) for job in jobs])
        (files_one, video_one, name_one), (files_two, video_two, name_two) = bundles["one/right"], bundles["two/right"]
        assert video_one == video_two and files_one != files_two and name_one == name_two  # one video in the object store
        assert ray.get(video_one) == inputs["right"].read_bytes()
        assert json.loads(ray.get(files_one)["job.json"])["video"] == name_one and "events.jsonl" not in ray.get(files_one)
    finally:
        ray.shutdown()
