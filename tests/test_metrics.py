"""The paper's metrics: hand-computed arithmetic, and the full path on tiny random CLIP / X-CLIP models.

The tiny models have real classes and configs (a few channels wide, 32 px images, 8 X-CLIP
frames) and are saved with `save_pretrained`, so they load through `load_metric_models`
exactly like the hub's models, from a folder or from a Hugging Face cache by hub id.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.cli import add_metrics_commands
from engine.job import outputs
from engine.job.results import MANIFEST, MANIFEST_SCHEMA
from engine.metrics import (
    DEFAULT_CLIP,
    DEFAULT_XCLIP,
    MetricModelError,
    MetricsError,
    appearance_alignment,
    clip_image_embeddings,
    download_command,
    evaluate_result,
    load_metric_models,
    motion_alignment,
    render_square,
    score_animation,
    select_metric_files,
    temporal_consistency,
    uniform_frame_indices,
)
from engine.vector.sketch import Path as Stroke
from engine.vector.sketch import Sketch

TINY_SIDE = 32
TINY_FRAMES = 8
PROMPT = "A square is sliding right."


# ------------------------------------------------------------------ tiny models
def tiny_text_and_vision(vocab: dict[str, int]) -> tuple[dict, dict]:
    special = dict(bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"])
    text = dict(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=77, **special)
    vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=TINY_SIDE, patch_size=16)
    return text, vision


def save_tiny_clip_models(root: Path) -> tuple[Path, Path]:
    """Random CLIP and X-CLIP with their processors, each in a hub-layout folder."""
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor, CLIPTokenizer, XCLIPConfig, XCLIPModel, XCLIPProcessor
    from transformers.utils import logging

    from engine.backbones.tiny import write_tiny_tokenizer

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    write_tiny_tokenizer(root / "tokenizer")
    vocab = json.loads((root / "tokenizer" / "vocab.json").read_text(encoding="utf-8"))
    tokenizer = CLIPTokenizer.from_pretrained(root / "tokenizer")
    images = image_processor()
    text, vision = tiny_text_and_vision(vocab)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        clip = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16))
        torch.manual_seed(1)
        xclip_vision = dict(vision, num_frames=TINY_FRAMES, mit_hidden_size=16, mit_intermediate_size=32, mit_num_hidden_layers=1, mit_num_attention_heads=2)
        xclip = XCLIPModel(XCLIPConfig(text_config=text, vision_config=xclip_vision, projection_dim=16, prompt_layers=1, prompt_num_attention_heads=2))
    clip.save_pretrained(root / "clip")
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(root / "clip")
    xclip.save_pretrained(root / "xclip")
    XCLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(root / "xclip")
    return root / "clip", root / "xclip"


def image_processor():
    """CLIP's preprocessing at 32 px (the PIL backend where torchvision is absent)."""
    import transformers

    kind = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    return kind(size={"shortest_edge": TINY_SIDE}, crop_size={"height": TINY_SIDE, "width": TINY_SIDE})


@pytest.fixture(scope="module")
def tiny_metric_dirs(tmp_path_factory) -> tuple[Path, Path]:
    return save_tiny_clip_models(tmp_path_factory.mktemp("metric-models"))


@pytest.fixture(scope="module")
def tiny_models(tiny_metric_dirs):
    clip_dir, xclip_dir = tiny_metric_dirs
    return load_metric_models(clip_dir, xclip_dir, device="cpu")


# -------------------------------------------------------------------- animations
def square_sketch(metadata: dict | None = None) -> Sketch:
    """A thick closed square, 80 px wide, on a 256² canvas."""
    corners = np.array([[40.0, 90.0], [120.0, 90.0], [120.0, 170.0], [40.0, 170.0], [40.0, 90.0]])
    points = [corners[0]]
    for start, end in zip(corners[:-1], corners[1:]):
        points += [start + (end - start) / 3, start + 2 * (end - start) / 3, end]
    return Sketch(paths=[Stroke(points=np.array(points), closed=True, half_width=8.0)], metadata=dict(metadata or {}))


def still_animation(num_frames: int = 4, **metadata) -> Sketch:
    sketch = square_sketch(metadata)
    return sketch.with_frames(np.repeat(sketch.flat_points()[None], num_frames, axis=0))


def sliding_animation(num_frames: int = 6, **metadata) -> Sketch:
    sketch = square_sketch(metadata)
    shifts = np.stack([np.array([12.0 + 24.0 * f, 0.0]) for f in range(num_frames)])  # frame 0 already differs from the sketch
    return sketch.with_frames(sketch.flat_points()[None] + shifts[:, None, :])


def write_result(job: Path, animation: Sketch) -> Path:
    """A finished result folder `job/result` holding the animation, written by the engine's own result writer."""
    still = animation.with_points(animation.flat_points())
    return outputs.write_result(job / "result", still, animation.frames, metadata=animation.metadata).out_dir


# ---------------------------------------------------------------- the arithmetic
def test_appearance_alignment_is_the_mean_cosine_to_the_sketch() -> None:
    frames = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    # cosines with [1, 0]: 1, 0 and 1/√2
    expected = (1.0 + 0.0 + 1.0 / math.sqrt(2.0)) / 3.0
    assert appearance_alignment(np.array(frames), np.array([1.0, 0.0])) == pytest.approx(expected, abs=1e-12)
    assert appearance_alignment(torch.tensor(frames), torch.tensor([2.0, 0.0])) == pytest.approx(expected, abs=1e-7)


def test_temporal_consistency_is_the_mean_cosine_of_consecutive_frames() -> None:
    # pairs ([1,0],[0,1]) → 0 and ([0,1],[1,1]) → 1/√2; the non-adjacent pair does not count
    expected = (0.0 + 1.0 / math.sqrt(2.0)) / 2.0
    assert temporal_consistency(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])) == pytest.approx(expected, abs=1e-12)
    assert temporal_consistency(np.array([[1.0, 0.0], [-1.0, 0.0]])) == -1.0


def test_identical_embeddings_score_exactly_one() -> None:
    row = torch.randn(512, generator=torch.Generator().manual_seed(3))
    assert temporal_consistency(row.repeat(16, 1)) == 1.0
    assert appearance_alignment(row.repeat(5, 1), row) == 1.0


def test_temporal_consistency_refuses_a_single_frame() -> None:
    with pytest.raises(MetricsError, match="at least 2 frames"):
        temporal_consistency(np.ones((1, 4)))


def test_motion_alignment_is_the_cosine_of_video_and_text() -> None:
    assert motion_alignment(np.array([3.0, 4.0]), np.array([4.0, 3.0])) == pytest.approx(24.0 / 25.0, abs=1e-12)
    assert motion_alignment(torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 5.0, 0.0])) == 0.0
    with pytest.raises(MetricsError, match="all zeros"):
        motion_alignment(np.zeros(3), np.ones(3))


def test_xclip_frames_are_sampled_uniformly_with_both_ends() -> None:
    assert uniform_frame_indices(16, 8) == [0, 2, 4, 6, 9, 11, 13, 15]
    assert uniform_frame_indices(8, 8) == list(range(8))
    assert uniform_frame_indices(4, 8) == [0, 0, 1, 1, 2, 2, 3, 3]


def test_download_selects_configs_tokenizer_and_one_weights_file() -> None:
    repo = ["README.md", ".gitattributes", "config.json", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json",
            "vocab.json", "merges.txt", "special_tokens_map.json", "pytorch_model.bin", "model.safetensors", "tf_model.h5", "flax_model.msgpack"]  # fmt: skip
    chosen = select_metric_files(repo)
    assert "model.safetensors" in chosen and "config.json" in chosen and "preprocessor_config.json" in chosen
    assert not {"pytorch_model.bin", "tf_model.h5", "flax_model.msgpack", "README.md"} & set(chosen)
    assert select_metric_files(["config.json", "pytorch_model.bin", "tf_model.h5"]) == ["config.json", "pytorch_model.bin"]
    sharded = select_metric_files(["config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"])
    assert sharded == ["config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]


def test_render_square_pads_a_wide_canvas_with_white() -> None:
    wide = Sketch(paths=[Stroke(points=[[10, 60], [100, 60], [200, 60], [500, 60]], half_width=20.0)], width=512, height=128)
    image = render_square(wide, 32)
    assert image.shape == (1, 32, 32, 3)
    assert (image[0, :12] == 255).all() and (image[0, -12:] == 255).all()  # the 32×8 drawing sits in the middle
    assert image[0, 12:20].min() < 128


# --------------------------------------------------------- the full path, tiny models
def test_still_animation_scores_exactly_one(tiny_metric_dirs, tmp_path) -> None:
    clip_dir, xclip_dir = tiny_metric_dirs
    folder = write_result(tmp_path / "still", still_animation(4, motion_prompt=PROMPT))
    report = evaluate_result(folder, clip=clip_dir, xclip=xclip_dir, device="cpu")
    assert report["metrics"]["temporal_consistency"] == 1.0
    assert report["metrics"]["appearance_alignment"] == 1.0  # every frame is the sketch itself
    assert -1.0 <= report["metrics"]["motion_alignment"] <= 1.0
    assert report["motion_prompt"] == PROMPT and report["num_frames"] == 4
    assert report["xclip_frame_indices"] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert json.loads((folder / "metrics.json").read_text(encoding="utf-8")) == report
    table = (folder / "metrics.txt").read_text(encoding="utf-8")
    assert "temporal consistency" in table and "1.000" in table


def test_moving_animation_scores_and_matches_xclip_itself(tiny_models) -> None:
    from engine.vector.draw import render_sketch_frames

    animation = sliding_animation(12)
    report = score_animation(tiny_models, animation, PROMPT)
    metrics = report["metrics"]
    assert metrics["temporal_consistency"] < 1.0
    assert metrics["appearance_alignment"] < 1.0
    assert -1.0 <= metrics["motion_alignment"] <= 1.0

    # The X-CLIP score recomputed from the model's own logits: cosine = logits_per_video / temperature.
    frames = render_sketch_frames(animation, size=TINY_SIDE)[report["xclip_frame_indices"]]
    model = tiny_models.xclip
    pixels = tiny_models.xclip_image_processor(images=list(frames), return_tensors="pt")["pixel_values"][None]
    text = tiny_models.xclip_tokenizer([PROMPT], return_tensors="pt")
    with torch.no_grad():
        output = model(input_ids=text["input_ids"], attention_mask=text["attention_mask"], pixel_values=pixels)
    cosine = (output.logits_per_video / model.logit_scale.exp()).item()
    assert metrics["motion_alignment"] == pytest.approx(cosine, abs=1e-5)

    # And the CLIP metrics recomputed from plain batched embeddings of the rendered images.
    sketch_image = render_sketch_frames(animation.with_points(animation.flat_points()), size=TINY_SIDE)
    images = np.concatenate([sketch_image, render_sketch_frames(animation, size=TINY_SIDE)])
    pixels = tiny_models.clip_image_processor(images=list(images), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        features = tiny_models.clip.get_image_features(pixel_values=pixels)
    embeddings = features if isinstance(features, torch.Tensor) else features.pooler_output
    unit = torch.nn.functional.normalize(embeddings.double(), dim=-1)
    assert metrics["appearance_alignment"] == pytest.approx((unit[1:] @ unit[0]).mean().item(), abs=1e-5)
    assert metrics["temporal_consistency"] == pytest.approx((unit[1:-1] * unit[2:]).sum(-1).mean().item(), abs=1e-5)


def test_each_distinct_image_is_embedded_once(tiny_models, monkeypatch) -> None:
    """Identical images share one embedding, bit for bit, whatever their place in a batch."""
    seen = []
    embed = tiny_models.clip.get_image_features
    monkeypatch.setattr(tiny_models.clip, "get_image_features", lambda pixel_values: seen.append(len(pixel_values)) or embed(pixel_values=pixel_values))
    images = render_square(sliding_animation(3), TINY_SIDE)
    embeddings = clip_image_embeddings(tiny_models, images[[0, 1, 0, 2, 1]])
    assert seen == [3]
    assert torch.equal(embeddings[0], embeddings[2]) and torch.equal(embeddings[1], embeddings[4])
    assert not torch.equal(embeddings[0], embeddings[1])


def test_models_load_by_hub_id_from_a_hugging_face_cache(tiny_metric_dirs, tmp_path) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    for name, folder in zip(("clip", "xclip"), tiny_metric_dirs):
        repo = tmp_path / f"models--tiny--{name}"
        shutil.copytree(folder, repo / "snapshots" / commit)
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text(commit)
    models = load_metric_models("tiny/clip", "tiny/xclip", device="cpu", cache_dir=str(tmp_path))
    assert models.xclip_num_frames == TINY_FRAMES and models.clip_image_size == TINY_SIDE
    report = score_animation(models, sliding_animation(3), PROMPT)
    assert set(report["metrics"]) == {"appearance_alignment", "motion_alignment", "temporal_consistency"}


def test_cli_evaluate_prints_the_table_and_writes_json(tiny_metric_dirs, tmp_path, capsys) -> None:
    parser = argparse.ArgumentParser()
    add_metrics_commands(parser.add_subparsers(dest="command", required=True))
    folder = write_result(tmp_path / "job", sliding_animation(5, motion_prompt="recorded"))
    (folder.parent / "job.json").write_text(json.dumps({"motion_prompt": "from the job"}))
    clip_dir, xclip_dir = tiny_metric_dirs
    args = parser.parse_args(["evaluate", str(folder), "--motion", "A square slides.", "--clip", str(clip_dir), "--xclip", str(xclip_dir), "--device", "cpu"])
    args.handler(args)
    printed = capsys.readouterr().out
    assert "appearance alignment" in printed and "motion alignment" in printed and "metrics.json" in printed
    assert json.loads((folder / "metrics.json").read_text())["motion_prompt"] == "A square slides."

    defaults = parser.parse_args(["download-metrics"])
    assert (defaults.clip, defaults.xclip) == (DEFAULT_CLIP, DEFAULT_XCLIP)


def test_prompt_falls_back_to_the_job_json_of_the_job_folder(tiny_models, tmp_path) -> None:
    folder = write_result(tmp_path / "job", still_animation(2))
    (folder / "job.json").write_text(json.dumps({"motion_prompt": "not the job's: inside result/"}))
    (folder.parent / "job.json").write_text(json.dumps({"motion_prompt": "A square waits."}))
    assert evaluate_result(folder, models=tiny_models)["motion_prompt"] == "A square waits."


# ------------------------------------------------------------------------ errors
def assert_one_line(error: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_missing_model_names_the_download_command(tmp_path) -> None:
    with pytest.raises(MetricModelError) as error:
        load_metric_models("nobody/missing-clip", DEFAULT_XCLIP, device="cpu", cache_dir=str(tmp_path))
    assert_one_line(error, "not downloaded", f"`python -m engine download-metrics --clip nobody/missing-clip --cache-dir {tmp_path}`")
    assert download_command("xclip", DEFAULT_XCLIP) == "python -m engine download-metrics"


def test_incomplete_or_wrong_kind_of_model_folder(tiny_metric_dirs, tmp_path) -> None:
    clip_dir, xclip_dir = tiny_metric_dirs
    partial = shutil.copytree(clip_dir, tmp_path / "partial")
    (partial / "model.safetensors").unlink()
    with pytest.raises(MetricModelError) as error:
        load_metric_models(partial, xclip_dir, device="cpu")
    assert_one_line(error, "incomplete", "model.safetensors", "download-metrics")
    with pytest.raises(MetricModelError) as error:
        load_metric_models(xclip_dir, xclip_dir, device="cpu")
    assert_one_line(error, "'xclip' model, not CLIP")


def test_result_folder_problems_are_one_line_errors(tmp_path) -> None:
    with pytest.raises(MetricsError) as error:
        evaluate_result(tmp_path / "nowhere")
    assert_one_line(error, "not a folder")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MetricsError) as error:
        evaluate_result(tmp_path / "empty")
    assert_one_line(error, "no result.json")
    static = tmp_path / "static"
    static.mkdir()
    square_sketch({"motion_prompt": PROMPT}).save_json(static / "result.json")
    with pytest.raises(MetricsError) as error:
        evaluate_result(static)
    assert_one_line(error, "incomplete")  # no manifest: its writing never finished
    size = (static / "result.json").stat().st_size
    (static / MANIFEST).write_text(json.dumps({"schema": MANIFEST_SCHEMA, "files": {"result.json": size}}))
    with pytest.raises(MetricsError) as error:
        evaluate_result(static)
    assert_one_line(error, "without frames")
    unprompted = write_result(tmp_path / "unprompted", still_animation(3))
    with pytest.raises(MetricsError) as error:
        evaluate_result(unprompted)
    assert_one_line(error, "no motion prompt", "--motion")
    assert not (unprompted / "metrics.json").exists()


def test_single_frame_result_is_refused(tiny_models, tmp_path) -> None:
    folder = write_result(tmp_path / "one", still_animation(1, motion_prompt=PROMPT))
    with pytest.raises(MetricsError) as error:
        evaluate_result(folder, models=tiny_models)
    assert_one_line(error, "at least 2 frames")
