"""Motion preview speed: `python -m engine preview`, 16 frames from a 1080p clip, on 2 CPU cores.

Generates a 1080p H.264 clip (a textured disc crossing a textured background while the camera
pans) and runs the preview end to end in fresh processes, as a user does. One run is timed by
its parts, measured inside that process: process start (the interpreter and the imports, from
spawning it to the first line of the preview), decode (ffmpeg decodes, crops and downscales
the chosen frames), flow (seed tracks, camera, subject alignment and segmentation), transfer
(the motion onto the sketch's control points) and write (result.json, the SVG frames, then the
GIF/MP4 previews drawn without torch). The other runs are plain `python -m engine preview`,
wall time; the table shows their median against the 5 s target.

References measured in the same run, with the ratio: decoding the same frames at full size
into Python and fitting them there (what the preview did before), and drawing the preview
images with the differentiable torch renderer (whose import alone costs ~1.5 s).

Usage: python benchmarks/preview.py [--seconds 2] [--fps 30] [--threads 2] [--repeat 3] [--video clip.mp4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WIDTH, HEIGHT = 1920, 1080
FRAMES, SIZE = 16, 256
TARGET_S = 5.0
SKETCH = ROOT / "examples" / "cat.svg"


def make_1080p_video(path: Path, seconds: float, fps: float) -> Path:
    """A textured disc moving right and bobbing, on a textured background the camera pans across."""
    import imageio.v2 as imageio
    from PIL import Image

    count = max(2, round(seconds * fps))
    rng = np.random.default_rng(0)

    def smooth_noise(width: int, height: int, cell: int, tint: tuple[float, float, float]) -> np.ndarray:
        coarse = rng.integers(0, 256, (max(1, height // cell), max(1, width // cell), 3), dtype=np.uint8)
        image = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
        return np.clip(image * np.asarray(tint, np.float32), 0, 255).astype(np.uint8)

    pan = 6  # px per frame
    background = smooth_noise(WIDTH + pan * count, HEIGHT, 12, (0.7, 1.0, 0.8))
    radius = 200
    disc_texture = smooth_noise(2 * radius, 2 * radius, 8, (1.0, 0.6, 0.5))
    rows, cols = np.mgrid[: 2 * radius, : 2 * radius]
    disc = (np.hypot(rows - radius + 0.5, cols - radius + 0.5) < radius)[..., None]
    with imageio.get_writer(
        path, format="FFMPEG", mode="I", fps=fps, codec="libx264", pixelformat="yuv420p",
        macro_block_size=1, ffmpeg_log_level="error", output_params=["-preset", "veryfast", "-crf", "20"],
    ) as writer:  # fmt: skip
        for t in range(count):
            frame = background[:, pan * t : pan * t + WIDTH].copy()
            x = 560 + round(400 * t / count)
            y = 340 + round(60 * np.sin(2 * np.pi * t / count))
            region = frame[y : y + 2 * radius, x : x + 2 * radius]
            region[...] = np.where(disc, disc_texture, region)
            writer.append_data(frame)
    return path


PARTS_SCRIPT = r"""
import json, sys, time
entered = time.time()
from engine.job.outputs import write_result
from engine.preview import track_subject, transfer_motion
from engine.preview.run import preview_metadata, read_clip_with_substeps
from engine.settings import PreviewSettings
from engine.vector.load import load_sketch
imported = time.time()
video, sketch_path, out = sys.argv[1:4]
sketch = load_sketch(sketch_path)
settings = PreviewSettings(num_frames=16, size=256)
spec = settings.video_spec(video)
t0 = time.time(); clip, dense, substeps = read_clip_with_substeps(spec, settings.flow_substeps)
t1 = time.time(); tracks = track_subject(dense, settings, substeps, times_s=clip.timing()["times_s"])
t2 = time.time(); transfer = transfer_motion(sketch, tracks, settings)
t3 = time.time(); write_result(out, sketch, transfer.frames, clip.frames, metadata=preview_metadata(settings, spec, tracks, [], clip))
t4 = time.time()
print(json.dumps({"entered": entered, "imported": imported, "decode": t1 - t0, "flow": t2 - t1, "transfer": t3 - t2,
                  "write": t4 - t3, "end": t4, "torch": "torch" in sys.modules, "flow_steps": tracks.diagnostics["flow_steps"]}))
"""


def child_environment(threads: int) -> dict[str, str]:
    """Thread limits for a fresh engine process (OpenCV reads OPENCV_*; BLAS and torch read OMP_*)."""
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENCV_FOR_THREADS_NUM": str(threads), "PYTHONPATH": str(ROOT)}


def time_parts(video: Path, threads: int) -> dict:
    """One preview in a fresh process, timed by its parts inside it (process start: spawn to the preview's first line)."""
    with tempfile.TemporaryDirectory() as out:
        spawned = time.time()
        done = subprocess.run(
            [sys.executable, "-c", PARTS_SCRIPT, str(video), str(SKETCH), out], cwd=ROOT, env=child_environment(threads),
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        finished = time.time()
    parts = json.loads(done.stdout.strip().splitlines()[-1])
    parts["start"] = parts["imported"] - spawned
    parts["exit"] = finished - parts["end"]
    return parts


def time_command(video: Path, threads: int) -> float:
    """Wall seconds of `python -m engine preview` in a fresh process, as a user runs it."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "engine", "preview", "--sketch", str(SKETCH), "--video", str(video), "--out", out]
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, env=child_environment(threads), check=True, capture_output=True)
        return time.perf_counter() - started


def time_references(video: Path, threads: int) -> dict[str, tuple[float, float]]:
    """(ours, reference) seconds for decoding and for drawing the previews, in this process."""
    import cv2
    import torch

    from engine.media.reference import FfmpegSource, fit_frame, sample_indices
    from engine.vector.draw import render_sketch_frames
    from engine.vector.load import load_sketch
    from engine.vector.render import SketchRenderer

    cv2.setNumThreads(threads)
    torch.set_num_threads(threads)
    source = FfmpegSource.open(video)
    wanted = sorted(set(sample_indices(0, source.frame_count - 1, 2 * FRAMES - 1).tolist()))
    started = time.perf_counter()
    dict(source.read_fitted(wanted, (SIZE, SIZE), "crop"))
    ours_decode = time.perf_counter() - started
    started = time.perf_counter()
    {index: fit_frame(frame, (SIZE, SIZE)) for index, frame in source.read(wanted)}
    full_decode = time.perf_counter() - started

    sketch = load_sketch(SKETCH)
    animation = sketch.with_frames(np.stack([sketch.flat_points() + [k, 0.0] for k in range(FRAMES)]))
    started = time.perf_counter()
    render_sketch_frames(animation)
    ours_draw = time.perf_counter() - started
    renderer = SketchRenderer(animation)
    started = time.perf_counter()
    with torch.no_grad():
        renderer.render(renderer.frame_points())
    torch_draw = time.perf_counter() - started
    return {"decode 31 frames to 256²": (ours_decode, full_decode), f"draw {FRAMES} preview frames": (ours_draw, torch_draw)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of the generated 1080p clip (default 2 s)")
    parser.add_argument("--fps", type=float, default=30.0, help="its frame rate (default 30)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for the engine processes (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="plain end-to-end runs; the table shows their median (default 3)")
    parser.add_argument("--video", type=Path, default=None, help="time this video instead of a generated one")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        video = args.video
        if video is None:
            started = time.perf_counter()
            video = make_1080p_video(Path(folder) / "clip_1080p.mp4", args.seconds, args.fps)
            print(f"generated {WIDTH}×{HEIGHT} H.264, {args.seconds:g} s at {args.fps:g} fps in {time.perf_counter() - started:.1f} s")
        time_command(video, args.threads)  # warm-up: the file cache, not the preview
        parts = time_parts(video, args.threads)
        wall = statistics.median(time_command(video, args.threads) for _ in range(args.repeat))
        references = time_references(video, args.threads)

    print(f"\n`python -m engine preview`: {FRAMES} frames at {SIZE}² from a 1080p clip, {args.threads} CPU threads, "
          f"{parts['flow_steps']} tracking steps; torch imported: {parts['torch']}\n")  # fmt: skip
    print(f"{'part (one fresh process)':40} {'seconds':>8}")
    print("-" * 49)
    rows = [("process start (interpreter, imports)", parts["start"]), ("decode (ffmpeg: select, crop, scale)", parts["decode"]),
            ("flow (tracks, camera, subject, box)", parts["flow"]), ("transfer (onto the sketch)", parts["transfer"]),
            ("write (result.json, SVG, then GIF/MP4)", parts["write"]), ("process exit", parts["exit"])]  # fmt: skip
    for name, seconds in rows:
        print(f"{name:40} {seconds:>8.2f}")
    print("-" * 49)
    print(f"{'sum of the parts':40} {sum(seconds for _, seconds in rows):>8.2f}")
    print(f"{'end to end, median of ' + str(args.repeat) + ' runs':40} {wall:>8.2f}   target {TARGET_S:g} s: {'met' if wall <= TARGET_S else 'MISSED'} ({wall / TARGET_S:.2f}× the target)")
    print(f"\n{'same run, in process':28} {'ours':>6} {'reference':>10} {'ratio':>7}  reference")
    print("-" * 96)
    labels = {"decode 31 frames to 256²": "full-size frames into Python, fitted there", f"draw {FRAMES} preview frames": "torch renderer (after its ~1.5 s import)"}
    for name, (ours, before) in references.items():
        print(f"{name:28} {ours:>6.2f} {before:>10.2f} {before / ours:>6.1f}×  {labels[name]}")


if __name__ == "__main__":
    main()
