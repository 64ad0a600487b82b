"""The job's result on disk: the animated sketch as JSON and SVG, previews and a loss curve.

Layout of `out_dir` (design.md §3, "the result"), in the order it is written:

    result.json             the input sketch (its paths are the input drawing) with `frames`,
                            the per-frame control points in the input's topology and order, and
                            `metadata`: the input's (its canvas mapping, e.g. `svg_to_canvas` or
                            the Grease Pencil mapping) updated with the job's (prompts, seed…)
    frames/frame_0000.svg   one SVG per frame, whose viewport is the canvas
    animation.gif, .mp4     the rendered animation
    side_by_side.gif, .mp4  each frame beside the reference frame nearest in time (if given)
    loss.png                the loss per step with its moving average (if losses were given)
    result_manifest.json    every file above with its size: written once the JSON and SVG frames
                            are (`"previews": "pending"`, the result is usable), and again last
                            (`"previews": "written"`, listing the GIF/MP4 previews too)

Every file is written atomically and the most important one first, so a full disk loses only
what was not written yet. The manifest of an earlier run is removed before anything else is
written; a reader that finds a manifest (engine/job/results.py) therefore knows that the files beside
it are complete and come from one run.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, NamedTuple, Sequence

import numpy as np

from ..errors import SketchAnimatorError, SketchError
from ..files import DISK_FULL, atomic_write_text, disk_full_detail, real_directory
from ..media import writers as media
from ..vector.draw import render_sketch_frames
from ..vector.sketch import Sketch
from ..vector.svg import save_svg_frames
from .results import MANIFEST, MANIFEST_SCHEMA, MANIFEST_VERSION, RESULT_JSON, file_sha256

__all__ = [
    "ResultFiles",
    "animated_sketch",
    "draw_loss_curve",
    "nearest_reference_indices",
    "render_preview_frames",
    "side_by_side_frames",
    "write_result",
]

SVG_DIR = "frames"
SVG_STEM = "frame"
ANIMATION = "animation"
SIDE_BY_SIDE = "side_by_side"
LOSS_CURVE = "loss.png"

PREVIEW_MAX_SIDE = 512  # px; larger canvases are previewed scaled down (a GIF of 4096² frames helps nobody)
RENDER_CHUNK = 16  # frames rendered at once, so memory stays bounded for long animations
PREVIEW_GAP = 8  # px between the animation and the reference in the side-by-side preview
GAP_GREY = 224
LOSS_PLOT_SIZE = (640, 360)
LOSS_RAW_COLOR = (170, 195, 235)
LOSS_AVERAGE_COLOR = (25, 80, 180)
AXIS_COLOR = (60, 60, 60)
GRID_COLOR = (225, 225, 225)
TEXT_COLOR = (30, 30, 30)

FINISHED_STAGES_KEPT = "free disk space and run the job again (finished stages are kept)"


class FiniteLosses(NamedTuple):
    """The losses worth plotting: NaN and infinite values dropped, each kept at its own step."""

    steps: np.ndarray  # (n,) int, indices into the given losses
    values: np.ndarray  # (n,) float, all finite
    skipped: int  # how many NaN or infinite values were dropped


@dataclass
class ResultFiles:
    """Every file `write_result` wrote; the optional previews are None when skipped."""

    out_dir: Path
    result_json: Path
    svg_frames: list[Path]
    animation_gif: Path
    animation_mp4: Path
    side_by_side_gif: Path | None
    side_by_side_mp4: Path | None
    loss_curve: Path | None
    manifest: Path

    def content(self) -> list[Path]:
        """The files the manifest lists, in the order they were written (the manifest itself excluded)."""
        optional = [self.side_by_side_gif, self.side_by_side_mp4, self.loss_curve]
        return [
            self.result_json,
            *self.svg_frames,
            self.animation_gif,
            self.animation_mp4,
            *(path for path in optional if path is not None),
        ]


# ============================================================================ public API
def write_result(
    out_dir: str | os.PathLike,
    sketch: Sketch,
    frames: np.ndarray,
    reference_frames: np.ndarray | None = None,
    losses: Sequence[float] | None = None,
    metadata: Mapping[str, Any] | None = None,
    fps: float = 8.0,
) -> ResultFiles:
    """Write the animated sketch and its previews into `out_dir` (layout in the module docstring).

    `frames` is (F, sketch.num_points, 2) in the order of `sketch.flat_points()`;
    `reference_frames` (F', H, W, 3) uint8 are the sampled video frames, F' may differ from F;
    `metadata` is merged over the sketch's own (its keys win). Every input is checked before
    anything is written: bad input raises a one-line `SketchAnimatorError` and leaves `out_dir`
    as it was. An OSError while writing (a full disk) raises a one-line error naming the file;
    the files written before it stay complete.
    """
    out_dir = Path(out_dir)
    animated = animated_sketch(sketch, frames, metadata)
    reference = _checked_reference(reference_frames)
    finite_losses = _finite_losses(losses)
    fps = _checked_fps(fps)

    _forget_previous_result(out_dir)
    result_json = _write(out_dir / RESULT_JSON, animated.save_json)
    svg_frames = _write_svg_frames(animated, out_dir / SVG_DIR)
    manifest = out_dir / MANIFEST
    early = [result_json, *svg_frames]  # the result is usable now (Apply, stage 3's start): say so before the previews
    _write(manifest, lambda path: atomic_write_text(path, json.dumps(_manifest(out_dir, early, animated, fps, previews="pending"), indent=1)))
    rendered = render_preview_frames(animated)
    animation_gif = _write(out_dir / f"{ANIMATION}.gif", lambda path: media.save_gif(rendered, path, fps))
    animation_mp4 = _write(out_dir / f"{ANIMATION}.mp4", lambda path: media.save_mp4(rendered, path, fps))
    side_by_side_gif, side_by_side_mp4 = _write_side_by_side(out_dir, rendered, reference, fps)
    loss_curve = _write_loss_curve(out_dir / LOSS_CURVE, finite_losses)

    files = ResultFiles(
        out_dir=out_dir,
        result_json=result_json,
        svg_frames=svg_frames,
        animation_gif=animation_gif,
        animation_mp4=animation_mp4,
        side_by_side_gif=side_by_side_gif,
        side_by_side_mp4=side_by_side_mp4,
        loss_curve=loss_curve,
        manifest=manifest,
    )
    _write(manifest, lambda path: atomic_write_text(path, json.dumps(_manifest(out_dir, files.content(), animated, fps, previews="written"), indent=1)))
    return files


def animated_sketch(sketch: Sketch, frames: Any, metadata: Mapping[str, Any] | None = None) -> Sketch:
    """The input sketch with `frames` and merged metadata, validated: what result.json holds."""
    try:
        sketch.validate()
        points = np.asarray(_to_numpy(frames), dtype=np.float64)
        merged = _json_ready({**sketch.metadata, **dict(metadata or {})})
        return replace(sketch, frames=points, metadata=merged).validate()
    except (SketchAnimatorError, TypeError, ValueError) as exc:
        raise SketchError(f"the result was not written: {_one_line(exc)}") from None


# ========================================================================== rendering
def render_preview_frames(sketch: Sketch) -> np.ndarray:
    """All animation frames as (F, H, W, 3) uint8, at most `PREVIEW_MAX_SIDE` px on the longer side."""
    size = None if max(sketch.width, sketch.height) <= PREVIEW_MAX_SIDE else PREVIEW_MAX_SIDE
    chunks = [
        render_sketch_frames(replace(sketch, frames=sketch.frames[start : start + RENDER_CHUNK]), size)
        for start in range(0, sketch.num_frames, RENDER_CHUNK)
    ]
    return np.concatenate(chunks, axis=0)


def nearest_reference_indices(num_frames: int, num_reference: int) -> np.ndarray:
    """For each output frame, the reference frame at the nearest relative time.

    Both sequences span the same clip, first frame to last, so output frame i sits at time
    i / (F - 1) and reference j at j / (F' - 1); rounding is exact (integers, halves up).
    """
    if num_frames == 1 or num_reference == 1:
        return np.zeros(num_frames, dtype=np.int64)
    i = np.arange(num_frames, dtype=np.int64)
    return (2 * i * (num_reference - 1) + (num_frames - 1)) // (2 * (num_frames - 1))


def side_by_side_frames(animation: np.ndarray, reference: np.ndarray, gap: int = PREVIEW_GAP) -> np.ndarray:
    """Each animation frame (left) beside the reference frame nearest in time (right), same height."""
    num_frames, height, width = animation.shape[:3]
    indices = nearest_reference_indices(num_frames, len(reference))
    scaled = {int(j): _resize_to_height(reference[j], height) for j in np.unique(indices)}
    reference_width = next(iter(scaled.values())).shape[1]
    combined = np.full((num_frames, height, width + gap + reference_width, 3), GAP_GREY, dtype=np.uint8)
    combined[:, :, :width] = animation
    for i, j in enumerate(indices):
        combined[i, :, width + gap :] = scaled[int(j)]
    return combined


def _resize_to_height(image: np.ndarray, height: int) -> np.ndarray:
    from PIL import Image

    if image.shape[0] == height:
        return image
    width = max(1, round(image.shape[1] * height / image.shape[0]))
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.LANCZOS))


# ========================================================================= loss curve
def draw_loss_curve(losses: Sequence[float] | None, size: tuple[int, int] = LOSS_PLOT_SIZE) -> np.ndarray | None:
    """A line plot of the losses per step as (H, W, 3) uint8; None when there is no finite value.

    NaN and infinite losses are left out (their steps stay where they were on the x axis);
    a moving average over ~5% of the steps shows the trend through noisy values.
    """
    finite = _finite_losses(losses)
    return None if finite is None else _plot_losses(finite, size)


def _plot_losses(losses: FiniteLosses, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    steps, values, skipped = losses

    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    left, top, right, bottom = 76, 30, size[0] - 16, size[1] - 34
    x_range = _padded_range(steps[0], steps[-1])
    y_range = _padded_range(values.min(), values.max())

    def to_pixels(x: np.ndarray, y: np.ndarray) -> list[tuple[float, float]]:
        px = left + (x - x_range[0]) / (x_range[1] - x_range[0]) * (right - left)
        py = bottom - (y - y_range[0]) / (y_range[1] - y_range[0]) * (bottom - top)
        return list(zip(px.tolist(), py.tolist()))

    labels = {values.max(): f"max {values.max():.4g}", values.min(): f"min {values.min():.4g}"}
    for value, label in labels.items():  # one label when the loss is constant
        y = to_pixels(steps[:1], np.array([value]))[0][1]
        draw.line([(left, y), (right, y)], fill=GRID_COLOR)
        _text_left_of(draw, (left - 6, y), label, font)
    draw.line([(left, top), (left, bottom), (right, bottom)], fill=AXIS_COLOR, width=1)
    draw.text((left, bottom + 8), f"step {steps[0]}", fill=TEXT_COLOR, font=font)
    if steps[-1] != steps[0]:
        last_step = f"step {steps[-1]}"
        draw.text((right - draw.textlength(last_step, font=font), bottom + 8), last_step, fill=TEXT_COLOR, font=font)

    window = max(1, len(values) // 20)
    title = f"loss: {values[-1]:.4g} at step {steps[-1]}"
    if window > 1:
        _draw_series(draw, to_pixels(steps, values), LOSS_RAW_COLOR)
        _draw_series(draw, to_pixels(steps[window - 1 :], _moving_average(values, window)), LOSS_AVERAGE_COLOR, width=2)
        title += f"; dark: moving average over {window} steps"
    else:
        _draw_series(draw, to_pixels(steps, values), LOSS_AVERAGE_COLOR)
    if skipped:
        title += f"; {skipped} NaN or infinite value{'s' if skipped > 1 else ''} left out"
    draw.text((left, 8), title, fill=TEXT_COLOR, font=font)
    return np.asarray(image)


def _draw_series(draw: Any, points: list[tuple[float, float]], color: tuple[int, int, int], width: int = 1) -> None:
    if len(points) == 1:
        (x, y), radius = points[0], 3
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=color)
    else:
        draw.line(points, fill=color, width=width, joint="curve")


def _text_left_of(draw: Any, anchor: tuple[float, float], text: str, font: Any) -> None:
    """Right-align `text` at `anchor`, vertically centred on it (a y-axis label)."""
    x, y = anchor
    _, top, _, bottom = draw.textbbox((0, 0), text, font=font)
    draw.text((x - draw.textlength(text, font=font), y - (top + bottom) / 2), text, fill=TEXT_COLOR, font=font)


def _padded_range(low: float, high: float) -> tuple[float, float]:
    """An axis range that is never empty (a single step or a constant loss sits in the middle)."""
    low, high = float(low), float(high)
    if high > low:
        return low, high
    pad = abs(low) * 0.1 or 1.0
    return low - pad, high + pad


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over `window` values: one value per step from step `window - 1` on."""
    sums = np.cumsum(np.concatenate([[0.0], values]))
    return (sums[window:] - sums[:-window]) / window


# ============================================================================ writing
@contextmanager
def _reporting_write_errors(target: Path | str) -> Iterator[None]:
    """Turn an OSError (a full disk, a read-only folder) into a one-line error naming `target`."""
    try:
        yield
    except OSError as exc:
        if exc.errno in DISK_FULL:
            raise SketchAnimatorError(f"{disk_full_detail(exc, target)}: {FINISHED_STAGES_KEPT}") from None
        raise SketchAnimatorError(
            f"cannot write {target} ({_reason(exc)}): check the folder's permissions, {FINISHED_STAGES_KEPT}"
        ) from None


def _write(path: Path, write: Callable[[Path], Any]) -> Path:
    with _reporting_write_errors(path):
        write(path)
    return path


def _forget_previous_result(out_dir: Path) -> None:
    """Create `out_dir` and remove an earlier run's manifest, which must not vouch for new files."""
    with _reporting_write_errors(out_dir / MANIFEST):
        real_directory(out_dir)  # links inside a job are replaced, never written through
        (out_dir / MANIFEST).unlink(missing_ok=True)


def _write_svg_frames(animated: Sketch, svg_dir: Path) -> list[Path]:
    """One SVG per frame; frames left over from a longer earlier run are removed."""
    with _reporting_write_errors(svg_dir / f"{SVG_STEM}_*.svg"):
        real_directory(svg_dir)
        written = save_svg_frames(animated, svg_dir, stem=SVG_STEM)
        names = {path.name for path in written}
        for path in svg_dir.glob(f"{SVG_STEM}_*.svg"):
            if path.name not in names:
                path.unlink(missing_ok=True)
    return written


def _write_side_by_side(
    out_dir: Path, rendered: np.ndarray, reference: np.ndarray | None, fps: float
) -> tuple[Path | None, Path | None]:
    gif, mp4 = out_dir / f"{SIDE_BY_SIDE}.gif", out_dir / f"{SIDE_BY_SIDE}.mp4"
    if reference is None:
        _remove_stale(gif, mp4)
        return None, None
    combined = side_by_side_frames(rendered, reference)
    return (
        _write(gif, lambda path: media.save_gif(combined, path, fps)),
        _write(mp4, lambda path: media.save_mp4(combined, path, fps)),
    )


def _write_loss_curve(path: Path, losses: FiniteLosses | None) -> Path | None:
    if losses is None:
        _remove_stale(path)
        return None
    plot = _plot_losses(losses, LOSS_PLOT_SIZE)
    return _write(path, lambda target: media.save_png(plot, target))


def _remove_stale(*paths: Path) -> None:
    """Remove an earlier run's optional preview that this run does not make, so it cannot mislead."""
    for path in paths:
        with _reporting_write_errors(path):
            path.unlink(missing_ok=True)


def _manifest(out_dir: Path, content: list[Path], animated: Sketch, fps: float, previews: str) -> dict[str, Any]:
    return {
        "schema": MANIFEST_SCHEMA,
        "version": MANIFEST_VERSION,
        "num_frames": animated.num_frames,
        "fps": fps,
        "width": animated.width,
        "height": animated.height,
        "previews": previews,
        "files": {path.relative_to(out_dir).as_posix(): {"size": path.stat().st_size, "sha256": file_sha256(path)} for path in content},
    }


# ====================================================================== input checks
def _checked_reference(reference: Any) -> np.ndarray | None:
    if reference is None:
        return None
    reference = _to_numpy(reference)
    if not isinstance(reference, np.ndarray) or reference.dtype != np.uint8:
        kind = getattr(reference, "dtype", type(reference).__name__)
        raise SketchAnimatorError(f"reference frames must be a uint8 array (F, H, W, 3), not {kind}: the result was not written")
    if reference.ndim != 4 or reference.shape[-1] != 3 or 0 in reference.shape:
        raise SketchAnimatorError(
            f"reference frames have shape {reference.shape}; expected (F, H, W, 3) RGB: the result was not written"
        )
    return reference


def _finite_losses(losses: Sequence[float] | None) -> FiniteLosses | None:
    """The finite losses and their steps, or None when there are none to plot."""
    if losses is None:
        return None
    try:
        values = np.asarray(_to_numpy(losses), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SketchAnimatorError(f"losses must be a list of numbers ({_one_line(exc)}): the result was not written") from None
    if values.ndim != 1:
        raise SketchAnimatorError(f"losses must be one number per step, not shape {values.shape}: the result was not written")
    steps = np.flatnonzero(np.isfinite(values))
    return FiniteLosses(steps, values[steps], len(values) - len(steps)) if len(steps) else None


def _checked_fps(fps: float) -> float:
    try:
        fps = float(fps)
    except (TypeError, ValueError):
        fps = float("nan")
    if not 0 < fps <= 1000:
        raise SketchAnimatorError(f"fps {fps} is out of range: use 0 to 1000 frames per second; the result was not written")
    return fps


def _json_ready(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata as plain JSON values (numpy numbers and arrays, paths become numbers, lists, strings)."""
    try:
        return json.loads(json.dumps(dict(metadata), default=_plain_value))
    except (TypeError, ValueError) as exc:
        raise SketchError(f"the metadata cannot be stored as JSON ({_one_line(exc)})") from None


def _plain_value(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    raise TypeError(f"a {type(value).__name__} is not a JSON value")


def _to_numpy(value: Any) -> Any:
    """A torch tensor (even one that needs grad, or on a GPU) as a numpy array; other values unchanged."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        return value.detach().cpu().numpy()
    return value


def _reason(exc: OSError) -> str:
    return exc.strerror or _one_line(exc)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
