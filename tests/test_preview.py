"""Instant motion preview: known synthetic motions to a fraction of a pixel, the camera removed,
a tight subject box, real-time smoothing, the canvas kept; bad input is one line."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import imageio.v2 as imageio_v2
import imageio.v3 as iio
import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from engine.cli import add_preview_command  # noqa: E402
from engine.job.events import EventLog, read_events  # noqa: E402
from engine.job.results import read_result  # noqa: E402
from engine.media.reference import VideoSpec, sample_indices  # noqa: E402
from engine.preview import ExtentMapping, PreviewError, SubjectTracks, preview_motion, track_subject, transfer_motion  # noqa: E402
from engine.preview.transfer import smooth_over_time  # noqa: E402
from engine.settings import PreviewSettings  # noqa: E402
from engine.vector.sketch import Path as Stroke  # noqa: E402
from engine.vector.sketch import Sketch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIZE = 256
SOURCE_FRAMES, NUM_FRAMES, FPS = 24, 16, 24.0
SAMPLED = sample_indices(0, SOURCE_FRAMES - 1, NUM_FRAMES)  # 1 or 2 source frames apart: uneven
TIMES = SAMPLED / FPS
DISC_CENTRE = (110.0, 128.0)
DISC_RADIUS = 45.0
TRUE_BOX = (DISC_CENTRE[0] - DISC_RADIUS, DISC_CENTRE[1] - DISC_RADIUS, DISC_CENTRE[0] + DISC_RADIUS, DISC_CENTRE[1] + DISC_RADIUS)
VIDEO_PX = 0.5  # mean control-point error bound, in the video's canvas pixels (a sketch the subject's size)
SKETCH_PX = 1.0  # … and in sketch pixels, for a sketch 2.5× its subject
STILL_PX = 0.1

Motion = Callable[[int], np.ndarray]  # source frame index → 2×3 map of first-frame pixels (pixel-edge coordinates)


# ------------------------------------------------------------------------ synthetic videos
def similarity(angle_deg: float = 0.0, scale: float = 1.0, shift=(0.0, 0.0), centre=DISC_CENTRE) -> np.ndarray:
    """2×3 matrix in pixel-edge coordinates (pixel (i, j) covers [j, j+1) × [i, i+1)): turn by
    `angle_deg` and scale about `centre`, then shift."""
    angle = np.deg2rad(angle_deg)
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    offset = np.asarray(centre) + np.asarray(shift) - rotation @ np.asarray(centre)
    return np.hstack([rotation, offset[:, None]])


def in_opencv_coordinates(motion: np.ndarray) -> np.ndarray:
    """The same map where pixel (i, j) is the point (j, i), as cv2.warpAffine takes it."""
    to_edge, to_cv = np.eye(3), np.eye(3)
    to_edge[:2, 2], to_cv[:2, 2] = 0.5, -0.5
    return (to_cv @ np.vstack([motion, [0, 0, 1]]) @ to_edge)[:2]


def texture(size: int, sigma: float, seed: int, tint: tuple[float, float, float]) -> np.ndarray:
    """Smoothed noise at three scales (natural images have structure at every scale), tinted."""
    rng = np.random.default_rng(seed)
    total = np.zeros((size, size, 3), np.float32)
    for blur in (sigma, 4 * sigma, 10 * sigma):
        noise = cv2.GaussianBlur(rng.random((size, size, 3)).astype(np.float32), (0, 0), blur)
        total += (noise - noise.mean()) / noise.std()
    total = (total - total.min()) / (total.max() - total.min())
    return total * 255 * np.asarray(tint, np.float32)


def disc_mask(centre=DISC_CENTRE, radius: float = DISC_RADIUS, size: int = SIZE) -> np.ndarray:
    rows, cols = np.mgrid[:size, :size].astype(np.float32) + 0.5
    return np.clip(radius - np.hypot(cols - centre[0], rows - centre[1]) + 0.5, 0, 1)


def box_mask(x0: float, y0: float, x1: float, y1: float, size: int = SIZE) -> np.ndarray:
    rows, cols = np.mgrid[:size, :size].astype(np.float32) + 0.5
    inside_x = np.clip(np.minimum(cols - x0, x1 - cols) + 0.5, 0, 1)
    inside_y = np.clip(np.minimum(rows - y0, y1 - rows) + 0.5, 0, 1)
    return inside_x * inside_y


@dataclass
class Layer:
    mask: np.ndarray  # (size, size) first-frame coverage in [0, 1]
    motion: Motion


def still(_: int) -> np.ndarray:
    return similarity()


def no_pan(_: int) -> tuple[float, float]:
    return (0.0, 0.0)


def render_video(layers: list[Layer], pan=no_pan, num_frames: int = SOURCE_FRAMES, size: int = SIZE, scale: int = 1) -> np.ndarray:
    """Textured layers moving on a textured background seen by a panning camera.

    Frame pixel = world pixel − pan(t); pan(0) = (0, 0), so first-frame pixels are world pixels.
    `scale` renders the same video `scale` times larger (a big video to be downscaled).
    """
    margin = 160
    background = texture(size + 2 * margin, 3.0, 1, (0.6, 1.0, 0.7))
    foreground = texture(size, 2.0, 2, (1.0, 0.55, 0.45))
    zoom = np.diag([scale, scale, 1.0])
    out = size * scale
    frames = []
    for t in range(num_frames):
        px, py = pan(t)
        camera = zoom @ np.array([[1, 0, -px], [0, 1, -py], [0, 0, 1.0]])
        view = in_opencv_coordinates((camera @ np.array([[1, 0, -margin], [0, 1, -margin], [0, 0, 1.0]]))[:2])
        frame = cv2.warpAffine(background, view, (out, out), flags=cv2.INTER_LINEAR)
        for layer in layers:
            placement = in_opencv_coordinates((camera @ np.vstack([layer.motion(t), [0, 0, 1]]))[:2])
            colour = cv2.warpAffine(foreground, placement, (out, out), flags=cv2.INTER_LINEAR)
            alpha = cv2.warpAffine(layer.mask, placement, (out, out), flags=cv2.INTER_LINEAR)[..., None]
            frame = colour * alpha + frame * (1 - alpha)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return np.stack(frames)


def disc_video(motion: Motion, pan=no_pan, **kwargs) -> np.ndarray:
    return render_video([Layer(disc_mask(), motion)], pan, **kwargs)


def write_mp4(path: Path, frames: np.ndarray, fps: float = FPS) -> Path:
    with imageio_v2.get_writer(
        path, format="FFMPEG", mode="I", fps=fps, codec="libx264", pixelformat="yuv420p",
        macro_block_size=1, ffmpeg_log_level="error", output_params=["-crf", "12", "-preset", "ultrafast"],
    ) as writer:  # fmt: skip
        for frame in frames:
            writer.append_data(frame)
    return path


# ----------------------------------------------------------------------------- sketches
def circle_sketch(centre=(128.0, 128.0), radius: float = 60.0, canvas: int = SIZE) -> Sketch:
    """A circle (4 Béziers) with a cross inside: points on the rim and in the middle."""
    cx, cy = centre
    k = 0.5523 * radius
    rim = [
        (cx + radius, cy), (cx + radius, cy + k), (cx + k, cy + radius), (cx, cy + radius),
        (cx - k, cy + radius), (cx - radius, cy + k), (cx - radius, cy), (cx - radius, cy - k),
        (cx - k, cy - radius), (cx, cy - radius), (cx + k, cy - radius), (cx + radius, cy - k), (cx + radius, cy),
    ]  # fmt: skip
    across = [(cx - 0.6 * radius + 0.4 * radius * i, cy) for i in range(4)]
    down = [(cx, cy - 0.6 * radius + 0.4 * radius * i) for i in range(4)]
    return Sketch([Stroke(np.array(rim), closed=True), Stroke(np.array(across)), Stroke(np.array(down))], width=canvas, height=canvas)


def traced_disc(factor: float) -> Sketch:
    """The disc traced by a sketch `factor` times its size, on a canvas big enough for the motions
    (factor 1: sketch pixels are the video's pixels)."""
    if factor == 1.0:
        return circle_sketch(DISC_CENTRE, DISC_RADIUS, SIZE)
    canvas = int(np.ceil(2 * DISC_RADIUS * factor * 3))
    return circle_sketch((canvas / 2, canvas / 2), DISC_RADIUS * factor, canvas)


def expected_points(sketch: Sketch, box, motion: Motion, source_frames=SAMPLED) -> np.ndarray:
    """The subject's known motion carried through the subject-box → sketch-extent mapping."""
    mapping = ExtentMapping.between(box, sketch)
    in_video = mapping.invert(sketch.flat_points())
    homogeneous = np.hstack([in_video, np.ones((len(in_video), 1))])
    return np.stack([mapping.apply(homogeneous @ motion(int(t)).T) for t in source_frames])


def mean_error(frames: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(frames - expected, axis=2).mean())


def follow(sketch: Sketch, tracks: SubjectTracks, **settings) -> np.ndarray:
    return transfer_motion(sketch, tracks, PreviewSettings(**settings)).frames


# ------------------------------------------------------------------- known motions, tracked once
PIVOT = (DISC_CENTRE[0] + 25.0, DISC_CENTRE[1] - 15.0)  # off the disc's centre
MOTIONS: dict[str, Motion] = {
    "translation": lambda t: similarity(shift=(1.5 * t, -0.75 * t)),
    "rotation": lambda t: similarity(angle_deg=2.0 * t, centre=PIVOT),
    "scaling": lambda t: similarity(scale=1.0 + 0.5 * t / (SOURCE_FRAMES - 1)),
}
PAN = lambda t: (1.5 * t, -1.0 * t)  # noqa: E731


@pytest.fixture(scope="module")
def tracked() -> dict[str, SubjectTracks]:
    """Each known motion, with a still and a panning camera, 16 of 24 frames, tracked once."""
    cases = {}
    for name, motion in MOTIONS.items():
        cases[name] = track_subject(disc_video(motion)[SAMPLED], times_s=TIMES)
        cases[f"{name}+pan"] = track_subject(disc_video(motion, PAN)[SAMPLED], times_s=TIMES)
    return cases


CASES = [*MOTIONS, *(f"{name}+pan" for name in MOTIONS)]


@pytest.mark.parametrize("case", CASES)
def test_rigid_motions_are_followed_within_half_a_pixel(tracked, case: str) -> None:
    """The default mode, against the truth through the subject's true box: 0.5 px in the video's
    pixels, 1 px in the pixels of a sketch 2.5× the subject."""
    tracks = tracked[case]
    motion = MOTIONS[case.split("+")[0]]
    for factor, bound in ((1.0, VIDEO_PX), (2.5, SKETCH_PX)):
        sketch = traced_disc(factor)
        frames = follow(sketch, tracks)
        assert frames.shape == (NUM_FRAMES, sketch.num_points, 2)
        np.testing.assert_array_equal(frames[0], sketch.flat_points())
        assert mean_error(frames, expected_points(sketch, TRUE_BOX, motion)) < bound, (case, factor)
    assert not tracks.warnings


@pytest.mark.parametrize("rigidity", ["similarity", "partwise"])
@pytest.mark.parametrize("case", ["rotation", "scaling+pan"])
def test_the_other_rigidities_follow_rigid_motions_too(tracked, case: str, rigidity: str) -> None:
    sketch = traced_disc(1.0)
    frames = follow(sketch, tracked[case], rigidity=rigidity)
    assert mean_error(frames, expected_points(sketch, TRUE_BOX, MOTIONS[case.split("+")[0]])) < VIDEO_PX


@pytest.mark.parametrize("case", CASES)
def test_subject_box_is_tight_to_the_disc(tracked, case: str) -> None:
    assert np.abs(np.subtract(tracked[case].box, TRUE_BOX)).max() <= 3.0, tracked[case].box


def test_camera_motion_is_recovered(tracked) -> None:
    cameras = tracked["translation+pan"].cameras
    for k in (5, 15):  # first-frame pixel → frame t pixel: the view moved by the pan
        t = SAMPLED[k]
        np.testing.assert_allclose(cameras[k][:2, 2], [-1.5 * t, 1.0 * t], atol=0.1)
        np.testing.assert_allclose(cameras[k][:2, :2], np.eye(2), atol=0.002)
    assert tracked["translation"].diagnostics["camera_motion_px"] < 0.1


def test_static_video_leaves_the_sketch_still() -> None:
    tracks = track_subject(disc_video(still)[SAMPLED])
    frames = follow(circle_sketch(), tracks)
    assert np.abs(frames - circle_sketch().flat_points()).max() < STILL_PX
    assert tracks.num_tracks == 0
    assert len(tracks.warnings) == 1 and "no subject motion detected" in tracks.warnings[0]


def test_camera_pan_alone_is_no_subject_motion() -> None:
    tracks = track_subject(disc_video(still, PAN)[SAMPLED])
    frames = follow(circle_sketch(), tracks)
    assert np.abs(frames - circle_sketch().flat_points()).max() < STILL_PX
    assert "no subject motion" in tracks.warnings[0]


# ------------------------------------------------------------------------------ real time
def test_smoothing_keeps_a_steady_motion_exactly_on_uneven_times() -> None:
    times = TIMES
    steady = times[:, None, None] * np.array([[[48.0, -24.0]]]) + 5.0  # px per second
    np.testing.assert_allclose(smooth_over_time(steady, 0.08, times), steady, atol=1e-9)
    assert np.abs(smooth_over_time(steady, 1.5) - steady).max() > 0.5  # frames as if evenly spaced: not steady any more
    jitter = steady + np.random.default_rng(0).normal(0, 1.0, steady.shape)
    smoothed = smooth_over_time(jitter, 0.06, times)
    assert np.abs(smoothed - steady)[1:-1].mean() < 0.75 * np.abs(jitter - steady)[1:-1].mean()


def test_unevenly_sampled_frames_are_smoothed_in_real_time(tracked) -> None:
    """A steady translation sampled 1 or 2 source frames apart: with the frames' times, strong
    smoothing leaves it as it is; taken as evenly spaced, the same smoothing bends it."""
    sketch = traced_disc(1.0)
    expected = expected_points(sketch, TRUE_BOX, MOTIONS["translation"])
    timed = tracked["translation"]
    untimed = SubjectTracks(timed.tracks, timed.visible, timed.box, timed.cameras, timed.frame_size)
    with_times = mean_error(follow(sketch, timed, temporal_smoothing=1.5), expected)
    without = mean_error(follow(sketch, untimed, temporal_smoothing=1.5), expected)
    assert with_times < VIDEO_PX and without > 3 * with_times, (with_times, without)


# ---------------------------------------------------------------------------- several parts
def test_two_halves_moving_apart_move_the_sketch_halves_apart() -> None:
    halves = [
        Layer(box_mask(78, 88, 128, 168), lambda t: similarity(shift=(-1.0 * t, 0.0))),
        Layer(box_mask(128, 88, 178, 168), lambda t: similarity(shift=(1.0 * t, 0.0))),
    ]
    tracks = track_subject(render_video(halves)[SAMPLED], times_s=TIMES)
    assert np.abs(np.subtract(tracks.box, (78, 88, 178, 168))).max() <= 3.0, tracks.box
    sketch = Sketch([Stroke(np.array([[60.0, y], [60, y + 30], [60, y + 60], [60, y + 90]])) for y in (40.0, 130.0)]
                    + [Stroke(np.array([[196.0, y], [196, y + 30], [196, y + 60], [196, y + 90]])) for y in (40.0, 130.0)])  # fmt: skip
    left = sketch.flat_points()[:, 0] < 128
    apart = 2 * 1.0 * SAMPLED[-1] * ExtentMapping.between(tracks.box, sketch).scale
    for rigidity in ("partwise", "deformable"):
        moved = follow(sketch, tracks, rigidity=rigidity)[-1] - sketch.flat_points()
        assert moved[left, 0].max() < -0.35 * apart and moved[~left, 0].min() > 0.35 * apart, rigidity  # stroke ends lie past the subject
        assert moved[~left, 0].mean() - moved[left, 0].mean() == pytest.approx(apart, rel=0.03 if rigidity == "partwise" else 0.12), rigidity  # a smooth field overshoots a little at the edges
        assert np.abs(moved[:, 1]).max() < 1.0, rigidity


def test_two_parts_turning_about_a_joint_move_the_matching_halves_the_right_way() -> None:
    """An arm: two bars meeting at a joint, the left one turning up, the right one down, about it."""
    joint = (128.0, 128.0)
    parts = [
        Layer(box_mask(60, 116, 128, 140), lambda t: similarity(angle_deg=1.2 * t, centre=joint)),
        Layer(box_mask(128, 116, 196, 140), lambda t: similarity(angle_deg=-1.2 * t, centre=joint)),
    ]
    tracks = track_subject(render_video(parts)[SAMPLED], times_s=TIMES)
    sketch = Sketch([Stroke(np.array([[40.0 + 20 * i, 128.0] for i in range(4)])), Stroke(np.array([[156.0 + 20 * i, 128.0] for i in range(4)]))])
    mapping = ExtentMapping.between(tracks.box, sketch)
    for rigidity in ("partwise", "deformable"):
        moved = follow(sketch, tracks, rigidity=rigidity)[-1]
        for path, (start, stop) in enumerate(((0, 4), (4, 8))):
            part = parts[path]
            truth = np.hstack([mapping.invert(sketch.flat_points()[start:stop]), np.ones((4, 1))]) @ part.motion(int(SAMPLED[-1])).T
            expected = mapping.apply(truth)
            outer = 0 if path == 0 else 3  # the bar's far end moves most
            got, want = moved[start + outer] - sketch.flat_points()[start + outer], expected[outer] - sketch.flat_points()[start + outer]
            assert np.dot(got, want) / (np.linalg.norm(got) * np.linalg.norm(want)) > 0.9, (rigidity, path, got, want)
            assert np.linalg.norm(got) == pytest.approx(np.linalg.norm(want), rel=0.35), (rigidity, path, got, want)


# ------------------------------------------------------------------------------- the canvas
def test_a_long_translation_keeps_the_sketch_on_the_canvas_and_says_so() -> None:
    travel = lambda t: similarity(shift=(150.0 * t / (SOURCE_FRAMES - 1), 0.0), centre=(60.0, 128.0))  # noqa: E731
    video = render_video([Layer(disc_mask((60.0, 128.0), 30.0), travel)])[SAMPLED]
    tracks = track_subject(video, times_s=TIMES)
    sketch = circle_sketch((128.0, 128.0), 70.0)
    kept = transfer_motion(sketch, tracks)
    low, high = sketch.curve_bounds(kept.frames).min(axis=0)[0], sketch.curve_bounds(kept.frames).max(axis=0)[1]
    assert (low >= -1e-6).all() and (high <= SIZE + 1e-6).all(), (low, high)
    assert 0.05 < kept.translation_kept < 0.5 and len(kept.warnings) == 1 and "\n" not in kept.warnings[0]
    assert "follows" in kept.warnings[0] and "--off-canvas" in kept.warnings[0]
    assert (kept.frames[-1] - kept.frames[0]).mean(axis=0)[0] > 20  # it still travels right, as far as the canvas allows
    free = transfer_motion(sketch, tracks, PreviewSettings(keep_on_canvas=False))
    assert free.translation_kept == 1.0 and not free.warnings
    assert sketch.curve_bounds(free.frames[-1])[0, 0] > SIZE  # followed all the way, the drawing leaves its canvas
    turns = transfer_motion(sketch, tracks, PreviewSettings(follow_translation=False))
    assert turns.translation_kept == 1.0 and np.abs(turns.frames - sketch.flat_points()).max() < 2.0  # 2 sketch px: under 1 video px


# ------------------------------------------------------------------------ settings in motion
def test_strength_scales_the_turn_and_the_shift(tracked) -> None:
    sketch = traced_disc(1.0)
    half = follow(sketch, tracked["rotation"], rigidity="similarity", strength=0.5)
    half_motion = lambda t: similarity(angle_deg=1.0 * t, centre=PIVOT)  # noqa: E731
    assert mean_error(half, expected_points(sketch, TRUE_BOX, half_motion)) < 2 * VIDEO_PX  # half the parameters about the centroid: near half the turn about the pivot
    none = follow(sketch, tracked["rotation"], strength=0.0)
    assert np.array_equal(none, np.repeat(sketch.flat_points()[None], NUM_FRAMES, axis=0))


def test_keep_in_place_drops_the_translation(tracked) -> None:
    sketch = circle_sketch()
    kept = follow(sketch, tracked["translation+pan"], follow_translation=False)
    assert np.linalg.norm(kept - sketch.flat_points(), axis=2).mean() < 0.5
    turning = follow(sketch, tracked["rotation"], rigidity="similarity", follow_translation=False)
    assert np.linalg.norm(turning[-1] - sketch.flat_points(), axis=1).max() > 20  # it still turns …
    centre = ExtentMapping.between(tracked["rotation"].box, sketch).apply(tracked["rotation"].tracks[0].mean(axis=0))
    spread = np.linalg.norm(turning - turning[0], axis=2)  # … about the subject's centre, which stays put
    nearest = np.argmin(np.linalg.norm(sketch.flat_points() - centre, axis=1))
    assert spread[:, nearest].max() < 0.25 * spread.max()


def test_user_box_chooses_the_subject() -> None:
    big = Layer(disc_mask((80.0, 80.0), 40.0), lambda t: similarity(shift=(1.0 * t, 0.0)))  # two movers whose paths stay apart
    small = Layer(disc_mask((205.0, 205.0), 30.0), lambda t: similarity(shift=(0.0, -1.0 * t)))
    frames = render_video([big, small])[SAMPLED]
    sketch = circle_sketch()

    def moved(tracks: SubjectTracks) -> np.ndarray:
        """The sketch's mean displacement at the last frame."""
        return (follow(sketch, tracks, rigidity="similarity", keep_on_canvas=False)[-1] - sketch.flat_points()).mean(axis=0)

    found = track_subject(frames)
    assert moved(found)[0] > 15 and abs(moved(found)[1]) < 1  # the bigger disc, moving right
    box = (170.0, 170.0, 240.0, 240.0)
    chosen = track_subject(frames, PreviewSettings(subject_box=box))
    assert chosen.box == box and chosen.diagnostics["box_source"] == "user"
    assert moved(chosen)[1] < -15 and abs(moved(chosen)[0]) < 1  # the smaller one, moving up


def test_subject_leaving_the_frame_keeps_its_last_motion() -> None:
    motion = lambda t: similarity(shift=(9.0 * t, 0.0))  # noqa: E731  # half out by frame 15, gone by frame 22
    tracks = track_subject(disc_video(motion, num_frames=24))
    assert sum("leaves the frame" in warning for warning in tracks.warnings) == 1 and all("\n" not in w for w in tracks.warnings)
    assert tracks.visible[-1].sum() == 0
    sketch = circle_sketch(canvas=1024)
    frames = follow(sketch, tracks)
    centre_x = frames.mean(axis=1)[:, 0]
    assert np.all(np.diff(centre_x) > 0)  # it keeps moving right, also after the subject is gone
    expected = expected_points(sketch, TRUE_BOX, motion, source_frames=range(24))
    seen = tracks.visible.mean(axis=1) > 0.5
    assert seen.sum() >= 12
    assert mean_error(frames[seen], expected[seen]) < 2 * VIDEO_PX * ExtentMapping.between(TRUE_BOX, sketch).scale
    assert np.linalg.norm(frames[-1] - expected[-1], axis=1).mean() < 0.1 * np.linalg.norm(expected[-1] - expected[0], axis=1).mean()


def test_one_stroke_sketch_follows(tracked) -> None:
    sketch = Sketch([Stroke(np.array([[100.0, 100.0], [120.0, 90.0], [140.0, 110.0], [160.0, 100.0]]))])
    frames = follow(sketch, tracked["rotation"])
    assert mean_error(frames, expected_points(sketch, TRUE_BOX, MOTIONS["rotation"])) < VIDEO_PX * ExtentMapping.between(TRUE_BOX, sketch).scale + 0.5


def test_pinned_strokes_stay_in_the_preview(tracked) -> None:
    sketch = circle_sketch()
    ground = Stroke(np.array([[10.0, 240.0], [90.0, 240.0], [170.0, 240.0], [250.0, 240.0]]), pinned=True)
    with_ground = Sketch([*sketch.paths, ground])
    frames = follow(with_ground, tracked["translation"])
    np.testing.assert_array_equal(frames[:, -4:], np.repeat(ground.points[None], NUM_FRAMES, axis=0))
    np.testing.assert_allclose(frames[:, :-4], follow(sketch, tracked["translation"]), atol=1e-9)  # the line widens nothing


# ------------------------------------------------------------------------ whole preview, files
def test_preview_from_a_large_video_with_substeps(tmp_path) -> None:
    """A 512² mp4 is decoded at 256 by ffmpeg and tracked with substeps."""
    dense = 2 * (NUM_FRAMES - 1) + 1  # the video has exactly the frames the substeps read
    half_speed = lambda t: similarity(shift=(0.75 * t, -0.375 * t))  # noqa: E731
    video = write_mp4(tmp_path / "big.mp4", disc_video(half_speed, num_frames=dense, scale=2))
    sketch = traced_disc(1.0)
    result = preview_motion(sketch, VideoSpec(str(video), num_frames=NUM_FRAMES))
    assert result.clip.frames.shape == (NUM_FRAMES, SIZE, SIZE, 3)
    assert result.clip.source_indices.tolist() == list(range(0, dense, 2))
    assert result.tracks.diagnostics["flow_steps"] == dense - 1
    assert result.sketch.num_frames == NUM_FRAMES and not result.warnings
    expected = expected_points(sketch, TRUE_BOX, lambda t: similarity(shift=(0.75 * t, -0.375 * t)), source_frames=range(0, dense, 2))
    assert mean_error(result.frames, expected) < VIDEO_PX


def test_an_8000_pixel_video_is_streamed_and_downscaled_before_tracking(tmp_path) -> None:
    import imageio_ffmpeg

    video = tmp_path / "huge.mp4"
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=8000x8000:rate=8",
               "-frames:v", "3", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(video)]  # fmt: skip
    subprocess.run(command, check=True, timeout=300)
    tracemalloc.start()
    try:
        result = preview_motion(circle_sketch(), VideoSpec(str(video), num_frames=3))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.clip.frames.shape == (3, SIZE, SIZE, 3) and result.tracks.frame_size == (SIZE, SIZE)
    assert peak < 8000 * 8000 * 3 / 4, f"peak {peak / 1e6:.0f} MB: a full 8000² frame reached Python"


def test_static_mp4_gives_a_still_result_and_says_so(tmp_path) -> None:
    video = write_mp4(tmp_path / "still.mp4", disc_video(still, num_frames=8))
    log = EventLog(tmp_path / "events.jsonl")
    result = preview_motion(circle_sketch(), VideoSpec(str(video), num_frames=8), events=log)
    assert np.abs(result.frames - circle_sketch().flat_points()).max() < STILL_PX
    events = [event for event in read_events(log.path)[0] if event["kind"] != "progress"]
    assert [event["kind"] for event in events] == ["stage_start", "warning", "stage_end"]
    assert "no subject motion" in events[1]["message"] and events[2]["ok"]


def test_single_frame_video(tmp_path) -> None:
    folder = tmp_path / "one"
    folder.mkdir()
    iio.imwrite(folder / "frame0.png", disc_video(still, num_frames=1)[0])
    result = preview_motion(circle_sketch(), VideoSpec(str(folder), num_frames=8))
    assert result.frames.shape == (8, circle_sketch().num_points, 2)
    assert np.array_equal(result.frames, np.repeat(circle_sketch().flat_points()[None], 8, axis=0))
    assert any("single frame" in warning for warning in result.warnings)
    wording = [warning.replace(str(folder), "FOLDER") for warning in result.warnings]  # the folder's path may hold any digits (pytest-31)
    assert not any("31" in warning or "15 requested" in warning for warning in wording)  # worded for 8 frames
    tracks = track_subject(disc_video(still, num_frames=1))
    assert tracks.num_frames == 1 and "single frame" in tracks.warnings[0]


def preview_args(tmp_path: Path, video: Path, *extra: str) -> argparse.Namespace:
    sketch_path = tmp_path / "sketch.json"
    circle_sketch().save_json(sketch_path)
    parser = argparse.ArgumentParser()
    add_preview_command(parser.add_subparsers(dest="command"))
    return parser.parse_args(["preview", "--sketch", str(sketch_path), "--video", str(video), "--out", str(tmp_path / "out"), *extra])


def test_command_writes_the_stage3_result_format(tmp_path, capsys) -> None:
    video = write_mp4(tmp_path / "moving.mp4", disc_video(MOTIONS["translation"], num_frames=15), fps=8)
    args = preview_args(tmp_path, video, "--frames", "8", "--rigidity", "partwise", "--strength", "1.0", "--smoothing", "0.5", "--box", "60", "80", "160", "176")
    args.handler(args)
    assert "wrote" in capsys.readouterr().out
    animated = read_result(tmp_path / "out")
    assert animated.num_frames == 8
    assert animated.metadata["kind"] == "preview" and animated.metadata["translation_kept"] == 1.0
    assert animated.metadata["preview"]["rigidity"] == "partwise" and animated.metadata["preview"]["subject_box"] == [60, 80, 160, 176]
    for name in ("animation.gif", "animation.mp4", "side_by_side.gif", "side_by_side.mp4", "frames/frame_0007.svg"):
        assert (tmp_path / "out" / name).is_file(), name
    assert animated.frames[-1].mean(axis=0)[0] > animated.frames[0].mean(axis=0)[0] + 10  # moved right
    manifest = json.loads((tmp_path / "out" / "result_manifest.json").read_text())
    assert manifest["num_frames"] == 8 and manifest["previews"] == "written" and "animation.gif" in manifest["files"]


def test_the_command_runs_without_torch_and_warns_in_one_line(tmp_path) -> None:
    """`python -m engine preview` in a fresh process: torch is never imported, and every warning
    (here the SVG importer's, and the no-motion one) is one `warning: …` line, no code."""
    video = write_mp4(tmp_path / "still.mp4", disc_video(still, num_frames=6))
    svg = tmp_path / "filled.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><rect x="10" y="10" width="50" height="40" fill="red"/></svg>')
    runner = (
        "import sys; from engine.cli import main; code = main(sys.argv[1:]); "
        "print('torch imported' if 'torch' in sys.modules else 'no torch'); sys.exit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", runner, "preview", "--sketch", str(svg), "--video", str(video), "--out", str(tmp_path / "out"), "--frames", "4"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("no torch"), done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) >= 2 and all(line.startswith("warning: ") for line in lines), done.stderr
    assert any("outline" in line for line in lines) and any("no subject motion" in line for line in lines)


def test_every_option_has_help() -> None:
    parser = argparse.ArgumentParser()
    preview = add_preview_command(parser.add_subparsers(dest="command"))
    for action in preview._actions:
        assert action.help, action.dest


# ---------------------------------------------------------------------------- bad settings
@pytest.mark.parametrize(
    "settings, words",
    [
        (dict(rigidity="wobbly"), "unknown rigidity"),
        (dict(strength=-1), "strength"),
        (dict(temporal_smoothing=float("nan")), "temporal smoothing"),
        (dict(subject_box=(10, 10, 5, 20)), "subject box"),
        (dict(subject_box=(1, 2, 3)), "four numbers"),
        (dict(flow="lucas"), "flow method"),
        (dict(num_frames=0), "num_frames"),
    ],
)
def test_bad_settings_are_one_line_errors(settings, words) -> None:
    with pytest.raises(PreviewError, match=words) as error:
        PreviewSettings(**settings)
    assert "\n" not in str(error.value)


def test_bad_frames_times_and_a_box_outside_the_frame() -> None:
    with pytest.raises(PreviewError, match="uint8"):
        track_subject(np.zeros((4, 64, 64, 3), np.float32))
    with pytest.raises(PreviewError, match="outside"):
        track_subject(np.zeros((2, 64, 64, 3), np.uint8), PreviewSettings(subject_box=(100, 100, 120, 120)))
    with pytest.raises(PreviewError, match="increasing"):
        track_subject(np.zeros((3, 64, 64, 3), np.uint8), times_s=[0.0, 0.2, 0.1])


def test_settings_round_trip_match_the_video_and_read_earlier_flows() -> None:
    settings = PreviewSettings(rigidity="partwise", subject_box=(10, 20, 110, 120), follow_translation=False, keep_on_canvas=False)
    assert PreviewSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings
    with pytest.raises(PreviewError, match="unknown preview setting 'speed'"):
        PreviewSettings.from_dict({"speed": 2})
    matched = settings.matching(VideoSpec("clip.mp4", num_frames=8, size=128))
    assert (matched.num_frames, matched.size, matched.subject_box) == (8, 128, (5.0, 10.0, 55.0, 60.0))
    assert PreviewSettings.from_dict({"flow": "dis"}).flow == PreviewSettings.from_dict({"flow": "farneback"}).flow == "lk"
