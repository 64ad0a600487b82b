"""The README demo: the example sketch animated like a generated reference video.

First the instant motion preview (optical-flow tracking, no model) in `preview/`, then the
whole method in `job/`.

It runs the real pipeline (stages 1–3) with the "demo" preset: 8 frames at 128 px and few
steps, so that it finishes in a couple of minutes on a CPU. Without a downloaded model the
embedded tiny model with random weights is used, and the motion is meaningless.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .job.folder import JobSpec, write_job
from .job.pipeline import run_job
from .media.reference import VideoSpec
from .media.writers import save_frames
from .preview import preview_motion
from .vector.load import load_sketch
from .vector.draw import render_sketch_frames
from .vector.svg import save_svg


def write_reference_video(path: Path, frames: int = 24, size: int = 128) -> Path:
    """A dark ball bouncing left to right on white: a stand-in for a real reference video."""
    ys, xs = np.mgrid[0:size, 0:size]
    video = np.full((frames, size, size, 3), 255, np.uint8)
    for i in range(frames):
        x = size * (0.2 + 0.6 * i / (frames - 1))
        y = size * (0.7 - 0.4 * abs(np.sin(np.pi * 2 * i / (frames - 1))))
        video[i][(xs - x) ** 2 + (ys - y) ** 2 < (size * 0.1) ** 2] = (40, 40, 60)
    return save_frames(video, path, fps=12)


def run_demo(svg: Path, out: Path, model: str | None = None) -> list[Path]:
    """Write the still sketch, a reference video, and the animated result into `out`."""
    sketch = load_sketch(svg)
    reference = write_reference_video(out / "reference.mp4")
    written = [save_svg(sketch, out / "sketch.svg"), save_frames(render_sketch_frames(sketch), out / "sketch.png"), reference]
    preview = preview_motion(sketch, VideoSpec(path=str(reference), num_frames=8, size=128), out_dir=out / "preview")
    written.append(preview.files.out_dir)
    job = out / "job"
    if not (job / "job.json").is_file():
        spec = JobSpec(
            video=str(reference.resolve()), subject_prompt="A cat.", motion_prompt="A cat is jumping.",
            num_frames=8, model=model, quality="demo", resolution=128,
        )
        write_job(job, sketch, spec)
    return written + [run_job(job)]
