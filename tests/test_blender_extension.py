"""The Blender extension in real headless Blender 4.5 and 5.0 (bpy wheels from PyPI).

The zip is built with Blender's own tool, installed into an isolated user folder, and every
scenario (tests/blender_scenarios.py) runs in a fresh Blender process on that installed
copy; jobs run the installed copy's engine with this test session's Python and the tiny
model, as the Animate button does on a user's machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from blender_envs import BLENDER_VERSIONS, ensure_blender_env  # noqa: E402
from build_extension import build  # noqa: E402

SCENARIOS = Path(__file__).with_name("blender_scenarios.py")


@pytest.fixture(scope="session")
def extension_zip(tmp_path_factory) -> Path:
    return build("5.0", tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def video_file(tmp_path_factory) -> Path:
    frames = np.full((12, 64, 64, 3), 250, np.uint8)
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 120, (20, 20, 3), dtype=np.uint8)
    for i in range(12):
        frames[i, 22:42, 6 + 3 * i : 26 + 3 * i] = texture
    path = tmp_path_factory.mktemp("video") / "block.mp4"
    iio.imwrite(path, frames, fps=12, codec="libx264")
    return path


class Blender:
    """One Blender version with the extension installed in its own user folder."""

    def __init__(self, version: str, user_dir: Path, common: dict) -> None:
        self.version, self.user_dir, self.common = version, user_dir, common
        self.python = ensure_blender_env(version)

    def run(self, scenario: str, timeout_s: float = 900, **args) -> dict:
        payload = json.dumps({"user_dir": str(self.user_dir), **self.common, **args})
        done = subprocess.run(
            [str(self.python), str(SCENARIOS), scenario, payload], capture_output=True, text=True, timeout=timeout_s, cwd=ROOT
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT: ")]
        assert done.returncode == 0 and lines, f"Blender {self.version} scenario {scenario} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
        return json.loads(lines[-1][len("RESULT: ") :])


@pytest.fixture(scope="session", params=sorted(BLENDER_VERSIONS))
def blender(request, tmp_path_factory, extension_zip, tiny_model_dir, video_file) -> Blender:
    work = tmp_path_factory.mktemp(f"blender-{request.param}")
    common = {
        "zip": str(extension_zip),
        "engine_python": sys.executable,
        "model": str(tiny_model_dir),
        "video": str(video_file),
        "svg": str(ROOT / "examples" / "cat.svg"),
        "cache_dir": str(work / "cache"),
    }
    (work / "cache").mkdir()
    instance = Blender(request.param, work / "user", common)
    instance.install_report = instance.run("install")
    return instance


def test_manifest_validates_and_zip_holds_the_extension_only(extension_zip) -> None:
    names = zipfile.ZipFile(extension_zip).namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names
    assert "engine/__main__.py" in names and "engine/job/pipeline.py" in names and "grease_pencil/blender_io.py" in names and "panels/sidebar.py" in names
    assert "pyproject.toml" in names  # the engine's requirements, read by 'Create engine environment'
    assert any(name.startswith("wheels/defusedxml-") for name in names)
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "tools/", ".venv", ".git/")) or "__pycache__" in n]


def test_zip_installs_enables_registers_and_unregisters(blender) -> None:
    report = blender.install_report
    assert report["version"][:2] == [int(x) for x in blender.version.split(".")]
    assert report["result"] == ["FINISHED"]
    assert report["installed_at"] == str(Path("extensions") / "user_default" / "sketch_animator")
    expected = [
        "animate", "animate_selected", "apply", "apply_all", "cancel", "check_engine", "create_engine", "download_model", "import_svg", "open_log",
        "pin_layer", "pin_strokes", "preview_motion", "resume",
    ]  # fmt: skip
    assert report["ops"] == expected and report["ops_after_reenable"] == expected
    assert all(report["registered"].values()), report["registered"]
    assert report["after_disable"] == {"ops": [], "panel": False, "object_settings": False, "load_handler": False}
    assert report["torch_imported"] is False
    derived = report["derived"]
    assert derived["quality_items"] == derived["panel_presets"] == ["DEFAULT", "DRAFT", "STANDARD", "PAPER"]
    for name in ("guidance", "learning_rate", "frames"):
        assert derived[name][0] == pytest.approx(derived[name][1]), name


def test_grease_pencil_round_trip_on_a_transformed_parented_object(blender) -> None:
    r = blender.run("roundtrip")
    assert r["bezier_max_error"] < 1e-4, r
    assert r["poly_max_error_px"] <= r["tolerance_px"] + 1e-6, r
    assert r["keyframes"] == [5, 6, 7] and r["strokes_per_frame"] == [3, 3, 3] and r["frames_equal"]
    assert r["curve_types"] == [2]  # the Bézier form: every written stroke is a Bézier curve
    assert r["points_max_error"] < 1e-4 and r["points_curve_types"] == r["source_curve_types"]  # the original-points form
    assert r["material_index"] == r["source_material_index"] == [0, 1, 0]
    assert r["bezier_radius_error"] < 1e-6 and r["bezier_opacity_error"] < 1e-6 and r["bezier_color_error"] < 1e-6
    assert r["source_hidden"] and r["source_unchanged"] and r["layer_name"] == "Lines animated"
    assert r["frame_range"][0] <= 5 and r["frame_range"][1] >= 7


def test_applying_twice_replaces_the_animated_layer(blender) -> None:
    r = blender.run("apply_twice")
    assert r["layers"] == ["Lines", "Lines animated"]
    assert r["keyframes"] == [2, 3, 4, 5, 6, 7]
    np.testing.assert_allclose(r["mean_dx_units"], [f * r["expected_dx_per_frame"] for f in range(6)], atol=1e-5)
    assert r["frame_range"] == [1, 7]  # widened from 1–3 to cover frames 2–7


def test_bad_input_gives_one_line_messages_and_keeps_the_strokes(blender) -> None:
    r = blender.run("bad_inputs")
    m = r["messages"]
    assert "no engine Python is set" in m["no_engine_python"]
    assert "torch is missing" in m["engine_python_missing_packages"] and "Create engine environment" in m["engine_python_missing_packages"]
    assert "does not exist" in m["missing_video"] and "/nonexistent/video.mp4" in m["missing_video"]
    assert "no layer named 'Nope'" in m["missing_layer"]
    assert "is empty at frame 1" in m["empty_layer"]
    assert "2500 strokes" in m["thousands_of_strokes"] and "up to 2000" in m["thousands_of_strokes"]
    assert "every stroke of layer 'Lines' is pinned" in m["everything_pinned"] and "nothing is left to animate" in m["everything_pinned"]
    assert "no visible, unlocked layer with strokes" in m["no_visible_layer"]
    assert m["not_grease_pencil_poll"] is False
    assert "now has 4 strokes, the result was made from 3" in m["stroke_count_changed"]
    assert r["broken_state"] == "failed" and r["log_kept"]
    assert "broken.mp4" in m["broken_video"] and "\n" not in m["broken_video"] and "Traceback" not in m["broken_video"]
    assert r["job_dir_in_cache"]  # the .blend was never saved
    assert r["source_unchanged"] and "Lines animated" not in r["layers"]
    for key, message in m.items():
        assert isinstance(message, bool) or ("\n" not in message and "Traceback" not in message), (key, message)


def test_svg_import_makes_a_grease_pencil_object(blender) -> None:
    r = blender.run("svg_import")
    assert r["result"] == ["FINISHED"] and r["objects"] == 1 and r["type"] == "GREASEPENCIL" and r["active"]
    assert r["strokes"] > 3 and r["curve_types"] == [2]
    assert "broken.svg" in r["broken_error"] and r["objects_after_broken"] == 1


def test_end_to_end_animate_poll_apply_save_reopen(blender) -> None:
    r = blender.run("end_to_end", blend=str(blender.user_dir.parent / "e2e.blend"))
    assert r["started"] == ["FINISHED"] and r["state"] == "done", r
    assert r["applied"] == ["FINISHED"] and r["summary"] == "Finished"
    assert r["keyframes"] == [10, 11, 12, 13] and r["result_frames"] == 4
    assert r["strokes_per_frame"] == [r["source_strokes"]] * 4
    assert r["position_error"] < 1e-5 and r["handle_error"] < 1e-5  # float32 storage of the mapped-back points
    assert r["source_unchanged"] and r["source_hidden"]
    assert {"job_start", "stage_start", "progress", "stage_end", "done"} <= set(r["events"])
    assert r["job_dir_next_to_blend"] and r["log"]
    assert r["reopened_keyframes"] == [10, 11, 12, 13] and r["reopened_equal"]
    assert r["reattached_state"] == "done"


def test_cancel_reload_reattach_and_resume(blender) -> None:
    r = blender.run("cancel_resume", blend=str(blender.user_dir.parent / "cancel.blend"))
    assert r["running_summary"].startswith("Distillation (3/3): step"), r
    assert 0 < r["fraction_at_cancel"] < 1
    assert r["cancelled"] == ["FINISHED"] and r["state_after_cancel"] == "cancelled"
    assert r["reattached_after_reload"] == "cancelled"
    assert r["resumed"] == ["FINISHED"] and r["state_while_running_after_forgetting"] == "running"
    assert r["final_state"] == "done", r["final_error"]
    first, resumed = r["distillation_stage_starts"][0], r["distillation_stage_starts"][-1]
    assert first == 0 and resumed >= r["step_at_cancel"] - 1 and resumed > 0  # continued from its checkpoint


def test_preview_motion_button_applies_like_a_full_result(blender) -> None:
    r = blender.run("preview_motion")
    assert r["started"] == ["FINISHED"] and r["state"] == "done", r["error"]
    assert r["applied"] == ["FINISHED"] and r["result_kind"] == "preview"
    assert r["keyframes"] == list(range(10, 16)) and r["strokes_per_frame"] == [3] * 6
    assert r["moved_world_units"] > 0.05  # the block moves right by half the frame


def test_animate_selected_runs_one_batch_on_local_ray_and_apply_all_applies_both(blender) -> None:
    r = blender.run("animate_selected", blend=str(blender.user_dir.parent / "batch.blend"))
    assert r["started"] == ["FINISHED"] and r["states"] == ["done", "done"], r
    assert r["one_process"] and r["applied"] == ["FINISHED"]
    assert r["keyframes"] == [[10, 11, 12, 13], [10, 11, 12, 13]]
    assert r["stage_tasks"] == ["appearance", "appearance", "motion"]  # the motion both share was learned once
    assert r["subjects"] == ["A doodle.", "Another doodle."]  # each object's own panel settings


def test_object_renamed_or_deleted_while_its_job_runs(blender) -> None:
    r = blender.run("object_renamed_and_deleted")
    assert r["state"] == "done" and r["owner"] == "Renamed" and r["applied"] == ["FINISHED"]
    assert r["deleted_owner_state"] == "done" and r["deleted_result_kept"]


def test_check_button_reports_missing_packages(blender) -> None:
    r = blender.run("check_engine")
    assert "torch is missing" in r["bare"] and "diffusers is missing" in r["bare"] and "Create engine environment" in r["bare"]
    assert r["engine"].startswith("Python 3.") and "torch" in r["engine"] and "device" in r["engine"]
    # headless Blender starts with online access off: the buttons that download say so and start nothing
    assert r["online_access"] is False
    assert "online access is off" in r["download"] and "online access is off" in r["create"]


def test_apply_keys_the_scene_frame_rate_with_inbetweens_holds_and_cycles(blender) -> None:
    r = blender.run("timing")
    for label in ("24", "29.97", "half", "double"):
        assert r["keys"][label] == r["expected"][label], label
    assert r["keys"]["24"] == [10 + 2 * round(k * 23 / 15 + 1e-9) for k in range(16)]  # 12 fps poses on a 24 fps scene
    smooth = r["smooth"]
    assert smooth["frames"] == list(range(10, smooth["key_numbers"][-1] + 1)) and smooth["key_error"] < 1e-5
    assert smooth["types_at_keys"] == ["KEYFRAME"] and smooth["types_between"] == ["BREAKDOWN"]
    # C1: the velocity changes no more across a key than between keys (a kink at keys would, as linear in-betweens do)
    assert smooth["jump_at_keys"] < 1.5 * smooth["jump_between"] and smooth["jump_between"] < 0.2 * smooth["max_velocity"]
    assert r["hold"]["frames"] == smooth["key_numbers"] and r["hold"]["shown_between"] == smooth["key_numbers"][1]
    assert r["hold"]["types"] == ["KEYFRAME"]
    cycle = r["cycle"]
    assert cycle["period"] == 24 and cycle["modifier_mode"] == "NORMAL" and cycle["filter"] == cycle["layer"] == "Lines animated"
    assert cycle["range"] == [10, 33] and cycle["keep_loop"] and cycle["offset"] == 0
    assert max(cycle["looped_equal"]) < 1e-6  # past the animation's end Blender shows the looped keys
    assert abs(cycle["seam_step"] - cycle["mean_step"]) < 0.05 * cycle["mean_step"]
    assert cycle["other_layer_frames"] == [1]  # the source layer is not looped
    assert r["pingpong"] == {"count": 1, "mode": "PINGPONG", "range": [10, 32]} and r["once_modifiers"] == 0
    assert r["old"]["frames"] == [3, 4, 5, 6, 7] and "older version" in r["old"]["notes"][0]
    bad = r["bad"]
    assert "speed 0 is out of range" in bad["messages"]["speed"] and "fit to 0 frames" in bad["messages"]["fit"] and bad["unchanged"]


def test_the_drawing_keeps_its_line_weight_caps_layers_fills_and_pins(blender) -> None:
    r = blender.run("drawing")
    assert r["pin"] == ["FINISHED"] and r["layer_set"] == ["Lines", "Fills"] and r["pinned_paths"] == [False, False, False, True, False]
    points = r["points"]
    assert points["layers"] == ["Lines animated", "Fills animated"]
    assert points["order"] == ["Lines", "Lines animated", "Fills", "Fills animated"]  # each directly above its source
    exact = points["exact"]
    assert [k for k, v in exact.items() if not k.endswith("position_error") and not v] == [], exact  # radius, opacity, colour: the source's, exactly
    assert exact["Lines.position_error"] < 1e-5 and exact["Fills.position_error"] < 1e-5
    assert points["start_cap"] == [1, 0, 0, 0] and points["curve_types"] == [1] and points["fills_opacity"] == pytest.approx(0.8)
    assert points["ink_pixels"] > 500 and points["render_iou"] >= 0.95, points["render_iou"]
    bezier = r["bezier"]
    assert bezier["worst_profile_error"] <= 0.10 and bezier["curve_types"] == [2] and bezier["render_iou"] >= 0.9
    motion = r["motion"]
    assert motion["lines_shift"] == pytest.approx(motion["fills_shift"], abs=1e-4) and motion["lines_shift"][0] > 0.05
    assert motion["shift_spread"] < 1e-4 and motion["pinned_identical"]  # lines and fills move together; the pinned line stays, bit for bit
    bad = r["bad"]
    assert "now has 2 strokes, the result was made from 1" in bad["messages"]["changed_set"]
    assert "has no layer 'Fills' any more" in bad["messages"]["renamed"]
    assert "layer 'Empty' is empty at frame 1" in bad["messages"]["empty_set"]
    assert bad["unchanged"] and all("\n" not in m for m in bad["messages"].values())
    old = r["format_1"]  # a result.json of the previous release applies exactly as that release applied it
    assert old["uniform_widths"] and old["round_caps"] and old["keys"] and old["offsets_equal"] and old["curve_types_equal"], old
    assert old["world_error"] < 1e-5 and old["radius_error"] < 1e-7 and old["written_caps"] == [0], old
