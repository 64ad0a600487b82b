"""Reference video input: F frames sampled uniformly from a clip, fitted to the model's frame size (256×256 by default).

Accepted sources: `.mp4 .mov .webm .avi .mkv .m4v` (decoded by the ffmpeg that ships with
`imageio-ffmpeg`, no system ffmpeg needed), `.gif` (Pillow) and a folder of numbered images
(`frame1.png`, `frame2.png`, …, sorted numerically so `frame2` comes before `frame10`;
hidden and non-image files are ignored; it plays at `FOLDER_FPS` for start/end times). A
folder whose images differ in size is refused, naming two of them with their sizes: a stray
file is likelier than a wish to mix sizes, and silently rescaling it would hide the mistake.
Every problem is a one-line `VideoError` naming the file and the fix, never ffmpeg's log.

Long videos are streamed: the frames are counted first (ffmpeg decodes the clip without
handing frames over; GIFs are walked with Pillow), then decoded once, in order, and only the
chosen frames are kept, each fitted to the frame size as soon as it is read. At most one
full-resolution frame is in memory at a time, and decoding stops after the last chosen frame.

Sampling (documented contract, see `sample_indices`):
- The chosen range is the frames whose display interval `[i/fps, (i+1)/fps)` overlaps
  `[start_s, end_s)`: frames `a = floor(start_s·fps)` to `b = ceil(end_s·fps) − 1`, clamped
  to the clip. Without `start_s`/`end_s` it is the whole clip. An `end_s` past the end of
  the clip is clamped to it, with a warning.
- With `M = b − a + 1` frames in the range, frame `k` of `F` is source frame
  `a + round(k·(M−1)/(F−1))` (rounding halves up): the first sample is the range's first
  frame and the last sample its last frame. `F = 1` takes the first frame.
- Fewer source frames than `F` (`M < F`): the same formula repeats frames (nearest-index
  sampling) and a warning says so. A single frame gives F identical frames, with a warning.

Fitting to the frame size (square unless `width` is given): `fit="crop"` keeps the largest
centred region of the frame's aspect; `fit="pad"` adds equal bars of white (255, 255, 255) —
sketches are drawn on white — to reach that aspect. Transparent pixels (GIF, PNG) are composited on white too.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from ..errors import SketchAnimatorError

FFMPEG_SUFFIXES = (".mp4", ".mov", ".webm", ".avi", ".mkv", ".m4v")
GIF_SUFFIXES = (".gif",)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
AUDIO_SUFFIXES = (".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".opus")
FIT_MODES = ("crop", "pad")
PAD_COLOUR = (255, 255, 255)
FOLDER_FPS = 24.0  # an image folder has no frame rate of its own; start_s/end_s count at this rate
GIF_DEFAULT_FRAME_MS = 100  # what browsers show for a GIF frame without a usable delay
SUPPORTED = ".mp4, .mov, .webm, .avi, .gif or a folder of numbered images"


class VideoError(SketchAnimatorError):
    """A reference video cannot be read, or the sampling settings do not fit it."""


@dataclass(frozen=True)
class VideoSpec:
    """Which clip to read and how to sample it; saved in the job JSON and part of cache keys."""

    path: str
    num_frames: int = 16
    size: int = 256  # frame height in pixels (and width, unless `width` is set)
    start_s: float | None = None
    end_s: float | None = None
    fit: str = "crop"  # or "pad"
    width: int | None = None  # frame width when the frames are not square

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", os.fspath(self.path))
        if not is_whole(self.num_frames) or self.num_frames < 1:
            raise VideoError(f"num_frames must be a positive whole number, got {self.num_frames!r}; use e.g. 16")
        if not is_whole(self.size) or self.size < 8:
            raise VideoError(f"frame size must be a whole number of at least 8 pixels, got {self.size!r}; use e.g. 256")
        object.__setattr__(self, "num_frames", int(self.num_frames))
        object.__setattr__(self, "size", int(self.size))
        if self.width is not None:
            if not is_whole(self.width) or self.width < 8:
                raise VideoError(f"frame width must be a whole number of at least 8 pixels, got {self.width!r}")
            object.__setattr__(self, "width", None if int(self.width) == self.size else int(self.width))
        for name in ("start_s", "end_s"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise VideoError(f"{name} must be a number of seconds, got {value!r}")
            object.__setattr__(self, name, None if value is None else float(value))
        if self.fit not in FIT_MODES:
            raise VideoError(f"unknown fit {self.fit!r}; use 'crop' or 'pad'")
        if self.start_s is not None and not (math.isfinite(self.start_s) and self.start_s >= 0):
            raise VideoError(f"start time must be a number of seconds ≥ 0, got {self.start_s}")
        if self.end_s is not None and not (math.isfinite(self.end_s) and self.end_s > 0):
            raise VideoError(f"end time must be a number of seconds > 0, got {self.end_s}")
        if self.start_s is not None and self.end_s is not None and self.start_s >= self.end_s:
            raise VideoError(f"start time {self.start_s} s must be before end time {self.end_s} s; swap or change them")

    @property
    def frame_size(self) -> tuple[int, int]:
        """(height, width) of the sampled frames."""
        return (self.size, self.width or self.size)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["width"] is None:  # square frames: the layout of earlier versions (cache keys stay the same)
            del data["width"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "VideoSpec":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise VideoError(f"unknown video setting {unknown[0]!r}; known settings: {', '.join(sorted(known))}")
        if "path" not in data:
            raise VideoError("video settings have no 'path'; choose a reference video")
        return cls(**data)

    def cache_parts(self) -> dict[str, Any]:
        """What determines the sampled frames: the file's content (not its path) and the settings."""
        parts = self.to_dict()
        parts.pop("path")
        parts["content_sha256"] = video_content_hash(self.path)
        return parts

    def frames_key(self, source_indices: Any) -> dict[str, Any]:
        """What determines a set of sampled frames exactly: the file's content, which source frames,
        and how they were fitted (a window of a long clip is told apart from the whole clip)."""
        return {
            "content_sha256": video_content_hash(self.path),
            "source_indices": [int(i) for i in source_indices],
            "frame_size": list(self.frame_size),
            "fit": self.fit,
        }


def is_whole(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer)) and float(value).is_integer()


@dataclass
class ReferenceClip:
    """The sampled frames and where they came from."""

    frames: np.ndarray  # (F, height, width, 3) uint8
    source_indices: np.ndarray  # (F,) int64: which source frame each output frame is
    fps: float
    duration_s: float
    source_frame_count: int
    warnings: list[str] = field(default_factory=list)

    def timing(self) -> dict[str, Any]:
        """When each sampled frame happens in the reference: what a result records so that the
        animation plays at the reference's speed (engine/job/outputs.py, `metadata["timing"]`)."""
        return clip_timing(self.source_indices, self.fps)

    def window(self, first: int, stop: int) -> "ReferenceClip":
        """Frames `first … stop − 1` of the clip (a window of a long clip), from the same source."""
        return ReferenceClip(self.frames[first:stop], self.source_indices[first:stop], self.fps, self.duration_s, self.source_frame_count, [])


TIMING_VERSION = 1


def clip_timing(source_indices: Any, fps: float) -> dict[str, Any]:
    """Per output frame: its time in seconds from the first sampled frame, and its source frame index.

    `start_s` is when the first sampled frame is shown in the video; `period_s` is how long one
    loop of the poses lasts when the motion is a cycle (the frame after the last is the first):
    the span of the poses plus one mean spacing.
    """
    indices = np.asarray(source_indices, dtype=np.int64)
    times = (indices - indices[0]) / float(fps)
    spacing = float(np.mean(np.diff(times))) if len(times) > 1 else 1.0 / float(fps)
    return {
        "version": TIMING_VERSION,
        "fps": float(fps),
        "start_s": float(indices[0] / float(fps)),
        "times_s": times.tolist(),
        "source_indices": indices.tolist(),
        "period_s": float(times[-1] + spacing),
    }


def clip_span(spec: VideoSpec) -> tuple[int, int, float, list[str]]:
    """The first and last source frame of the chosen range, the clip's frame rate and warnings,
    without decoding any frame (how many poses a pose rate gives)."""
    source = open_source(Path(spec.path))
    warnings = list(source.warnings)
    if source.frame_count < 1:
        raise VideoError(f"{spec.path} has no frames; choose another video")
    first, last = frame_range(spec, source, warnings)
    return first, last, source.fps, warnings


def poses_for_rate(spec: VideoSpec, pose_rate: float) -> int:
    """How many poses `pose_rate` poses per second of the chosen range gives (at least 2)."""
    first, last, fps, _ = clip_span(spec)
    return max(2, round((last - first + 1) / fps * pose_rate))


# --------------------------------------------------------------------------- public API


def load_reference_frames(spec: VideoSpec) -> ReferenceClip:
    """Read, sample and fit (crop or pad, then resize) the reference clip described by `spec`."""
    source = open_source(Path(spec.path))
    warnings = list(source.warnings)
    if source.frame_count < 1:
        raise VideoError(f"{spec.path} has no frames; choose another video")
    first, last = frame_range(spec, source, warnings)
    indices = sample_indices(first, last, spec.num_frames)
    warn_if_too_few(spec, last - first + 1, warnings)
    wanted = sorted(set(indices.tolist()))
    fitted = dict(source.read_fitted(wanted, spec.frame_size, spec.fit))
    frames = np.stack([fitted[index] for index in indices.tolist()])
    return ReferenceClip(frames, indices, source.fps, source.frame_count / source.fps, source.frame_count, warnings)


def sample_indices(first: int, last: int, num_frames: int) -> np.ndarray:
    """`num_frames` source indices spread evenly over `first..last`, both ends included.

    Frame k is `first + round(k·(M−1)/(F−1))` with M = last − first + 1, computed in integers
    so that halves always round up. With M < F indices repeat (nearest-index sampling).
    """
    span, steps = last - first, num_frames - 1
    if steps == 0:
        return np.array([first], dtype=np.int64)
    k = np.arange(num_frames, dtype=np.int64)
    return first + (2 * k * span + steps) // (2 * steps)


@dataclass(frozen=True)
class FitGeometry:
    """How a source frame becomes an output frame: a centred crop, or a white canvas it is pasted
    into, of `height` × `width` at offset (`top`, `left`), then resized to the output size."""

    fit: str
    height: int
    width: int
    top: int
    left: int


def fit_geometry(height: int, width: int, frame_size: tuple[int, int], fit: str = "crop") -> FitGeometry:
    """The crop (`fit="crop"`: the largest centred region of the output's aspect) or the pad (the
    smallest white canvas of that aspect that holds the frame) for a source of `height` × `width`."""
    out_height, out_width = frame_size
    if fit == "crop":
        crop_h, crop_w = (height, round(height * out_width / out_height)) if height * out_width <= width * out_height else (round(width * out_height / out_width), width)
        crop_h, crop_w = min(crop_h, height), min(crop_w, width)
        return FitGeometry("crop", crop_h, crop_w, (height - crop_h) // 2, (width - crop_w) // 2)
    pad_h, pad_w = (height, round(height * out_width / out_height)) if height * out_width >= width * out_height else (round(width * out_height / out_width), width)
    pad_h, pad_w = max(pad_h, height), max(pad_w, width)
    return FitGeometry("pad", pad_h, pad_w, (pad_h - height) // 2, (pad_w - width) // 2)


def fit_frame(frame: np.ndarray, frame_size: tuple[int, int], fit: str = "crop") -> np.ndarray:
    """Centre-crop (or pad with white) an `(H, W, 3)` frame to the aspect of `frame_size`, then resize to it."""
    height, width = frame.shape[:2]
    geometry = fit_geometry(height, width, frame_size, fit)
    if geometry.fit == "crop":
        region = frame[geometry.top : geometry.top + geometry.height, geometry.left : geometry.left + geometry.width]
    else:
        region = np.empty((geometry.height, geometry.width, 3), dtype=np.uint8)
        region[...] = PAD_COLOUR
        region[geometry.top : geometry.top + height, geometry.left : geometry.left + width] = frame
    return resize_frame(region, frame_size)


def ffmpeg_fit_filter(geometry: FitGeometry, frame_size: tuple[int, int]) -> str:
    """The same fit as ffmpeg filters (RGB first, so a crop is exact to the pixel), ending in a Lanczos resize."""
    if geometry.fit == "crop":
        place = f"crop={geometry.width}:{geometry.height}:{geometry.left}:{geometry.top}"
    else:
        place = f"pad={geometry.width}:{geometry.height}:{geometry.left}:{geometry.top}:color=white"
    return f"format=rgb24,{place},scale={frame_size[1]}:{frame_size[0]}:flags=lanczos"


def resize_frame(image: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """Resize a uint8 image to (height, width); Lanczos filtering avoids aliasing when shrinking HD frames."""
    if tuple(image.shape[:2]) == tuple(frame_size):
        return np.ascontiguousarray(image)
    from PIL import Image

    pil = Image.fromarray(np.ascontiguousarray(image))
    return np.asarray(pil.resize((frame_size[1], frame_size[0]), Image.Resampling.LANCZOS, reducing_gap=3.0))


def save_preview_strip(frames: np.ndarray, path: str | os.PathLike) -> Path:
    """Save the sampled frames side by side as one PNG, so a user can check what was read."""
    from .writers import save_png

    frames = np.asarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[0] == 0:
        raise VideoError(f"a preview strip needs (F, H, W, 3) frames, got shape {frames.shape}")
    return save_png(np.concatenate(list(frames), axis=1), path)


def video_content_hash(path: str | os.PathLike) -> str:
    """sha256 of a video's bytes (a folder: its image files' names and bytes, in frame order).

    Cache keys use this rather than the path, so a renamed or moved video is still recognised
    and an edited one is not.
    """
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        for image in list_frame_images(path):
            digest.update(f"{image.name}\0{image.stat().st_size}\0".encode())
            update_with_file(digest, image)
    elif path.is_file():
        update_with_file(digest, path)
    else:
        raise VideoError(f"video not found: {path}; choose an existing video file or image folder")
    return digest.hexdigest()


def update_with_file(digest: Any, path: Path, chunk_bytes: int = 1 << 20) -> None:
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)


# --------------------------------------------------------------------------- sources


@dataclass
class Source:
    """A clip whose frames can be counted up front and then read once, in order."""

    path: Path
    frame_count: int
    fps: float
    warnings: list[str] = field(default_factory=list)

    def read(self, indices: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        """Yield `(index, (H, W, 3) uint8 frame)` for the sorted `indices`, reading each frame once."""
        raise NotImplementedError

    def read_fitted(self, indices: list[int], frame_size: tuple[int, int], fit: str) -> Iterator[tuple[int, np.ndarray]]:
        """The same frames fitted to `frame_size` (`fit_frame`), each as soon as it is read."""
        for index, frame in self.read(indices):
            yield index, fit_frame(frame, frame_size, fit)


def open_source(path: Path) -> Source:
    """Check the path and pick the reader for it; every problem is a one-line VideoError."""
    if path.is_dir():
        return FolderSource.open(path)
    if not path.exists():
        raise VideoError(f"video not found: {path}; choose an existing video file or image folder")
    suffix = path.suffix.lower()
    if suffix in AUDIO_SUFFIXES:
        raise VideoError(f"{path} is an audio file; choose a video ({SUPPORTED})")
    if suffix not in FFMPEG_SUFFIXES + GIF_SUFFIXES:
        raise VideoError(f"{path}: unsupported video format {suffix or '(no extension)'!r}; use {SUPPORTED}")
    if path.stat().st_size == 0:
        raise VideoError(f"{path} is empty (0 bytes); re-export or re-download the video")
    if suffix in GIF_SUFFIXES:
        return GifSource.open(path)
    return FfmpegSource.open(path)


@dataclass
class FfmpegSource(Source):
    """Containers that ffmpeg decodes, streamed through `imageio_ffmpeg.read_frames`."""

    size: tuple[int, int] = (0, 0)  # (width, height) of the decoded frames

    @classmethod
    def open(cls, path: Path) -> "FfmpegSource":
        import imageio_ffmpeg

        try:
            count, seconds = imageio_ffmpeg.count_frames_and_secs(str(path))
            reader = imageio_ffmpeg.read_frames(str(path))
            meta = next(reader)
            reader.close()
        except Exception as exc:  # ffmpeg's own errors are long logs; turn them into one line
            raise ffmpeg_error(path, exc) from None
        fps = float(meta.get("fps") or 0) or (count / seconds if seconds else FOLDER_FPS)
        source = cls(path, int(count or 0), fps, size=tuple(meta.get("size") or (0, 0)))
        declared = float(meta.get("duration") or 0)
        decoded = source.frame_count / fps
        if declared > 0 and decoded < 0.9 * declared - 1.0 / fps:
            source.warnings.append(
                f"{path} looks truncated: only {decoded:.2f} s of its {declared:.2f} s could be decoded; "
                "re-export or re-download it if frames are missing"
            )
        return source

    def read(self, indices: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        import imageio_ffmpeg

        wanted = set(indices)
        last = max(indices)
        reader = imageio_ffmpeg.read_frames(str(self.path), pix_fmt="rgb24")
        try:
            width, height = decode_step(self.path, lambda: next(reader))["size"]
            for index in range(last + 1):
                raw = decode_step(self.path, lambda: next(reader, None))
                if raw is None:
                    raise VideoError(
                        f"{self.path} ended after {index} frames although {self.frame_count} were counted; "
                        "the file is damaged: re-export or re-download it"
                    )
                if index in wanted:
                    yield index, np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)
        finally:
            reader.close()  # stops ffmpeg: nothing after the last chosen frame is decoded


    def read_fitted(self, indices: list[int], frame_size: tuple[int, int], fit: str) -> Iterator[tuple[int, np.ndarray]]:
        """The frames fitted by ffmpeg itself: only the chosen frames leave the decoder (a `select`
        filter), cropped or padded and resized there, so a 1080p or 8000² clip never reaches
        Python at full size and the pipe carries only what is kept."""
        import imageio_ffmpeg

        source_width, source_height = self.size
        geometry = fit_geometry(source_height, source_width, frame_size, fit)
        chain = f"select='{select_expression(indices)}',{ffmpeg_fit_filter(geometry, frame_size)}"
        with quiet_logger("imageio_ffmpeg"):  # it notes that the output size differs from the source's
            reader = imageio_ffmpeg.read_frames(str(self.path), pix_fmt="rgb24", output_params=["-vf", chain, "-fps_mode", "passthrough"])
            try:
                decode_step(self.path, lambda: next(reader))
                for index in indices:
                    raw = decode_step(self.path, lambda: next(reader, None))
                    if raw is None:
                        raise VideoError(
                            f"{self.path} ended before frame {index} although {self.frame_count} frames were counted; "
                            "the file is damaged: re-export or re-download it"
                        )
                    yield index, np.frombuffer(raw, dtype=np.uint8).reshape(frame_size[0], frame_size[1], 3).copy()
            finally:
                reader.close()


def select_expression(indices: list[int]) -> str:
    """An ffmpeg `select` expression passing exactly the sorted frame `indices` (runs as between())."""
    runs: list[list[int]] = []
    for index in indices:
        if runs and index == runs[-1][1] + 1:
            runs[-1][1] = index
        else:
            runs.append([index, index])
    return "+".join(f"eq(n\\,{a})" if a == b else f"between(n\\,{a}\\,{b})" for a, b in runs)


@contextlib.contextmanager
def quiet_logger(name: str) -> Iterator[None]:
    """A library's logger held at errors only for a while (its notices are not for our users)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def decode_step(path: Path, step: Any) -> Any:
    try:
        return step()
    except Exception as exc:
        raise ffmpeg_error(path, exc) from None


def ffmpeg_error(path: Path, exc: Exception) -> VideoError:
    """Name the likely cause from ffmpeg's log, as one line with a fix."""
    log = str(exc)
    if "matches no streams" in log or "does not contain any stream" in log or "no video stream" in log.lower():
        return VideoError(f"{path} has no video stream (is it audio only?); choose a video ({SUPPORTED})")
    return VideoError(f"cannot decode {path}: the file is corrupt, truncated or not a video; re-export or re-download it")


@dataclass
class GifSource(Source):
    """Animated GIFs, read with Pillow frame by frame (seeking forward only)."""

    @classmethod
    def open(cls, path: Path) -> "GifSource":
        from PIL import Image

        total_ms = 0
        try:
            with Image.open(path) as image:
                count = getattr(image, "n_frames", 1)
                for index in range(count):
                    image.seek(index)
                    total_ms += image.info.get("duration") or GIF_DEFAULT_FRAME_MS
        except Exception:
            raise VideoError(f"cannot decode {path}: the GIF is corrupt or truncated; re-export it") from None
        fps = 1000.0 * count / total_ms if total_ms > 0 else 1000.0 / GIF_DEFAULT_FRAME_MS
        return cls(path, count, fps)

    def read(self, indices: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        from PIL import Image

        try:
            with Image.open(self.path) as image:
                for index in indices:
                    image.seek(index)
                    yield index, rgb_on_white(image)
        except SketchAnimatorError:
            raise
        except Exception:
            raise VideoError(f"cannot decode {self.path}: the GIF is corrupt or truncated; re-export it") from None


@dataclass
class FolderSource(Source):
    """A folder of numbered images of one size; only the chosen files are decoded."""

    images: list[Path] = field(default_factory=list)

    @classmethod
    def open(cls, path: Path) -> "FolderSource":
        images = list_frame_images(path)
        if not images:
            raise VideoError(
                f"{path} contains no images ({', '.join(IMAGE_SUFFIXES)}); put numbered frames in it, e.g. frame0001.png"
            )
        check_same_size(images)
        return cls(path, len(images), FOLDER_FPS, images=images)

    def read(self, indices: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        for index in indices:
            yield index, read_image(self.images[index])


def list_frame_images(folder: Path) -> list[Path]:
    """Image files in a folder, in natural order (frame2 before frame10); hidden files skipped."""
    images = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]
    return sorted(images, key=natural_key)


def natural_key(path: Path) -> tuple:
    """Sort key that compares digit runs as numbers: 'frame2' < 'frame10'."""
    parts = re.split(r"(\d+)", path.name.lower())
    return tuple((0, int(part), part) if part.isdigit() else (1, 0, part) for part in parts if part)


def check_same_size(images: list[Path]) -> None:
    """Refuse a folder whose images differ in size: a stray file is likelier than a wish to mix."""
    from PIL import Image

    first_size = None
    for image_path in images:
        try:
            with Image.open(image_path) as image:
                size = image.size
        except Exception:
            raise VideoError(f"cannot read image {image_path}: it is corrupt or not an image; remove or replace it") from None
        if first_size is None:
            first_size = size
        elif size != first_size:
            raise VideoError(
                f"{image_path} is {size[0]}×{size[1]} but {images[0]} is {first_size[0]}×{first_size[1]}: "
                "all images in a frame folder must have the same size; resize or remove the odd one out"
            )


def read_image(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return rgb_on_white(image)
    except Exception:
        raise VideoError(f"cannot read image {path}: it is corrupt or not an image; remove or replace it") from None


def rgb_on_white(image: Any) -> np.ndarray:
    """RGB uint8 array of a Pillow image, transparent parts composited on white."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, PAD_COLOUR + (255,))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    return np.asarray(image.convert("RGB"))


# --------------------------------------------------------------------------- range and warnings


def frame_range(spec: VideoSpec, source: Source, warnings: list[str]) -> tuple[int, int]:
    """First and last source frame inside `[start_s, end_s)` (see the module docstring)."""
    count, fps = source.frame_count, source.fps
    duration = count / fps
    eps = 1e-6
    first, last = 0, count - 1
    if spec.start_s is not None:
        if spec.start_s >= duration:
            raise VideoError(
                f"start time {spec.start_s} s is at or after the end of {spec.path} ({duration:.2f} s long); choose an earlier start"
            )
        first = int(math.floor(spec.start_s * fps + eps))
    if spec.end_s is not None:
        if spec.end_s > duration + eps:
            warnings.append(f"end time {spec.end_s} s is past the end of {spec.path} ({duration:.2f} s); using the end of the clip")
        last = min(count - 1, int(math.ceil(spec.end_s * fps - eps)) - 1)
    return first, max(first, last)


def warn_if_too_few(spec: VideoSpec, available: int, warnings: list[str]) -> None:
    if available == 1 and spec.num_frames > 1:
        warnings.append(
            f"{spec.path} has a single frame in the chosen range: all {spec.num_frames} frames are identical, so there is no motion to learn"
        )
    elif available < spec.num_frames:
        warnings.append(
            f"{spec.path} has only {available} frames in the chosen range, fewer than the {spec.num_frames} requested: "
            "frames repeat (nearest-index sampling); choose a longer range or fewer frames"
        )

