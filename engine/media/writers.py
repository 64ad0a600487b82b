"""Writing images and animations (PNG, GIF, MP4), each file written atomically."""

from __future__ import annotations

import os
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
    """Save `(F, H, W, 3)` uint8 frames as H.264 MP4 (imageio's bundled ffmpeg; no system ffmpeg)."""
    import imageio.v2 as imageio

    height, width = frames.shape[1:3]
    if height % 2 or width % 2:  # yuv420p needs even sizes
        frames = np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")

    def write(tmp: str) -> None:
        with imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264", pixelformat="yuv420p", macro_block_size=1) as writer:
            for frame in frames:
                writer.append_data(frame)

    return atomic_write(path, write)


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
    except OSError as exc:
        raise SketchAnimatorError(f"cannot write {path}: {exc.strerror or exc}") from None
    raise SketchAnimatorError(f"{path}: unknown output format {suffix!r}; use .png, .gif or .mp4")
