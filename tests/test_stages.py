"""Stages 1 and 2 on the tiny model: losses fall, only the intended adapters change, caching, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from engine.backbones import load_backbone
from engine.backbones.adapter_cache import AdapterCache
from engine.errors import SketchAnimatorError, SketchError
from engine.job.events import EventLog, read_events
from engine.media.reference import VideoSpec, load_reference_frames
from engine.settings import AppearanceSettings, MotionSettings
from engine.stages.appearance import learn_appearance
from engine.stages.lora_training import diffusion_loss
from engine.stages.motion import clip_tensor, learn_motion
from engine.vector.render import model_view_renderer
from engine.vector.sketch import Path as SketchPath
from engine.vector.sketch import Sketch

ROOT = Path(__file__).resolve().parent.parent
FAST = dict(resolution=64, checkpoint_every=10, rank=8)


def small_sketch() -> Sketch:
    return Sketch(
        paths=[
            SketchPath(points=[[20, 40], [30, 10], [50, 10], [60, 40]], half_width=2.0),
            SketchPath(points=[[15, 50], [35, 60], [45, 60], [65, 50]], half_width=1.5),
        ],
        width=80,
        height=80,
    )


@pytest.fixture()
def backbone(tiny_model_dir):
    return load_backbone(tiny_model_dir)


@pytest.fixture(scope="module")
def moving_box_video(tmp_path_factory) -> Path:
    frames = np.full((12, 64, 64, 3), 255, np.uint8)
    for i in range(12):
        frames[i, 24:40, 4 + 4 * i : 20 + 4 * i] = (30, 30, 200)
    path = tmp_path_factory.mktemp("video") / "box.mp4"
    iio.imwrite(path, frames, fps=12, codec="libx264")
    return path


def fixed_evaluation_loss(backbone, latents: torch.Tensor, text: torch.Tensor, draws: int = 6) -> float:
    """Mean diffusion loss over fixed (t, ε) draws: comparable before and after training."""
    generator = torch.Generator().manual_seed(1234)
    total = 0.0
    with torch.no_grad():
        for _ in range(draws):
            t = torch.randint(0, 1000, (1,), generator=generator)
            noise = torch.randn(latents.shape, generator=generator)
            total += diffusion_loss(backbone, latents, text, t, noise).item()
    return total / draws


def parameters(backbone) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in backbone.unet.named_parameters()}


# ----------------------------------------------------------------------------- stage 1
def test_appearance_loss_falls_and_only_the_appearance_adapter_changes(backbone, tmp_path) -> None:
    sketch = small_sketch()
    backbone.add_adapter("motion_temporal", rank=4)  # an adapter that must not move
    with torch.no_grad():
        for n, p in backbone.unet.named_parameters():
            if ".motion_temporal." in n:
                p.normal_(0, 0.1)
    renderer = model_view_renderer(sketch, (64, 64))
    with torch.no_grad():
        latents = backbone.encode_frames(renderer.render(renderer.points())[None], sample=False)
    text = backbone.encode_prompt("A rainbow.")
    backbone.add_adapter("appearance", rank=16)
    backbone.set_adapter_weights({"appearance": 1.0})
    before_loss = fixed_evaluation_loss(backbone, latents, text)
    before = parameters(backbone)

    settings = AppearanceSettings(steps=40, lr=1e-2, augment=False, **{**FAST, "rank": 16})
    path = learn_appearance(backbone, sketch, "A rainbow.", settings, AdapterCache(tmp_path))

    backbone.set_adapter_weights({"appearance": 1.0})
    after_loss = fixed_evaluation_loss(backbone, latents, text)
    assert after_loss < 0.9 * before_loss, (before_loss, after_loss)  # seeded: 1.085 → 0.944
    after = parameters(backbone)
    changed = {n for n in before if n in after and not torch.equal(before[n], after[n])}
    assert changed and all(".appearance." in n for n in changed)
    assert all(torch.equal(before[n], after[n]) for n in before if ".motion_temporal." in n or "lora" not in n)
    saved = load_file(path)
    assert saved and all("temp_attentions" not in k and not k.startswith("transformer_in") for k in saved)


def test_second_identical_run_is_a_cache_hit_and_changes_are_misses(backbone, tmp_path) -> None:
    cache = AdapterCache(tmp_path)
    settings = AppearanceSettings(steps=2, **FAST)
    sketch = small_sketch()
    first = learn_appearance(backbone, sketch, "A rainbow.", settings, cache)

    calls = []
    hook = backbone.unet.register_forward_pre_hook(lambda *args: calls.append(1))
    log = EventLog(tmp_path / "events.jsonl")
    again = learn_appearance(backbone, sketch, "A rainbow.", settings, cache, events=log)
    hook.remove()
    assert again == first and not calls
    assert [e["kind"] for e in read_events(tmp_path / "events.jsonl")[0]] == ["cache_hit"]

    moved = sketch.with_points(sketch.flat_points() + np.eye(1, sketch.num_points * 2).reshape(-1, 2) * 0.5)
    variants = [
        (sketch, "A rainbow over a hill.", settings),
        (moved, "A rainbow.", settings),
        (sketch, "A rainbow.", replace(settings, seed=1)),
        (sketch, "A rainbow.", replace(settings, steps=3)),
    ]
    paths = {learn_appearance(backbone, s, p, st, cache) for s, p, st in variants}
    assert first not in paths and len(paths) == 4
    assert len(cache.entries()) == 5


def test_bad_inputs(backbone, tmp_path) -> None:
    settings = AppearanceSettings(steps=1, **FAST)
    with pytest.raises(SketchAnimatorError, match="subject prompt is empty"):
        learn_appearance(backbone, small_sketch(), "   ", settings, AdapterCache(tmp_path))
    with pytest.raises(SketchError, match="no strokes"):
        learn_appearance(backbone, Sketch(paths=[]), "A horse.", settings, AdapterCache(tmp_path))


def test_out_of_memory_is_one_line_and_leaves_no_cache_entry(backbone, tmp_path, monkeypatch) -> None:
    """A real CUDA OOM cannot happen on this CPU machine; the error type is raised where it would be."""

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(backbone, "predict_noise", out_of_memory)
    cache = AdapterCache(tmp_path)
    with pytest.raises(SketchAnimatorError) as info:
        learn_appearance(backbone, small_sketch(), "A horse.", AppearanceSettings(steps=3, **FAST), cache)
    assert "out of GPU memory" in str(info.value) and "--frames 8" in str(info.value) and "\n" not in str(info.value)
    assert cache.entries() == []


# ----------------------------------------------------------------------------- stage 2
def test_motion_spatial_runs_on_one_frame_with_temporal_layers_bypassed(backbone, moving_box_video, tmp_path) -> None:
    spec = VideoSpec(path=str(moving_box_video), num_frames=6, size=64)
    clip = load_reference_frames(spec)
    calls: list[tuple[str, int]] = []
    backbone.unet.register_forward_pre_hook(lambda module, args, kwargs: calls.append(("unet", args[0].shape[2])), with_kwargs=True)
    temporal_linear = backbone.unet.get_submodule("down_blocks.0.temp_attentions.0.transformer_blocks.0.attn1.to_q")
    temporal_linear.register_forward_pre_hook(lambda *args: calls.append(("temporal", 0)))
    learn_motion(backbone, clip, spec, "A box moves right.", MotionSettings(steps=2, **FAST), AdapterCache(tmp_path))

    unet_calls = [i for i, (what, _) in enumerate(calls) if what == "unet"]
    assert [calls[i][1] for i in unet_calls] == [1, 6, 1, 6]  # spatial then temporal, each step
    for start, end in zip(unet_calls, unet_calls[1:] + [len(calls)]):
        ran_temporal = any(what == "temporal" for what, _ in calls[start + 1 : end])
        assert ran_temporal == (calls[start][1] == 6)


def test_motion_loss_falls_and_only_motion_adapters_change(backbone, moving_box_video, tmp_path) -> None:
    spec = VideoSpec(path=str(moving_box_video), num_frames=6, size=64)
    clip = load_reference_frames(spec)
    backbone.add_adapter("appearance", rank=4)
    with torch.no_grad():
        latents = backbone.encode_frames(clip_tensor(clip.frames, (64, 64)), sample=False)
    text = backbone.encode_prompt("A box moves right.")
    backbone.add_adapter("motion_spatial", rank=8)
    backbone.add_adapter("motion_temporal", rank=8)
    backbone.set_adapter_weights({"motion_spatial": 1.0, "motion_temporal": 1.0})
    before_loss = fixed_evaluation_loss(backbone, latents, text)
    before = parameters(backbone)

    path = learn_motion(backbone, clip, spec, "A box moves right.", MotionSettings(steps=30, lr=1e-2, debiased_temporal=True, **FAST), AdapterCache(tmp_path))

    backbone.set_adapter_weights({"motion_spatial": 1.0, "motion_temporal": 1.0})
    assert fixed_evaluation_loss(backbone, latents, text) < 0.85 * before_loss
    after = parameters(backbone)
    changed = {n for n in before if n in after and not torch.equal(before[n], after[n])}
    assert any(".motion_temporal." in n for n in changed) and any(".motion_spatial." in n for n in changed)
    assert all(".motion_temporal." in n or ".motion_spatial." in n for n in changed)
    assert (path.parent / "motion_spatial.safetensors").is_file()
    assert iio.imread(path.parent / "frames.png").shape == (64, 6 * 64, 3)  # the sampled frames, side by side
    assert all("temp_attentions" in k or k.startswith("transformer_in") for k in load_file(path))


def test_same_video_is_learned_once_whatever_its_path(backbone, moving_box_video, tmp_path) -> None:
    cache = AdapterCache(tmp_path / "cache")
    copy = tmp_path / "renamed.mp4"
    copy.write_bytes(moving_box_video.read_bytes())
    settings = MotionSettings(steps=1, **FAST)
    first_spec, second_spec = VideoSpec(path=str(moving_box_video), num_frames=4, size=64), VideoSpec(path=str(copy), num_frames=4, size=64)
    first = learn_motion(backbone, load_reference_frames(first_spec), first_spec, "A box moves.", settings, cache)
    second = learn_motion(backbone, load_reference_frames(second_spec), second_spec, "A box moves.", settings, cache)
    assert first == second
    third_spec = VideoSpec(path=str(copy), num_frames=5, size=64)
    assert learn_motion(backbone, load_reference_frames(third_spec), third_spec, "A box moves.", settings, cache) != first


# ------------------------------------------------------------------------ kill + resume
def learn_command(cache_dir: Path, sketch: Path, steps: int) -> list[str]:
    return [
        sys.executable, "-m", "engine", "learn-appearance", "--sketch", str(sketch), "--subject", "A rainbow.",
        "--model", os.environ["TINY_MODEL"], "--steps", str(steps), "--resolution", "64", "--rank", "4",
        "--checkpoint-every", "2", "--cache-dir", str(cache_dir), "--device", "cpu",
    ]


def test_sigkill_then_resume_equals_an_uninterrupted_run(tiny_model_dir, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TINY_MODEL", str(tiny_model_dir))
    sketch = tmp_path / "sketch.json"
    small_sketch().save_json(sketch)
    steps = 40

    straight = subprocess.run(learn_command(tmp_path / "a", sketch, steps), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr
    expected = load_file(straight.stdout.strip().splitlines()[-1])

    process = subprocess.Popen(learn_command(tmp_path / "b", sketch, steps), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    checkpoints = []
    while not checkpoints and time.time() < deadline and process.poll() is None:
        checkpoints = list((tmp_path / "b" / "adapters" / "work").glob("*/checkpoint.pt"))
        time.sleep(0.01)
    assert checkpoints and process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    step_at_kill = torch.load(checkpoints[0], weights_only=False)["step"]
    assert 0 < step_at_kill < steps

    resumed = subprocess.run(learn_command(tmp_path / "b", sketch, steps), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    result = load_file(resumed.stdout.strip().splitlines()[-1])
    assert result.keys() == expected.keys()
    for key in expected:
        assert torch.allclose(result[key], expected[key], atol=1e-6, rtol=0), key
    assert not list((tmp_path / "b" / "adapters" / "work").glob("*/checkpoint.pt"))
