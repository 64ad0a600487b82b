"""Writing images and animations (PNG, GIF, MP4), each file written atomically."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import numpy as np

from ..errors import SketchAnimatorError
from ..files import atomic_write

IMAGE_SUFFIXES = (".png",)
ANIMATION_SUFFIXES = (".gif", ".mp4")


def save_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Save one `(H, W, 3)` uint8 image as PNG."""
    from PIL import Image

    return atomic_write(path, lambda tmp: Image.fromarray(image).save(tmp, format="PNG"))


def save_gif(frames: np.ndarray, path: str | os.PathLike, fps: float = 8.0) -> Path:
    """Save `(F, H, W, 3)` uint8 frames as a looping GIF."""
    from PIL import Image

    # Fast octree palettes: Pillow's default quantiser costs ~0.3 s per frame.
    images = [Image.fromarray(frame).quantize(method=Image.Quantize.FASTOCTREE) for frame in frames]
    duration_ms = max(20, round(1000.0 / fps))

    def write(tmp: str) -> None:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0, disposal=2)

    return atomic_write(path, write)


def save_mp4(frames: np.ndarray, path: str | os.PathLike, fps: float = 8.0) -> Path:
    """Save `(F, H, W, 3)` uint8 frames as H.264 MP4, with the ffmpeg that ships with imageio-ffmpeg.

    ffmpeg is run here rather than through imageio's writer, which leaves ffmpeg's own lines
    on the terminal and ignores its exit status (a full disk gave a truncated file and
    success): its status and its error output are checked, and a failure removes the file.
    """
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:  # yuv420p needs even sizes
        frames = np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    return atomic_write(path, lambda tmp: encode_h264(frames, tmp, fps))


def encode_h264(frames: np.ndarray, target: str, fps: float) -> None:
    """Pipe raw RGB frames through ffmpeg into `target`; an OSError (ENOSPC for a full disk) on failure."""
    import imageio_ffmpeg

    height, width = frames.shape[1:3]
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-nostdin", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
        "-s", f"{width}x{height}", "-r", f"{fps:g}", "-i", "-", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", target,
    ]  # fmt: skip
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for frame in frames:
            process.stdin.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
    except BrokenPipeError:
        pass  # ffmpeg stopped early: its status and message say why
    finally:
        try:
            process.stdin.close()
        except BrokenPipeError:
            pass
    message = process.stderr.read().decode("utf-8", "replace").strip()
    status = process.wait()
    if status != 0 or message:
        last = message.splitlines()[-1] if message else f"exit status {status}"
        code = errno.ENOSPC if "No space left" in message else errno.EIO
        raise OSError(code, f"ffmpeg could not write the video ({last})")


def save_frames(frames: np.ndarray, path: str | os.PathLike, fps: float = 8.0) -> Path:
    """Save frames by the file's suffix: .png (the first frame), .gif or .mp4."""
    suffix = Path(path).suffix.lower()
    try:
        if suffix == ".png":
            return save_png(frames[0], path)
        if suffix == ".gif":
            return save_gif(frames, path, fps)
        if suffix == ".mp4":
            return save_mp4(frames, path, fps)
    except SketchAnimatorError:
        raise
    except OSError as exc:
        raise SketchAnimatorError(f"cannot write {path}: {exc.strerror or exc}") from None
    raise SketchAnimatorError(f"{path}: unknown output format {suffix!r}; use .png, .gif or .mp4")
