"""The event log the Blender add-on polls: whole JSON lines, safe values, rate-limited progress."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.job import events as events_module
from engine.job.events import EventLog, Progress, error_event, read_events

ROOT = Path(__file__).resolve().parent.parent


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(events_module, "_monotonic", fake)
    return fake


def test_emit_writes_safe_json_lines(tmp_path) -> None:
    log = EventLog(tmp_path / "job" / "events.jsonl")
    before = time.time()
    log.emit("progress", loss=np.float32(0.25), nan=float("nan"), inf=np.float64(math.inf), step=np.int64(3))
    log.emit("message", path=tmp_path, shape=(2, 3), values=np.array([1.5, np.nan]), flag=np.bool_(True), note="ünïcode")
    lines = (tmp_path / "job" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    events, offset = read_events(log.path)
    assert offset == log.path.stat().st_size
    first, second = events
    assert first["kind"] == "progress" and before <= first["time"] <= time.time()
    assert first["loss"] == 0.25 and first["nan"] is None and first["inf"] is None and first["step"] == 3
    assert second == {**second, "path": str(tmp_path), "shape": [2, 3], "values": [1.5, None], "flag": True, "note": "ünïcode"}


def test_reader_takes_only_complete_lines(tmp_path) -> None:
    log = EventLog(tmp_path / "events.jsonl")
    assert read_events(log.path) == ([], 0)  # no log yet
    log.message("one")
    log.warning("two")
    with open(log.path, "ab") as handle:  # a writer caught mid-line
        handle.write(b'{"time": 1, "kind": "mess')
    events, offset = read_events(log.path)
    assert [e["message"] for e in events] == ["one", "two"]
    assert read_events(log.path, offset) == ([], offset)
    with open(log.path, "ab") as handle:
        handle.write(b'age", "message": "three"}\n')
    events, offset = read_events(log.path, offset)
    assert [e["message"] for e in events] == ["three"] and offset == log.path.stat().st_size


def test_reader_restarts_when_the_log_was_replaced(tmp_path) -> None:
    log = EventLog(tmp_path / "events.jsonl")
    for index in range(5):
        log.message(f"old {index}")
    _, offset = read_events(log.path)
    log.path.unlink()
    log.message("new")
    assert [e["message"] for e in read_events(log.path, offset)[0]] == ["new"]


WRITER = """
import sys
from engine.job.events import EventLog
log = EventLog(sys.argv[1])
for index in range(300):
    log.emit("progress", step=index, padding="x" * (index % 97))
log.emit("done")
"""


def test_a_reader_in_another_process_sees_every_event_whole(tmp_path) -> None:
    path = tmp_path / "events.jsonl"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT)
    seen, offset, deadline = [], 0, time.monotonic() + 60
    while time.monotonic() < deadline:
        events, offset = read_events(path, offset)
        seen.extend(events)
        if seen and seen[-1]["kind"] == "done":
            break
    writer.wait(timeout=60)
    assert [e["step"] for e in seen[:-1]] == list(range(300))


def test_events_module_imports_neither_numpy_nor_torch() -> None:
    code = "import sys, engine.job.events; print(sorted(m for m in ('numpy', 'torch') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr


def test_progress_is_rate_limited_and_always_reports_the_last_step(tmp_path, clock) -> None:
    log = EventLog(tmp_path / "events.jsonl")
    with Progress("appearance", total=40, events=log, show_bar=False, min_interval_s=1.0) as progress:
        for step in range(1, 41):
            clock.now += 0.25
            progress.update(step, loss=1.0 / step)
    events = read_events(log.path)[0]
    assert events[0]["kind"] == "stage_start" and events[-1]["kind"] == "stage_end"
    updates = [e for e in events if e["kind"] == "progress"]
    assert [e["step"] for e in updates] == [1, 5, 9, 13, 17, 21, 25, 29, 33, 37, 40]  # one per second, and the last
    assert updates[1]["stage"] == "appearance" and updates[1]["total"] == 40
    assert updates[1]["loss"] == pytest.approx(1 / 5) and updates[1]["eta_s"] == pytest.approx(35 * 0.25)
    assert updates[-1]["eta_s"] == 0
    assert events[-1]["ok"] is True and events[-1]["step"] == 40 and events[-1]["elapsed_s"] == pytest.approx(10.0)


def test_eta_ignores_steps_resumed_from_a_checkpoint(tmp_path, clock) -> None:
    log = EventLog(tmp_path / "events.jsonl")
    with Progress("motion", total=100, events=log, show_bar=False, initial=40, min_interval_s=0) as progress:
        assert progress.eta_s() is None
        for step in range(41, 51):
            clock.now += 1.0  # one second per step since the resume
            progress.update(step, grad_norm=np.float32(2.0))
    last = [e for e in read_events(log.path)[0] if e["kind"] == "progress"][-1]
    assert last["step"] == 50 and last["eta_s"] == pytest.approx(50.0) and last["grad_norm"] == 2.0
    assert read_events(log.path)[0][0] == {**read_events(log.path)[0][0], "kind": "stage_start", "initial": 40}


def test_a_failing_stage_ends_with_ok_false_and_an_error_event(tmp_path) -> None:
    log = EventLog(tmp_path / "events.jsonl")
    with pytest.raises(ValueError):
        with Progress("distillation", total=10, events=log, show_bar=False) as progress:
            progress.update(3)
            try:
                raise ValueError("the prompt is empty; type a motion prompt\nsecond line")
            except ValueError as exc:
                error_event(log, exc)
                raise
    events = read_events(log.path)[0]
    error = next(e for e in events if e["kind"] == "error")
    assert error["message"] == "the prompt is empty; type a motion prompt" and error["type"] == "ValueError"
    assert events[-1] == {**events[-1], "kind": "stage_end", "ok": False, "error_type": "ValueError", "step": 3}
    assert error_event(None, ValueError("ignored")) is None


def test_bar_only_when_asked_or_on_a_terminal(capsys) -> None:
    with Progress("motion", total=5, show_bar=True) as progress:
        for step in range(1, 6):
            progress.update(step, loss=0.5)
    assert "motion" in capsys.readouterr().err
    with Progress("motion", total=5) as progress:  # pytest's stderr is not a terminal
        progress.update(5)
    assert capsys.readouterr().err == ""


def test_an_unexpected_error_names_its_class_and_where_the_traceback_is(tmp_path) -> None:
    log = EventLog(tmp_path / "events.jsonl")
    error_event(log, RuntimeError("CUDA out of memory. Tried to allocate 2 GiB\nsecond line"), where="engine.log")
    error_event(log, ValueError(""))
    events, _ = read_events(tmp_path / "events.jsonl")
    assert [e["message"] for e in events] == [
        "RuntimeError: CUDA out of memory. Tried to allocate 2 GiB (the traceback is in engine.log)",
        "ValueError",
    ]
    assert [e["type"] for e in events] == ["RuntimeError", "ValueError"]
