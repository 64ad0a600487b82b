"""The result folder: exact JSON and SVG round trips, previews, loss curve, refusals, full disk.

The animation is a 3-stroke sketch on a 64×48 canvas translated by i px in frame i, so every
expected number can be written down; one complete result is written once per module.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path as FilePath

import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image, ImageSequence

from engine.errors import SketchAnimatorError
from engine.files import atomic_write
from engine.job.outputs import MANIFEST, draw_loss_curve, nearest_reference_indices, side_by_side_frames, write_result
from engine.job.results import read_result
from engine.media import writers as media
from engine.vector.sketch import Path, Sketch
from engine.vector.svg import import_svg

WIDTH, HEIGHT = 64, 48
NUM_FRAMES, NUM_REFERENCE = 6, 9
SVG_TO_CANVAS = [[0.5, 0.0, 2.0], [0.0, 0.5, 3.0]]
FULL_DISK_ADVICE = "free disk space and run the job again (finished stages are kept)"


def small_sketch() -> Sketch:
    return Sketch(
        paths=[
            Path([[8, 8], [14, 8], [20, 8], [26, 8]], half_width=1.5),
            Path([[8, 30], [14, 18], [26, 42], [32, 30], [36, 24], [40, 36], [44, 30]], half_width=2.0, color=(0.8, 0.1, 0.1)),
            Path([[30, 10], [40, 10], [40, 20], [30, 10]], closed=True, half_width=1.0, opacity=0.5),
        ],
        width=WIDTH,
        height=HEIGHT,
        metadata={"svg_to_canvas": SVG_TO_CANVAS, "source": "drawing.svg"},
    )


def translated(sketch: Sketch, num_frames: int = NUM_FRAMES) -> np.ndarray:
    """Frame i is the sketch moved i px right and i/2 px down."""
    shifts = np.arange(num_frames)[:, None, None] * np.array([1.0, 0.5])
    return sketch.flat_points()[None] + shifts


def reference_colors(num: int = NUM_REFERENCE) -> np.ndarray:
    """A distinct flat colour per reference frame, so a preview shows which one was picked."""
    j = np.arange(num)
    return np.stack([j * 28, 255 - j * 28, np.full(num, 128)], axis=1).astype(np.uint8)


def reference_clip(num: int = NUM_REFERENCE) -> np.ndarray:
    """Flat-coloured frames at twice the canvas resolution (same aspect)."""
    return np.broadcast_to(reference_colors(num)[:, None, None, :], (num, 2 * HEIGHT, 2 * WIDTH, 3)).copy()


LOSSES = [1.0, 0.8, float("nan"), 0.7] + [0.5 + 0.1 * np.sin(i) for i in range(40)]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    sketch = small_sketch()
    frames = translated(sketch)
    out_dir = tmp_path_factory.mktemp("result")
    files = write_result(
        out_dir, sketch, frames, reference_clip(), LOSSES, metadata={"prompt": "a waving line", "seed": np.int64(7)}, fps=6
    )
    return files, sketch, frames


def gif_frames(path: FilePath) -> list[np.ndarray]:
    with Image.open(path) as gif:
        return [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(gif)]


def mp4_frames(path: FilePath) -> list[np.ndarray]:
    with imageio.get_reader(path, format="FFMPEG") as reader:
        return [frame for frame in reader]  # list(reader) trips over len(reader) == inf


def one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


def leftovers(folder: FilePath) -> list[str]:
    """Temporary files an interrupted atomic write could leave behind."""
    return [p.name for p in folder.rglob("*") if ".tmp" in p.name]


# ------------------------------------------------------------------------ the result


def test_result_json_round_trips_frames_exactly(result) -> None:
    files, sketch, frames = result
    loaded = read_result(files.out_dir)
    assert np.array_equal(loaded.frames, frames)
    assert np.array_equal(loaded.flat_points(), sketch.flat_points())  # the static paths are the input
    assert [(p.closed, p.half_width, p.color, p.opacity) for p in loaded.paths] == [
        (p.closed, p.half_width, p.color, p.opacity) for p in sketch.paths
    ]


def test_metadata_keeps_the_canvas_mapping_and_adds_the_job(result) -> None:
    files, _, _ = result
    metadata = read_result(files.out_dir).metadata
    assert metadata == {"svg_to_canvas": SVG_TO_CANVAS, "source": "drawing.svg", "prompt": "a waving line", "seed": 7}


def test_svg_frames_reimport_to_the_same_points(result) -> None:
    files, _, frames = result
    assert [p.name for p in files.svg_frames] == [f"frame_{i:04d}.svg" for i in range(NUM_FRAMES)]
    for path, expected in zip(files.svg_frames, frames):
        imported = import_svg(path, canvas_size=(WIDTH, HEIGHT))
        np.testing.assert_allclose(imported.flat_points(), expected, rtol=0, atol=1e-6)


def test_animation_gif_and_mp4_have_every_frame_and_move(result) -> None:
    files, _, _ = result
    gif = gif_frames(files.animation_gif)
    assert len(gif) == NUM_FRAMES and gif[0].shape == (HEIGHT, WIDTH, 3)
    assert all(not np.array_equal(a, b) for a, b in zip(gif, gif[1:]))
    assert (gif[0] < 128).any(), "the strokes are drawn"
    mp4 = mp4_frames(files.animation_mp4)
    assert len(mp4) == NUM_FRAMES and mp4[0].shape == (HEIGHT, WIDTH, 3)


def test_side_by_side_shows_the_reference_frame_nearest_in_time(result) -> None:
    files, _, _ = result
    gif = gif_frames(files.side_by_side_gif)
    assert len(gif) == NUM_FRAMES
    assert gif[0].shape[0] == HEIGHT and 1.9 * WIDTH < gif[0].shape[1] < 2.3 * WIDTH
    colors = reference_colors().astype(float)
    for i, frame in enumerate(gif):
        shown = frame[:, -WIDTH:].reshape(-1, 3).mean(axis=0)
        assert np.abs(colors - shown).sum(axis=1).argmin() == nearest_reference_indices(NUM_FRAMES, NUM_REFERENCE)[i]
    assert len(mp4_frames(files.side_by_side_mp4)) == NUM_FRAMES


def test_nearest_reference_indices_match_ends_and_round_halves_up() -> None:
    assert nearest_reference_indices(6, 9).tolist() == [0, 2, 3, 5, 6, 8]  # 8i/5 rounded
    assert nearest_reference_indices(3, 2).tolist() == [0, 1, 1]  # 0.5 rounds up
    assert nearest_reference_indices(4, 4).tolist() == [0, 1, 2, 3]
    assert nearest_reference_indices(1, 5).tolist() == [0]
    assert nearest_reference_indices(3, 1).tolist() == [0, 0, 0]


def test_side_by_side_scales_the_reference_to_the_animation_height() -> None:
    animation = np.zeros((2, 10, 12, 3), dtype=np.uint8)
    reference = np.full((3, 20, 30, 3), 200, dtype=np.uint8)
    combined = side_by_side_frames(animation, reference, gap=4)
    assert combined.shape == (2, 10, 12 + 4 + 15, 3)
    assert (combined[:, :, :12] == 0).all() and (combined[:, :, 16:] == 200).all()


def test_loss_curve_is_drawn(result) -> None:
    files, _, _ = result
    image = np.asarray(Image.open(files.loss_curve).convert("RGB"))
    assert (image < 200).any(axis=2).sum() > 200


@pytest.mark.parametrize(
    "losses", [[0.5], [2.0, 2.0, 2.0], [float("nan"), 3.0, float("inf"), 1.0], list(np.linspace(5, 0, 1000))]
)
def test_loss_curve_handles_single_constant_nan_and_long_series(losses) -> None:
    image = draw_loss_curve(losses)
    assert image.dtype == np.uint8 and image.shape[2] == 3 and (image != 255).any()


@pytest.mark.parametrize("losses", [None, [], [float("nan"), float("nan")]])
def test_nothing_to_plot_gives_no_loss_curve(losses) -> None:
    assert draw_loss_curve(losses) is None


def test_manifest_lists_every_file_with_its_size_and_hash(result) -> None:
    files, _, _ = result
    manifest = json.loads(files.manifest.read_text())
    expected = {"result.json", "animation.gif", "animation.mp4", "side_by_side.gif", "side_by_side.mp4", "loss.png"}
    expected |= {f"frames/frame_{i:04d}.svg" for i in range(NUM_FRAMES)}
    assert set(manifest["files"]) == expected
    for name, entry in manifest["files"].items():
        assert (files.out_dir / name).stat().st_size == entry["size"]
        assert hashlib.sha256((files.out_dir / name).read_bytes()).hexdigest() == entry["sha256"]
    assert manifest["num_frames"] == NUM_FRAMES and manifest["fps"] == 6
    assert {p.relative_to(files.out_dir).as_posix() for p in files.content()} == expected
    assert leftovers(files.out_dir) == []


def test_without_reference_or_losses_those_previews_are_skipped(tmp_path) -> None:
    sketch = small_sketch()
    files = write_result(tmp_path, sketch, translated(sketch, 1), None, None)
    assert files.side_by_side_gif is files.side_by_side_mp4 is files.loss_curve is None
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "animation.gif", "animation.mp4", "frames", "result.json", MANIFEST,
    ]
    assert read_result(tmp_path).num_frames == 1


# ------------------------------------------------------------------------- refusals


def test_nan_frames_are_refused_and_nothing_is_written(tmp_path) -> None:
    sketch = small_sketch()
    frames = translated(sketch)
    frames[3, 2, 0] = np.nan
    with pytest.raises(SketchAnimatorError) as excinfo:
        write_result(tmp_path / "out", sketch, frames, reference_clip(), LOSSES)
    assert "NaN" in one_line_error(excinfo)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("cut", ["one point short", "flat"])
def test_frames_of_another_topology_are_refused(tmp_path, cut) -> None:
    sketch = small_sketch()
    frames = translated(sketch)
    frames = frames[:, :-1] if cut == "one point short" else frames.reshape(NUM_FRAMES, -1)
    with pytest.raises(SketchAnimatorError) as excinfo:
        write_result(tmp_path / "out", sketch, frames, None, None)
    assert "the same topology as the sketch" in one_line_error(excinfo)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "reference", [np.zeros((4, 8, 8, 3), dtype=np.float32), np.zeros((8, 8, 3), dtype=np.uint8), np.zeros((4, 8, 8, 4), dtype=np.uint8)]
)
def test_bad_reference_frames_are_refused_before_writing(tmp_path, reference) -> None:
    sketch = small_sketch()
    with pytest.raises(SketchAnimatorError) as excinfo:
        write_result(tmp_path / "out", sketch, translated(sketch), reference, None)
    assert "reference frames" in one_line_error(excinfo)
    assert not (tmp_path / "out").exists()


def test_metadata_that_json_cannot_hold_is_refused(tmp_path) -> None:
    sketch = small_sketch()
    with pytest.raises(SketchAnimatorError) as excinfo:
        write_result(tmp_path / "out", sketch, translated(sketch), None, None, metadata={"model": object()})
    assert "JSON" in one_line_error(excinfo)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------- full disk


def fill_the_disk_halfway(frames, path, fps=8.0):
    """A GIF writer that gets a few bytes out, then finds the disk full."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(b"GIF89a")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return atomic_write(path, write)


def test_full_disk_while_writing_previews_keeps_a_usable_result(tmp_path, monkeypatch) -> None:
    sketch = small_sketch()
    write_result(tmp_path, sketch, translated(sketch), None, [1.0, 0.5])  # an earlier, complete run
    new_frames = translated(sketch)[::-1].copy()  # another animation: the frames reversed

    monkeypatch.setattr(media, "save_gif", fill_the_disk_halfway)
    with pytest.raises(SketchAnimatorError) as excinfo:
        write_result(tmp_path, sketch, new_frames, None, [1.0, 0.5])
    message = one_line_error(excinfo)
    assert "animation.gif" in message and FULL_DISK_ADVICE in message

    assert np.array_equal(Sketch.load_json(tmp_path / "result.json").frames, new_frames)  # finished: kept, valid
    assert len(list((tmp_path / "frames").glob("*.svg"))) == NUM_FRAMES
    assert leftovers(tmp_path) == []
    # result.json and its frames were vouched for before the previews: the result is usable, its previews pending
    assert np.array_equal(read_result(tmp_path).frames, new_frames)
    manifest = json.loads((tmp_path / "result_manifest.json").read_text())
    assert manifest["previews"] == "pending" and "animation.gif" not in manifest["files"]

    monkeypatch.undo()  # space freed: the job runs again
    write_result(tmp_path, sketch, new_frames, None, [1.0, 0.5])
    assert np.array_equal(read_result(tmp_path).frames, new_frames)


def test_a_folder_never_finished_is_incomplete(tmp_path) -> None:
    small_sketch().with_frames(translated(small_sketch())).save_json(tmp_path / "result.json")
    with pytest.raises(SketchAnimatorError, match=f"result in {tmp_path} is incomplete"):
        read_result(tmp_path)


def test_a_rerun_with_fewer_frames_removes_stale_frames_and_previews(tmp_path) -> None:
    sketch = small_sketch()
    write_result(tmp_path, sketch, translated(sketch), reference_clip(3), [1.0, 0.5])
    files = write_result(tmp_path, sketch, translated(sketch, 2), None, None)
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == ["frame_0000.svg", "frame_0001.svg"]
    assert not (tmp_path / "side_by_side.gif").exists() and not (tmp_path / "loss.png").exists()
    assert len(files.content()) == 5
