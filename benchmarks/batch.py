"""Batch runner speed: 6 jobs (3 sketches × 2 motions, CPU, the tiny model) on 1 and on 2 local Ray
workers, and Ray's cost per task against a plain loop.

Each batch is `python -m engine batch PLAN --workers N` in a fresh process with a fresh cache,
as a user runs it (the local Ray starts and stops inside the command). The plan's 6 jobs share
2 motions and 3 appearances, so the graph has 5 shared-stage tasks and 6 stage-3 tasks. The
table shows the wall time of each and the speed-up of 2 workers over 1 (on a 2-core machine
at most 2×; the stages are short with the tiny model, so Ray's start and each task's model
load weigh more than they would with the real model).

The overhead rows time N empty tasks through Ray (submit, schedule, run, return; workers warm)
against the same N calls in a plain loop, and print the cost per task.

Usage: python benchmarks/batch.py [--steps 4 4 30] [--tasks 200]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def write_inputs(folder: Path, steps: list[int]) -> Path:
    """Three sketches, two videos and the plan that pairs every sketch with every motion."""
    import imageio.v3 as iio

    from engine.backbones.tiny import build_tiny_model
    from engine.vector.sketch import Path as Stroke
    from engine.vector.sketch import Sketch

    model = build_tiny_model(folder / "tiny-t2v", seed=0)
    rng = np.random.default_rng(0)
    sketches = {}
    for index in range(3):
        strokes = [Stroke(points=rng.uniform(10, 70, (4, 2)), half_width=1.5) for _ in range(2 + index)]
        Sketch(paths=strokes, width=80, height=80).save_json(folder / f"sketch{index}.json")
        sketches[f"s{index}"] = {"file": f"sketch{index}.json", "subject": f"Sketch {index}."}
    motions = {}
    for index, step in enumerate((3, 2)):
        frames = np.full((10, 64, 64, 3), 245, np.uint8)
        for f in range(10):
            frames[f, 20:38, 4 + step * f : 22 + step * f] = rng.integers(0, 150, (18, 18, 3))
        iio.imwrite(folder / f"video{index}.mp4", frames, fps=10, codec="libx264")
        motions[f"m{index}"] = {"video": f"video{index}.mp4", "prompt": f"Motion {index}."}
    settings = {"num_frames": 4, "resolution": 64, "device": "cpu", "model": str(model), "cache_dir": "cache", "checkpoint_every": 50,
                "steps": dict(zip(("appearance", "motion", "distillation"), steps))}  # fmt: skip
    plan = {"out": "out", "pairs": "all", "settings": settings, "sketches": sketches, "motions": motions}
    (folder / "plan.json").write_text(json.dumps(plan))
    return folder / "plan.json"


def time_batch(steps: list[int], workers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        plan = write_inputs(Path(tmp), steps)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "engine", "batch", str(plan), "--workers", str(workers)], cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT), "RAY_DISABLE_USAGE_STATS": "1"})  # fmt: skip
        elapsed = time.perf_counter() - started
        if done.returncode:
            raise SystemExit(f"the batch failed: {done.stderr[-2000:]}")
        return elapsed


def nothing(value: int) -> int:
    return value


def task_overhead(count: int) -> tuple[float, float]:
    """Seconds per task through Ray (warm workers) and per call in a plain loop."""
    import ray

    import logging

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        remote = ray.remote(nothing)
        ray.get([remote.remote(i) for i in range(20)])  # start the workers
        started = time.perf_counter()
        ray.get([remote.remote(i) for i in range(count)])
        through_ray = (time.perf_counter() - started) / count
    finally:
        ray.shutdown()
    started = time.perf_counter()
    for i in range(count):
        nothing(i)
    plain = (time.perf_counter() - started) / count
    return through_ray, plain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs=3, default=[4, 4, 30], help="appearance, motion and distillation steps of every job")
    parser.add_argument("--tasks", type=int, default=200, help="empty tasks for the overhead rows")
    args = parser.parse_args()
    one = time_batch(args.steps, 1)
    two = time_batch(args.steps, 2)
    per_task, per_call = task_overhead(args.tasks)
    print(f"6 jobs (3 sketches × 2 motions), steps {args.steps}, CPU, tiny model, on {os.cpu_count()} cores")
    print(f"{'run':<34}{'seconds':>10}{'ratio':>10}")
    print(f"{'batch, 1 worker (reference)':<34}{one:>10.1f}{1.0:>10.2f}")
    print(f"{'batch, 2 workers':<34}{two:>10.1f}{one / two:>10.2f}×")
    print()
    print(f"{'per task':<34}{'ms':>10}{'ratio':>10}")
    print(f"{'plain loop call (reference)':<34}{per_call * 1e3:>10.4f}{1.0:>10.0f}")
    print(f"{'Ray task, warm workers':<34}{per_task * 1e3:>10.3f}{per_task / per_call:>10.0f}×")


if __name__ == "__main__":
    main()
