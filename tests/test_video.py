"""Reference video input: every container reads the same frames, sampling is exact, bad input is one line."""

from __future__ import annotations

import tracemalloc
import wave
from pathlib import Path

import imageio.v2 as imageio_v2
import imageio.v3 as iio
import numpy as np
import pytest

from engine.media import reference as video
from engine.media.reference import ReferenceClip, VideoError, VideoSpec, load_reference_frames, sample_indices, save_preview_strip, video_content_hash

NUM_SOURCE = 40
HEIGHT, WIDTH = 64, 96
FPS = 10
BAND_ROWS = 16  # the top rows carry a grey level that identifies the frame: 40 + 5·index
CROP_LEFT = (WIDTH - HEIGHT) // 2
EVERY_16_OF_40 = [0, 3, 5, 8, 10, 13, 16, 18, 21, 23, 26, 29, 31, 34, 36, 39]


def moving_disc(num_frames: int = NUM_SOURCE, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """White frames, a red disc moving right, and a grey band whose level encodes the frame index."""
    frames = np.full((num_frames, height, width, 3), 255, dtype=np.uint8)
    rows, cols = np.mgrid[:height, :width]
    for index in range(num_frames):
        frames[index, :BAND_ROWS] = 40 + 5 * (index % 40)
        centre_x = 15 + index * (width - 30) / max(1, num_frames - 1)
        frames[index][(rows - 40 * height / 64) ** 2 + (cols - centre_x) ** 2 < 100] = (220, 30, 30)
    return frames


def write_video(path: Path, frames: np.ndarray, codec: str, params: list[str], pixelformat: str = "yuv420p") -> Path:
    with imageio_v2.get_writer(
        path, format="FFMPEG", mode="I", fps=FPS, codec=codec, pixelformat=pixelformat,
        macro_block_size=1, ffmpeg_log_level="error", output_params=params,
    ) as writer:  # fmt: skip
        for frame in frames:
            writer.append_data(frame)
    return path


def write_folder(folder: Path, frames: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames):  # unpadded numbers: frame2 must sort before frame10
        iio.imwrite(folder / f"frame{index}.png", frame)
    return folder


def band_indices(clip: ReferenceClip) -> list[int]:
    """Which source frame each output frame shows, read back from its grey band."""
    size = clip.frames.shape[1]
    band = clip.frames[:, size // 32 : size * 3 // 16].reshape(len(clip.frames), -1, 3).mean(axis=1).mean(axis=1)
    return [int(round((level - 40) / 5)) for level in band]


LOSSY = {
    "mp4": ("libx264", ["-crf", "8", "-preset", "ultrafast"], "yuv420p"),
    "mov": ("libx264", ["-crf", "8", "-preset", "ultrafast"], "yuv420p"),
    "webm": ("libvpx-vp9", ["-crf", "8", "-b:v", "0", "-deadline", "realtime", "-cpu-used", "8"], "yuv420p"),
    "avi": ("mjpeg", ["-q:v", "2"], "yuvj444p"),
}


@pytest.fixture(scope="module")
def source() -> np.ndarray:
    return moving_disc()


@pytest.fixture(scope="module")
def clips(tmp_path_factory, source) -> dict[str, Path | None]:
    root = tmp_path_factory.mktemp("clips")
    made: dict[str, Path | None] = {"folder": write_folder(root / "frames", source)}
    for suffix, (codec, params, pixelformat) in LOSSY.items():
        try:
            made[suffix] = write_video(root / f"disc.{suffix}", source, codec, params, pixelformat)
        except Exception:  # an encoder missing from this ffmpeg build
            made[suffix] = None
    iio.imwrite(root / "disc.gif", source, duration=1000 // FPS, loop=0)
    made["gif"] = root / "disc.gif"
    return made


def load(path: Path, **settings) -> ReferenceClip:
    return load_reference_frames(VideoSpec(str(path), **settings))


# --------------------------------------------------------------------------- sampling and geometry


def test_sample_indices_formula() -> None:
    assert sample_indices(0, 39, 16).tolist() == EVERY_16_OF_40
    assert sample_indices(0, 15, 16).tolist() == list(range(16))
    assert sample_indices(10, 19, 4).tolist() == [10, 13, 16, 19]
    assert sample_indices(0, 3, 8).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]  # halves round up
    assert sample_indices(7, 7, 5).tolist() == [7] * 5
    assert sample_indices(3, 9, 1).tolist() == [3]


def test_folder_sorts_numerically_and_crops_the_centre_exactly(clips, source) -> None:
    clip = load(clips["folder"], size=HEIGHT)
    assert clip.frames.shape == (16, HEIGHT, HEIGHT, 3) and clip.frames.dtype == np.uint8
    assert clip.source_indices.tolist() == EVERY_16_OF_40
    assert np.array_equal(clip.frames, source[EVERY_16_OF_40][:, :, CROP_LEFT : CROP_LEFT + HEIGHT])
    assert clip.source_frame_count == NUM_SOURCE and clip.warnings == []


def test_pad_adds_white_bars(clips, source) -> None:
    clip = load(clips["folder"], size=WIDTH, fit="pad")
    top = (WIDTH - HEIGHT) // 2
    assert np.all(clip.frames[:, :top] == 255) and np.all(clip.frames[:, top + HEIGHT :] == 255)
    assert np.array_equal(clip.frames[:, top : top + HEIGHT], source[EVERY_16_OF_40])


@pytest.mark.parametrize("container", ["mp4", "mov", "webm", "avi", "gif"])
def test_every_container_reads_the_same_frames(clips, container) -> None:
    if clips[container] is None:
        pytest.skip(f"the bundled ffmpeg cannot encode {LOSSY[container][0]}")
    reference = load(clips["folder"])
    clip = load(clips[container])
    assert clip.frames.shape == (16, 256, 256, 3)
    assert clip.source_indices.tolist() == EVERY_16_OF_40
    assert band_indices(clip) == EVERY_16_OF_40
    assert clip.fps == pytest.approx(FPS) and clip.duration_s == pytest.approx(NUM_SOURCE / FPS)
    assert np.abs(clip.frames.astype(float) - reference.frames).mean() < 6


def test_start_and_end_trim_the_clip(clips) -> None:
    clip = load(clips["mp4"], num_frames=4, start_s=1.0, end_s=2.0)  # frames 10..19 at 10 fps
    assert clip.source_indices.tolist() == [10, 13, 16, 19]
    assert band_indices(clip) == [10, 13, 16, 19]
    assert load(clips["folder"], num_frames=2, start_s=0.5).source_indices.tolist() == [12, 39]  # 24 fps for folders
    assert load(clips["gif"], num_frames=3, end_s=1.0).source_indices.tolist() == [0, 5, 9]


def test_end_past_the_clip_is_clamped_with_a_warning(clips) -> None:
    clip = load(clips["gif"], num_frames=2, start_s=3.0, end_s=60.0)
    assert clip.source_indices.tolist() == [30, 39]
    assert any("past the end" in warning for warning in clip.warnings)


def test_fewer_frames_than_requested_repeat_with_a_warning(tmp_path, source) -> None:
    clip = load(write_folder(tmp_path / "five", source[:5]), num_frames=16, size=32)
    assert clip.source_indices.tolist() == sample_indices(0, 4, 16).tolist()
    assert sorted(set(clip.source_indices.tolist())) == [0, 1, 2, 3, 4]
    assert np.array_equal(clip.frames[0], clip.frames[1])
    assert len(clip.warnings) == 1 and "repeat" in clip.warnings[0] and "only 5 frames" in clip.warnings[0]


def test_a_single_frame_gives_identical_frames_with_a_warning(tmp_path, source) -> None:
    iio.imwrite(tmp_path / "still.gif", source[:1])
    clip = load(tmp_path / "still.gif", num_frames=16, size=32)
    assert clip.frames.shape == (16, 32, 32, 3)
    assert all(np.array_equal(frame, clip.frames[0]) for frame in clip.frames)
    assert "single frame" in clip.warnings[0]


def test_long_videos_are_streamed_and_fitted_by_the_decoder(tmp_path, monkeypatch) -> None:
    frames = np.repeat(moving_disc(40, 128, 128), 15, axis=0)  # 600 frames, 29 MB decoded
    path = write_video(tmp_path / "long.avi", frames, "mjpeg", ["-q:v", "5"], "yuvj444p")
    in_python = {index: video.fit_frame(frame, (64, 64)) for index, frame in video.open_source(path).read([0, 599])}
    monkeypatch.setattr(video, "fit_frame", lambda *args: pytest.fail("a full-size frame reached Python"))
    tracemalloc.start()
    try:
        clip = load(path, num_frames=16, size=64)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert clip.source_indices[-1] == 599 and clip.frames.shape == (16, 64, 64, 3)
    assert peak < frames.nbytes / 8, f"peak {peak / 1e6:.1f} MB: frames were not streamed"
    for k, index in ((0, 0), (-1, 599)):  # ffmpeg's crop and Lanczos resize give the same picture as ours
        assert np.abs(clip.frames[k].astype(int) - in_python[index]).mean() < 1.5


# --------------------------------------------------------------------------- outputs


def test_preview_strip_puts_frames_side_by_side(clips, tmp_path) -> None:
    clip = load(clips["folder"], num_frames=4, size=32)
    path = save_preview_strip(clip.frames, tmp_path / "job" / "reference_strip.png")
    strip = iio.imread(path)
    assert strip.shape == (32, 4 * 32, 3)
    assert np.array_equal(strip, np.concatenate(list(clip.frames), axis=1))


def test_content_hash_follows_bytes_not_names(clips, tmp_path) -> None:
    copy = tmp_path / "renamed.mp4"
    copy.write_bytes(clips["mp4"].read_bytes())
    assert video_content_hash(copy) == video_content_hash(clips["mp4"])
    copy.write_bytes(copy.read_bytes() + b"\0")
    assert video_content_hash(copy) != video_content_hash(clips["mp4"])
    folder_hash = video_content_hash(clips["folder"])
    assert len(folder_hash) == 64 and folder_hash != video_content_hash(clips["mp4"])


def test_spec_round_trips_and_keys_on_content(clips) -> None:
    spec = VideoSpec(str(clips["mp4"]), num_frames=8, start_s=0.5, fit="pad")
    assert VideoSpec.from_dict(spec.to_dict()) == spec
    parts = spec.cache_parts()
    assert "path" not in parts and parts["content_sha256"] == video_content_hash(clips["mp4"])
    with pytest.raises(VideoError, match="unknown video setting 'fps'"):
        VideoSpec.from_dict({**spec.to_dict(), "fps": 3})


# --------------------------------------------------------------------------- bad input


def silent_wav(path: Path) -> Path:
    with wave.open(str(path), "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes(b"\0\0" * 4000)
    return path


def bad_input(kind: str, folder: Path, clips: dict, source: np.ndarray) -> Path:
    if kind == "missing":
        return folder / "nowhere.mp4"
    if kind == "random bytes":
        (folder / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
        return folder / "noise.mp4"
    if kind == "truncated":
        data = clips["mp4"].read_bytes()
        (folder / "half.mp4").write_bytes(data[: len(data) // 2])
        return folder / "half.mp4"
    if kind == "zero length":
        (folder / "empty.mov").write_bytes(b"")
        return folder / "empty.mov"
    if kind == "audio only":
        return silent_wav(folder / "sound.mp4")
    if kind == "audio file":
        return silent_wav(folder / "sound.wav")
    if kind == "unknown extension":
        (folder / "clip.xyz").write_bytes(b"data")
        return folder / "clip.xyz"
    if kind == "empty folder":
        (folder / "nothing").mkdir()
        (folder / "nothing" / "notes.txt").write_text("no frames here")
        return folder / "nothing"
    if kind == "mixed sizes":
        frames = write_folder(folder / "mixed", source[:3])
        iio.imwrite(frames / "frame10.png", source[0, :32, :48])
        return frames
    if kind == "corrupt image":
        frames = write_folder(folder / "broken", source[:3])
        (frames / "frame1.png").write_bytes(b"\x89PNG not really")
        return frames
    if kind == "corrupt gif":
        (folder / "broken.gif").write_bytes(b"GIF89a" + np.random.default_rng(1).bytes(300))
        return folder / "broken.gif"
    raise AssertionError(kind)


BAD_INPUTS = {
    "missing": "not found",
    "random bytes": "corrupt",
    "truncated": "truncated",
    "zero length": "empty (0 bytes)",
    "audio only": "no video stream",
    "audio file": "audio file",
    "unknown extension": "unsupported video format '.xyz'",
    "empty folder": "contains no images",
    "mixed sizes": "48×32",
    "corrupt image": "frame1.png",
    "corrupt gif": "corrupt",
}


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_input_is_one_line_naming_the_file(kind, tmp_path, clips, source) -> None:
    path = bad_input(kind, tmp_path, clips, source)
    with pytest.raises(VideoError) as caught:
        load(path)
    message = str(caught.value)
    assert BAD_INPUTS[kind] in message
    assert path.name in message and "\n" not in message
    error = caught.value  # raised `from None`: no ffmpeg or Pillow traceback is chained to it
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


def test_mixed_sizes_names_both_files(tmp_path, clips, source) -> None:
    with pytest.raises(VideoError, match=r"frame10\.png is 48×32 but .*frame0\.png is 96×64"):
        load(bad_input("mixed sizes", tmp_path, clips, source))


@pytest.mark.parametrize(
    "settings, expected",
    [
        ({"start_s": 2.0, "end_s": 1.0}, "must be before end time"),
        ({"start_s": 1.0, "end_s": 1.0}, "must be before end time"),
        ({"start_s": -1.0}, "≥ 0"),
        ({"num_frames": 0}, "positive whole number"),
        ({"fit": "stretch"}, "use 'crop' or 'pad'"),
    ],
)
def test_bad_settings_are_refused(clips, settings, expected) -> None:
    with pytest.raises(VideoError, match=expected):
        VideoSpec(str(clips["mp4"]), **settings)


def test_start_after_the_end_of_the_clip_is_refused(clips) -> None:
    with pytest.raises(VideoError, match=r"start time 4\.0 s is at or after the end of .*disc\.mp4 \(4\.00 s long\)"):
        load(clips["mp4"], start_s=4.0)


def test_decoding_stops_after_the_last_chosen_frame(clips, monkeypatch) -> None:
    import imageio_ffmpeg

    pulled = []
    original_read = imageio_ffmpeg.read_frames

    def counting_read(*args, **kwargs):
        for item in original_read(*args, **kwargs):
            pulled.append(item)
            yield item

    monkeypatch.setattr(imageio_ffmpeg, "read_frames", counting_read)
    pulled.clear()
    load(clips["mp4"], num_frames=4, end_s=1.0)  # frames 0..9 of 40
    assert len(pulled) <= 1 + 1 + 10  # the header probe, the reader's header, then frames 0..9
