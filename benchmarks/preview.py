"""Instant motion preview speed: F = 16 frames at 256×256 from a 1080p video on 2 CPU cores.

Generates a 1080p H.264 clip (a textured disc crossing a textured background while the camera
pans), then times each phase of `engine.preview` in this process (imports already done):
reading (decode, square crop and downscale of the sampled frames, streamed), tracking
(optical flow, camera removal, subject tracks), transfer (the motion onto the sketch's control
points) and writing the stage-3 result folder (JSON, SVG per frame, GIF/MP4, side by side).
It also times the whole preview once more in a fresh Python process, as `python -m engine
preview` runs it: start-up and imports included.

Writing is dominated by the side-by-side GIF: Pillow's default median-cut palette takes about
0.3 s per 256×520 video frame, whatever the content. One more line shows the write phase with
`media.save_gif` quantizing by fast octree instead (a proposed change to engine/media.py,
swapped in only inside this benchmark's process for that line).

Usage: python benchmarks/preview.py [--seconds 2] [--fps 30] [--threads 2] [--substeps 2] [--video clip.mp4]
"""

from __future__ import annotations

import argparse
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


def time_phases(video: Path, substeps: int) -> dict[str, float]:
    """Seconds per phase of one preview, in this process."""
    from engine.job.outputs import write_result
    from engine.preview import track_subject, transfer_motion
    from engine.preview.run import preview_metadata, read_clip_with_substeps
    from engine.settings import PreviewSettings
    from engine.vector.load import load_sketch

    sketch = load_sketch(SKETCH)
    settings = PreviewSettings(num_frames=FRAMES, size=SIZE, flow_substeps=substeps)
    spec = settings.video_spec(video)
    seconds = {}
    with tempfile.TemporaryDirectory() as out_dir:
        started = time.perf_counter()
        clip, dense, substeps = read_clip_with_substeps(spec, settings.flow_substeps)
        seconds["read (decode, crop, downscale)"] = time.perf_counter() - started

        started = time.perf_counter()
        tracks = track_subject(dense, settings, substeps)
        seconds["track (flow, camera, subject)"] = time.perf_counter() - started

        started = time.perf_counter()
        frames = transfer_motion(sketch, tracks, settings)
        seconds[f"transfer ({settings.rigidity})"] = time.perf_counter() - started

        started = time.perf_counter()
        write_result(out_dir, sketch, frames, clip.frames, metadata=preview_metadata(settings, spec, tracks, [*clip.warnings, *tracks.warnings], clip))
        seconds["write (JSON, SVG, GIF/MP4 ×2)"] = time.perf_counter() - started
    seconds["flow steps"] = tracks.diagnostics.get("flow_steps", 0)
    seconds["tracks"] = tracks.num_tracks
    return seconds


def time_write_with_fast_gif_palette(video: Path, substeps: int) -> float:
    """The write phase again, with GIF palettes made by fast octree (the proposed `media.save_gif` fix)."""
    from PIL import Image

    from engine.media import writers as media
    from engine.files import atomic_write

    def save_gif_fast_palette(frames: np.ndarray, path, fps: float = 8.0) -> Path:
        images = [Image.fromarray(frame).quantize(method=Image.Quantize.FASTOCTREE) for frame in frames]
        duration_ms = max(20, round(1000.0 / fps))
        return atomic_write(
            path, lambda tmp: images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0, disposal=2)
        )

    original, media.save_gif = media.save_gif, save_gif_fast_palette
    try:
        return time_phases(video, substeps)["write (JSON, SVG, GIF/MP4 ×2)"]
    finally:
        media.save_gif = original


def time_fresh_process(video: Path, threads: int, substeps: int) -> float:
    """Wall seconds of the whole preview in a new Python process (start-up and imports included)."""
    script = (
        "import argparse, sys, tempfile, cv2, torch;"
        f"cv2.setNumThreads({threads}); torch.set_num_threads({threads});"
        "from engine.preview import add_preview_command;"
        "p = argparse.ArgumentParser(); add_preview_command(p.add_subparsers());"
        "out = tempfile.mkdtemp();"
        f"a = p.parse_args(['preview', '--sketch', {str(SKETCH)!r}, '--video', {str(video)!r}, '--out', out, '--substeps', '{substeps}']);"
        "a.handler(a)"
    )
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of the generated 1080p clip (default 2 s)")
    parser.add_argument("--fps", type=float, default=30.0, help="its frame rate (default 30)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for OpenCV and torch (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="in-process runs; the table shows the median (default 3)")
    parser.add_argument("--substeps", type=int, default=2, help="video frames tracked per output frame step (default 2)")
    parser.add_argument("--video", type=Path, default=None, help="time this video instead of a generated one")
    args = parser.parse_args()

    import cv2
    import torch

    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        video = args.video
        if video is None:
            started = time.perf_counter()
            video = make_1080p_video(Path(folder) / "clip_1080p.mp4", args.seconds, args.fps)
            print(f"generated {WIDTH}×{HEIGHT} H.264, {args.seconds:g} s at {args.fps:g} fps in {time.perf_counter() - started:.1f} s")
        time_phases(video, args.substeps)  # warm-up: first-call costs (ffmpeg, torch kernels) are not the preview's
        runs = [time_phases(video, args.substeps) for _ in range(args.repeat)]
        fast_write = time_write_with_fast_gif_palette(video, args.substeps)
        fresh = time_fresh_process(video, args.threads, args.substeps)

    phases = [name for name in runs[0] if name not in ("flow steps", "tracks")]
    median = {name: statistics.median(run[name] for run in runs) for name in phases}
    total = statistics.median(sum(run[name] for name in phases) for run in runs)
    print(f"\npreview: F = {FRAMES} frames at {SIZE}×{SIZE} from a 1080p video, {args.threads} CPU threads, "
          f"{runs[0]['flow steps']} flow steps, {runs[0]['tracks']} subject tracks; median of {args.repeat} runs\n")  # fmt: skip
    print(f"{'phase':34} {'seconds':>8}")
    print("-" * 43)
    for name in phases:
        print(f"{name:34} {median[name]:>8.2f}")
    print("-" * 43)
    print(f"{'total, in process':34} {total:>8.2f}")
    print(f"{'total, fresh process (+ imports)':34} {fresh:>8.2f}")
    write = "write (JSON, SVG, GIF/MP4 ×2)"
    with_fix = total - median[write] + fast_write
    print(f"\nwith a fast-octree GIF palette in media.save_gif (proposed, not applied): write {fast_write:.2f} s, total {with_fix:.2f} s")
    print(f"target: under {TARGET_S:g} s end to end — in process {'met' if total < TARGET_S else 'MISSED'}, "
          f"fresh process {'met' if fresh < TARGET_S else 'MISSED'}, with the GIF fix {'met' if with_fix < TARGET_S else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()
