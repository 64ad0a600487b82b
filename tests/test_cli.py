"""`python -m engine render` and `demo`, run as a user would, including bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import pytest

from engine.vector.sketch import Sketch

ROOT = Path(__file__).resolve().parent.parent
CAT = ROOT / "examples" / "cat.svg"


def run_engine(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_render_svg_to_png(tmp_path) -> None:
    result = run_engine("render", str(CAT), "-o", str(tmp_path / "cat.png"), "--size", "128")
    assert result.returncode == 0, result.stderr
    image = iio.imread(tmp_path / "cat.png")
    assert image.shape == (128, 128, 3)
    assert image.min() == 0 and (image == 255).mean() > 0.8  # black strokes on mostly white


def test_demo_animates_the_example_and_says_which_model(tmp_path) -> None:
    env = {**os.environ, "SKETCH_ANIMATOR_CACHE": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-m", "engine", "demo", "--out", str(tmp_path / "demo")], cwd=ROOT, capture_output=True, text=True, timeout=1800, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "meaningless" in result.stderr and "python -m engine download" in result.stderr
    assert (tmp_path / "demo" / "sketch.png").is_file() and (tmp_path / "demo" / "reference.mp4").is_file()
    gif = iio.imread(tmp_path / "demo" / "job" / "result" / "animation.gif", index=None)
    assert gif.shape[0] == 8
    assert Sketch.load_json(tmp_path / "demo" / "preview" / "result.json").num_frames == 8  # the model-free preview
    animated = Sketch.load_json(tmp_path / "demo" / "job" / "result" / "result.json")
    assert animated.num_frames == 8 and animated.frames.shape[1] == Sketch.load_json(tmp_path / "demo" / "job" / "input_sketch.json").num_points


def test_help_explains_every_option() -> None:
    result = run_engine("render", "--help")
    for option in ("--output", "--size", "--canvas", "--frame", "--fps"):
        assert option in result.stdout


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>
<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0 L10 10" stroke="black"/><desc>&c;</desc></svg>"""


@pytest.mark.parametrize(
    "name, content, output, extra, message",
    [
        ("broken.svg", "<svg><path d='M0 0 L 1 1'", "o.png", [], "XML"),
        ("empty.svg", '<svg xmlns="http://www.w3.org/2000/svg"><rect width="5" height="5" fill="none"/></svg>', "o.png", [], "no drawable strokes"),
        ("nan.svg", '<svg xmlns="http://www.w3.org/2000/svg"><path d="M nan 0 L 1 1" stroke="black"/></svg>', "o.png", [], "path"),
        ("laughs.svg", BILLION_LAUGHS, "o.png", [], "entit"),
        ("old.json", '{"schema": "sketch-animator/sketch", "version": 0, "paths": []}', "o.png", [], "version 0"),
        ("cat.svg", None, "o.png", ["--size", "100000"], "out of range"),
        ("cat.svg", None, "o.bmp", [], "unknown output format"),
        ("missing.svg", "", "o.png", [], "missing.svg"),
    ],
)
def test_bad_input_gives_one_line_and_no_output(tmp_path, name, content, output, extra, message) -> None:
    source = tmp_path / name
    if content is None:
        source.write_bytes(CAT.read_bytes())
    elif name != "missing.svg":
        source.write_text(content)
    result = run_engine("render", str(source), "-o", str(tmp_path / output), *extra)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert not (tmp_path / output).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({name} - ({"missing.svg"}))
