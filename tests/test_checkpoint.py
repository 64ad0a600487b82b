"""Checkpoints: a run killed (SIGKILL) or cancelled (SIGTERM) resumes to the same weights; disk full is safe."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.job import checkpoint
from engine.job.checkpoint import (
    CheckpointError,
    JobCancelled,
    StopRequest,
    TrainingState,
    capture_rng,
    load_checkpoint,
    previous_path,
    restore_rng,
    run_resumable,
    save_checkpoint,
)
from engine.job.events import EventLog, read_events

ROOT = Path(__file__).resolve().parent.parent
POSIX_ONLY = pytest.mark.skipif(os.name != "posix", reason="sends POSIX signals")

# A tiny deterministic training loop: data drawn from the torch, numpy and Python RNGs every
# step, dropout (so the RNG state matters), Adam and a step LR schedule (so optimiser and
# scheduler state matter). It prints "step N" after each step and sleeps, so a kill lands mid-run.
TRAINER = """
import random, sys, time
from pathlib import Path
import numpy as np, torch
from engine.job.checkpoint import JobCancelled, StopRequest, run_resumable
from engine.job.events import EventLog, error_event

def train(workdir, total, every, sleep_s):
    torch.manual_seed(0); np.random.seed(0); random.seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Dropout(0.3), torch.nn.Linear(32, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=4, gamma=0.5)
    tensors = dict(model.named_parameters())

    def train_step(step):
        x = torch.randn(16, 8)
        y = torch.randn(16, 1) + 0.1 * float(np.random.normal())
        loss = (1.0 + random.random()) * ((model(x) - y) ** 2).mean()
        optimizer.zero_grad(); loss.backward(); optimizer.step(); scheduler.step()
        print(f"step {step + 1}", flush=True)
        time.sleep(sleep_s)
        return loss

    events = EventLog(workdir / "events.jsonl")
    with StopRequest() as stop:
        start = run_resumable(train_step, total, workdir / "train.ckpt", tensors, optimizer, {"scheduler": scheduler},
                              every=every, stop=stop, stage="train", events=events, show_bar=False)
    torch.save({name: tensor.detach() for name, tensor in tensors.items()}, workdir / "final.pt")
    print(f"resumed from {start}", flush=True)

if __name__ == "__main__":
    torch.set_num_threads(1)
    workdir = Path(sys.argv[1])
    try:
        train(workdir, int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    except JobCancelled as exc:
        error_event(EventLog(workdir / "events.jsonl"), exc)
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(JobCancelled.exit_code)
"""

TOTAL_STEPS, EVERY = 12, 3


def start_trainer(workdir: Path, sleep_s: float) -> subprocess.Popen:
    workdir.mkdir(parents=True, exist_ok=True)
    script = workdir / "trainer.py"
    script.write_text(TRAINER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, str(script), str(workdir), str(TOTAL_STEPS), str(EVERY), str(sleep_s)]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_line(process: subprocess.Popen, line: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = process.stdout.readline()
        if got.strip() == line:
            return
        if not got and process.poll() is not None:
            raise AssertionError(f"trainer exited before {line!r}: {process.stderr.read()}")
    raise AssertionError(f"trainer did not print {line!r} in time")


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], rtol=0, atol=1e-6), name


def uninterrupted_weights(workdir: Path) -> dict[str, torch.Tensor]:
    """The same training loop run here, in one go, single-threaded like the subprocess."""
    namespace: dict = {"__name__": "trainer"}
    exec(compile(TRAINER, "trainer.py", "exec"), namespace)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        namespace["train"](workdir, TOTAL_STEPS, EVERY, 0.0)
    finally:
        torch.set_num_threads(threads)
    return torch.load(workdir / "final.pt", weights_only=True)


# --------------------------------------------------------------------------- the real thing


@POSIX_ONLY
def test_killed_and_cancelled_runs_resume_to_the_uninterrupted_weights(tmp_path) -> None:
    expected = uninterrupted_weights(tmp_path / "reference")
    workdir = tmp_path / "job"
    checkpoint_path = workdir / "train.ckpt"

    # 1. SIGKILL after step 5: the step-3 checkpoint survives, steps 4-5 are lost.
    process = start_trainer(workdir, sleep_s=0.3)
    wait_for_line(process, "step 5")
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert load_checkpoint(checkpoint_path).step == 3 and not (workdir / "final.pt").exists()

    # 2. Resume; SIGTERM after step 8: the step in flight finishes, is saved, and the run exits cancelled.
    process = start_trainer(workdir, sleep_s=0.3)
    wait_for_line(process, "step 8")
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == JobCancelled.exit_code, err
    assert err.strip().count("\n") == 0 and "cancelled at step" in err and "run the job again to resume" in err
    saved = load_checkpoint(checkpoint_path).step
    assert saved in (8, 9) and not (workdir / "final.pt").exists()
    events = read_events(workdir / "events.jsonl")[0]
    assert events[-1] == {**events[-1], "kind": "error", "type": "JobCancelled"}
    assert events[-2] == {**events[-2], "kind": "stage_end", "ok": False, "error_type": "JobCancelled"}

    # 3. Resume to the end: the weights equal an uninterrupted run's.
    process = start_trainer(workdir, sleep_s=0.0)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert out.strip().endswith(f"resumed from {saved}")
    assert_same_weights(torch.load(workdir / "final.pt", weights_only=True), expected)
    assert [p.name for p in workdir.iterdir() if p.name.startswith(".")] == []  # no temporary files


# --------------------------------------------------------------------------- in process


def tiny_setup(seed: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    random.seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1))
    return model, torch.optim.Adam(model.parameters(), lr=1e-2)


def training_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer):
    def step(index: int) -> torch.Tensor:
        loss = ((model(torch.randn(8, 4)) - random.random()) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return step


def test_cancel_and_resume_in_process(tmp_path) -> None:
    model, optimizer = tiny_setup(0)
    run_resumable(training_step(model, optimizer), 10, tmp_path / "a.ckpt", dict(model.named_parameters()), optimizer, every=4, show_bar=False)
    expected = {name: tensor.detach().clone() for name, tensor in model.named_parameters()}

    model, optimizer = tiny_setup(0)
    stop, log = StopRequest(), EventLog(tmp_path / "events.jsonl")
    step = training_step(model, optimizer)

    def step_then_cancel(index: int) -> torch.Tensor:
        if index == 5:
            stop.request("test")
        return step(index)

    tensors = dict(model.named_parameters())
    with pytest.raises(JobCancelled, match=r"train cancelled at step 6 of 10 \(test\)"):
        run_resumable(step_then_cancel, 10, tmp_path / "b.ckpt", tensors, optimizer, every=4, stop=stop, stage="train", events=log)
    assert load_checkpoint(tmp_path / "b.ckpt").step == 6

    model, optimizer = tiny_setup(123)  # a fresh process would start from other weights: the checkpoint wins
    resumed = run_resumable(training_step(model, optimizer), 10, tmp_path / "b.ckpt", dict(model.named_parameters()), optimizer, every=4, events=log)
    assert resumed == 6
    assert_same_weights({n: t.detach() for n, t in model.named_parameters()}, expected)
    kinds = [(e["kind"], e.get("ok")) for e in read_events(log.path)[0] if e["kind"].startswith("stage")]
    assert kinds == [("stage_start", None), ("stage_end", False), ("stage_start", None), ("stage_end", True)]


def test_a_checkpoint_for_other_tensors_is_refused(tmp_path) -> None:
    model, optimizer = tiny_setup(0)
    run_resumable(training_step(model, optimizer), 2, tmp_path / "c.ckpt", dict(model.named_parameters()), optimizer, show_bar=False)
    other = torch.nn.Linear(4, 2)
    with pytest.raises(CheckpointError, match="different trainable tensors; delete it"):
        run_resumable(lambda i: None, 4, tmp_path / "c.ckpt", dict(other.named_parameters()), show_bar=False)


def test_rng_states_round_trip_through_a_file(tmp_path) -> None:
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    np.random.normal()  # leaves a cached Gaussian in numpy's state
    state = TrainingState(step=7, tensors={"w": torch.arange(3.0)}, extra={"note": "hello", "values": [1, 2.5]})
    expected = (torch.rand(3), np.random.normal(size=3), random.random())
    save_checkpoint(tmp_path / "rng.ckpt", state)
    torch.rand(5), np.random.rand(5), random.random()  # move every RNG on
    loaded = load_checkpoint(tmp_path / "rng.ckpt")
    restore_rng(loaded)
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.normal(size=3), expected[1]) and random.random() == expected[2]
    assert loaded.step == 7 and torch.equal(loaded.tensors["w"], torch.arange(3.0))
    assert loaded.extra == {"note": "hello", "values": [1, 2.5]} and loaded.optimizer is None
    restore_rng(capture_rng())  # a dict works too


def test_missing_checkpoint_is_none_and_previous_is_kept(tmp_path) -> None:
    path = tmp_path / "run.ckpt"
    assert load_checkpoint(path) is None
    save_checkpoint(path, TrainingState(3, {"w": torch.zeros(2)}))
    assert not previous_path(path).exists()
    save_checkpoint(path, TrainingState(6, {"w": torch.ones(2)}))
    assert load_checkpoint(path).step == 6 and load_checkpoint(previous_path(path)).step == 3


def test_a_damaged_checkpoint_falls_back_to_the_previous_one(tmp_path) -> None:
    path = tmp_path / "run.ckpt"
    save_checkpoint(path, TrainingState(3, {"w": torch.zeros(2)}))
    save_checkpoint(path, TrainingState(6, {"w": torch.ones(2)}))
    path.write_bytes(path.read_bytes()[:200])  # truncated behind our back
    warnings: list[str] = []
    assert load_checkpoint(path, on_warning=warnings.append).step == 3
    assert "resuming from the previous one (step 3)" in warnings[0]
    previous_path(path).write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"checkpoint .*run\.ckpt(\.prev)? is damaged or truncated; delete it to start this stage over"):
        load_checkpoint(path)


def test_disk_full_keeps_the_previous_checkpoint_and_leaves_no_temporary_file(tmp_path, monkeypatch) -> None:
    path = tmp_path / "run.ckpt"
    save_checkpoint(path, TrainingState(3, {"w": torch.zeros(1000)}))
    good = path.read_bytes()

    def disk_full(payload, tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "write_payload", disk_full)
    with pytest.raises(CheckpointError) as caught:
        save_checkpoint(path, TrainingState(6, {"w": torch.ones(1000)}))
    message = str(caught.value)
    assert message.startswith(f"no space left on device while writing {path}: it needs more than ") and message.endswith("(finished stages are kept)")
    assert path.read_bytes() == good and load_checkpoint(path).step == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.ckpt", "run.ckpt.prev"]


@POSIX_ONLY
def test_stop_request_catches_signals_and_restores_handlers(tmp_path) -> None:
    before_term, before_int = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with StopRequest() as stop:
        assert not stop.requested
        signal.raise_signal(signal.SIGTERM)
        assert stop.requested and stop.reason == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before_term and signal.getsignal(signal.SIGINT) is before_int
    with StopRequest() as stop:
        signal.raise_signal(signal.SIGINT)
        assert stop.reason == "SIGINT"
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)  # a second Ctrl-C stops at once


def test_stop_request_sees_the_cancel_file(tmp_path) -> None:
    (tmp_path / "cancel").touch()  # from the run it cancelled: not a request for this one
    with StopRequest(cancel_file=tmp_path / "cancel") as stop:
        assert not stop.requested
        (tmp_path / "cancel").touch()
        assert stop.requested and "cancel" in stop.reason
