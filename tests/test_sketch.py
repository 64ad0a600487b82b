"""The Sketch model: topology helpers, versioned JSON, validation, atomic writes, rendering."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest
import torch

from engine.errors import SketchError
from engine.files import atomic_write, atomic_write_text
from engine.vector.draw import render_sketch_frames
from engine.vector.render import SketchRenderer
from engine.vector.sketch import Path, Sketch


def two_path_sketch() -> Sketch:
    return Sketch(
        paths=[
            Path(points=[[10, 10], [20, 5], [30, 5], [40, 10], [50, 15], [60, 15], [70, 10]], half_width=2.0, color=(1, 0, 0)),
            Path(points=[[10, 40], [20, 40], [30, 40], [40, 40]], closed=False, half_width=1.0, opacity=0.5, color=(0.1, 0.2, 0.3)),
        ],
        width=80,
        height=60,
    )


def test_topology_helpers() -> None:
    sketch = two_path_sketch()
    assert sketch.num_points == 11 and sketch.num_segments == 3
    assert sketch.segment_index().tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [7, 8, 9, 10]]
    assert sketch.segment_path().tolist() == [0, 0, 1]
    assert sketch.segment_half_widths().tolist() == [2.0, 2.0, 1.0]
    np.testing.assert_array_equal(sketch.segments()[1], [[40, 10], [50, 15], [60, 15], [70, 10]])


def test_json_round_trip_with_animation(tmp_path) -> None:
    sketch = two_path_sketch()
    frames = sketch.flat_points()[None] + np.arange(3)[:, None, None] * np.array([1.25, -0.5])
    animated = sketch.with_frames(frames)
    animated.save_json(tmp_path / "s.json")
    loaded = Sketch.load_json(tmp_path / "s.json")
    assert (loaded.width, loaded.height, loaded.num_frames) == (80, 60, 3)
    np.testing.assert_array_equal(loaded.frames, frames)
    for a, b in zip(loaded.paths, animated.paths):
        np.testing.assert_array_equal(a.points, b.points)
        assert (a.closed, a.half_width, a.color, a.opacity) == (b.closed, b.half_width, b.color, b.opacity)
    np.testing.assert_array_equal(loaded.frame(2).flat_points(), frames[2])


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(version=0), "version 0"),
        (lambda d: d.update(version=99), "version 99"),
        (lambda d: d.pop("schema"), "not a Sketch Animator sketch"),
        (lambda d: d.update(paths=[]), "no strokes"),
        (lambda d: d["paths"][0]["points"].pop(), "3k+1"),
        (lambda d: d["paths"][0]["points"][0].__setitem__(0, float("nan")), "NaN"),
        (lambda d: d["paths"][1].update(half_width=-1), "half-width"),
        (lambda d: d["paths"][1].update(opacity=3), "opacity"),
        (lambda d: d.update(width=100000, height=100000), "out of range"),
        (lambda d: d.update(frames=[[[0, 0]]]), "same topology"),
        (lambda d: d["paths"][0].pop("points"), "paths[0].points must be a list, not None"),
    ],
)
def test_invalid_json_gives_one_line_error(tmp_path, edit, message) -> None:
    data = two_path_sketch().to_dict()
    edit(data)
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(SketchError) as info:
        Sketch.load_json(tmp_path / "bad.json")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_not_json_and_missing_file(tmp_path) -> None:
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(SketchError, match="not valid JSON"):
        Sketch.load_json(tmp_path / "x.json")
    with pytest.raises(SketchError, match="cannot read"):
        Sketch.load_json(tmp_path / "missing.json")


def test_atomic_write_keeps_old_file_when_the_disk_fills(tmp_path) -> None:
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")

    def fail(tmp: str) -> None:
        with open(tmp, "w") as handle:
            handle.write("partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(target, fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_renderer_colours_and_layers() -> None:
    sketch = two_path_sketch()
    renderer = SketchRenderer(sketch)
    assert len(renderer.layers) == 2
    image = renderer.render(renderer.points())
    assert image.shape == (3, 60, 80)
    # Inside the red stroke (fully covered pixel): pure red. Inside the 50% stroke: half mixed.
    assert torch.allclose(image[:, 10, 10], torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)
    assert torch.allclose(image[:, 40, 25], 0.5 * torch.tensor([1.0, 1.0, 1.0]) + 0.5 * torch.tensor([0.1, 0.2, 0.3]), atol=1e-6)
    assert torch.allclose(image[:, 55, 5], torch.ones(3))  # background


def test_render_is_differentiable_and_scales() -> None:
    sketch = two_path_sketch()
    renderer = SketchRenderer(sketch)
    points = renderer.points().requires_grad_(True)
    renderer.render(points).mean().backward()
    assert points.grad.abs().sum() > 0
    frames = render_sketch_frames(sketch.with_frames(np.stack([sketch.flat_points()] * 2)), size=160)
    assert frames.shape == (2, 120, 160, 3) and frames.dtype == np.uint8
    # Doubling the size doubles the widths: dark area grows 4×.
    small = (255 - render_sketch_frames(sketch)[0].astype(float)).sum()
    big = (255 - frames[0].astype(float)).sum()
    assert big / small == pytest.approx(4.0, rel=0.03)


def test_format_1_sketch_loads_with_uniform_widths_round_caps_and_no_pins() -> None:
    version_1 = {
        "schema": "sketch-animator/sketch", "version": 1, "width": 64, "height": 48,
        "paths": [{"points": [[1, 2], [3, 4], [5, 6], [7, 8]], "closed": False, "half_width": 2.0, "color": [0, 0, 0], "opacity": 1.0}],
        "frames": None, "metadata": {},
    }  # fmt: skip
    path = Sketch.from_dict(version_1).paths[0]
    assert (path.half_widths, path.start_cap, path.end_cap, path.pinned) == (None, "round", "round", False)
    np.testing.assert_array_equal(Sketch.from_dict(version_1).segment_control_widths(), [[2.0] * 4])
    assert Sketch.from_dict(version_1).to_dict()["version"] == 2


def test_per_point_widths_caps_and_pins_round_trip_and_are_checked() -> None:
    path = Path(points=[[1, 2], [3, 4], [5, 6], [7, 8]], half_widths=[0.5, 1.0, 2.0, 0.0], start_cap="flat", pinned=True)
    sketch = Sketch(paths=[path, Path(points=[[9, 9]] * 4)], width=32, height=32)
    back = Sketch.from_dict(json.loads(json.dumps(sketch.to_dict())))
    np.testing.assert_array_equal(back.paths[0].half_widths, [0.5, 1.0, 2.0, 0.0])
    assert (back.paths[0].start_cap, back.paths[0].end_cap, back.paths[0].pinned) == ("flat", "round", True)
    assert back.segment_caps()[0].tolist() == [True, False] and back.still_points().tolist() == [True] * 4 + [False] * 4
    with pytest.raises(SketchError, match="3 half-widths for 4 control points"):
        Sketch(paths=[Path(points=[[1, 2]] * 4, half_widths=[1, 1, 1])]).validate()
    with pytest.raises(SketchError, match="start_cap 'square'"):
        Sketch(paths=[Path(points=[[1, 2]] * 4, start_cap="square")]).validate()


def test_pictures_drawn_without_torch_match_the_differentiable_renderer() -> None:
    """engine/vector/draw.py draws the preview images to the picture the rasterizer makes:
    per-point widths, flat and round caps, closed paths, colours, opacities and their layers."""
    from engine.vector.draw import render_sketch_frames as draw_frames

    rng = np.random.default_rng(4)
    paths = []
    for k in range(12):
        widths = rng.uniform(0.3, 4.0, 7) if k % 3 == 0 else None
        paths.append(
            Path(
                points=rng.uniform(20, 230, (7, 2)), half_width=float(rng.uniform(0.4, 3.0)), half_widths=widths,
                color=tuple(rng.uniform(0, 1, 3)), opacity=float(rng.choice([1.0, 0.6])), closed=k == 5,
                start_cap="flat" if k % 2 else "round", end_cap="flat" if k % 4 == 1 else "round",
            )
        )  # fmt: skip
    sketch = Sketch(paths=paths, width=256, height=256)
    renderer = SketchRenderer(sketch)
    with torch.no_grad():
        exact = (renderer.render(renderer.points()).clamp(0, 1) * 255).round().permute(1, 2, 0).numpy()
    drawn = draw_frames(sketch)[0].astype(np.float64)
    assert np.abs(drawn - exact).mean() < 1.0  # grey levels, over the whole image
    ink_exact, ink_drawn = (255 - exact).sum(), (255 - drawn).sum()
    assert abs(ink_drawn - ink_exact) < 0.01 * ink_exact
    assert draw_frames(sketch, size=128).shape == (1, 128, 128, 3)
