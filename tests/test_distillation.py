"""Stage 3: the distillation loop with a known-target prior, and one SDS step on the tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.backbones import load_backbone
from engine.errors import SketchAnimatorError
from engine.priors.diffusion import SDSPrior
from engine.priors.target_frames import TargetFramesPrior
from engine.settings import DistillationSettings
from engine.stages.distillation import distill
from engine.vector.render import model_view_renderer
from engine.vector.sketch import Path, Sketch

FRAMES = 6


def three_stroke_sketch() -> Sketch:
    return Sketch(
        paths=[
            Path(points=[[20, 20], [30, 12], [40, 12], [48, 22]], half_width=1.5),
            Path(points=[[18, 44], [28, 50], [38, 50], [46, 40]], half_width=1.5),
            Path(points=[[32, 26], [34, 30], [30, 34], [33, 38]], half_width=1.5),
        ],
        width=64,
        height=64,
    )


def rotated(points: np.ndarray, degrees: float, centre=(32.0, 32.0)) -> np.ndarray:
    a = np.deg2rad(degrees)
    rotation = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (points - centre) @ rotation.T + centre


@pytest.mark.parametrize(
    "motion",
    [
        lambda p, i: rotated(p, 4.0 * i),  # up to 20° about the centre
        lambda p, i: p + np.array([1.0, -0.5]) * i,  # up to (5, -2.5) px
    ],
    ids=["rotation", "translation"],
)
def test_loop_recovers_a_known_motion_from_target_frames(motion, tmp_path) -> None:
    sketch = three_stroke_sketch()
    truth = np.stack([motion(sketch.flat_points(), i) for i in range(FRAMES)])
    renderer = model_view_renderer(sketch, (64, 64))
    with torch.no_grad():
        targets = renderer.render(torch.tensor(truth, dtype=torch.float32))
    settings = DistillationSettings(steps=150, lr=1e-2, augment=False, resolution=64, checkpoint_every=1000)
    result = distill(sketch, TargetFramesPrior(targets), settings, FRAMES, tmp_path / "ckpt.pt", show_bar=False)
    error = np.linalg.norm(result.frames - truth, axis=-1)
    assert result.frames.shape == (FRAMES, sketch.num_points, 2)
    assert error.mean() < 1.0
    assert np.isfinite(result.frames).all() and result.skipped_steps == 0
    assert np.mean(result.losses[-10:]) < 0.2 * np.mean(result.losses[:10])


def test_non_finite_prior_steps_are_skipped_never_applied(tmp_path) -> None:
    sketch = three_stroke_sketch()

    def broken_prior(frames: torch.Tensor, step: int) -> dict:
        loss = frames.mean()
        return {"loss": loss * float("nan") if step % 2 else loss}

    settings = DistillationSettings(steps=6, augment=False, resolution=64, checkpoint_every=100)
    result = distill(sketch, broken_prior, settings, 2, tmp_path / "c.pt", show_bar=False)
    assert result.skipped_steps == 3 and len(result.losses) == 3
    assert np.isfinite(result.frames).all()


def test_one_sds_step_reaches_every_control_point_with_weighted_adapters(tiny_model_dir, tmp_path) -> None:
    backbone = load_backbone(tiny_model_dir)
    backbone.add_adapter("appearance", rank=4, alpha=4)
    backbone.add_adapter("motion_temporal", rank=4, alpha=8)
    with torch.no_grad():
        for name, param in backbone.unet.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    settings = DistillationSettings(steps=1, resolution=64, augment=True)
    prior = SDSPrior(backbone, "A horse is galloping.", settings)
    spatial = backbone.unet.get_submodule("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q")
    temporal = backbone.unet.get_submodule("down_blocks.0.temp_attentions.0.transformer_blocks.0.attn1.to_q")
    assert spatial.scaling["appearance"] == pytest.approx(0.5 * 4 / 4)  # λ1 · alpha / r
    assert temporal.scaling["motion_temporal"] == pytest.approx(1.0 * 8 / 4)  # λ2 · alpha / r
    assert set(spatial.active_adapters) == {"appearance", "motion_temporal"}
    assert not any(p.requires_grad for p in backbone.unet.parameters())

    sketch = three_stroke_sketch()
    renderer = model_view_renderer(sketch, (64, 64))
    points = torch.tensor(np.repeat(sketch.flat_points()[None], 4, axis=0), dtype=torch.float32, requires_grad=True)
    out = prior(renderer.render(points), 0)
    out["loss"].backward()
    per_point = points.grad.norm(dim=-1)
    assert torch.isfinite(points.grad).all()
    assert (per_point > 0).all(), "every control point of every frame gets a gradient"
    assert out["grad_norm"] > 0 and 50 <= out["t"].item() <= 950


def test_ablation_weights_turn_adapters_off(tiny_model_dir) -> None:
    backbone = load_backbone(tiny_model_dir)
    backbone.add_adapter("appearance", rank=4)
    backbone.add_adapter("motion_temporal", rank=4)
    SDSPrior(backbone, "A horse.", DistillationSettings(appearance_weight=0.0))
    layer = backbone.unet.get_submodule("down_blocks.0.temp_attentions.0.transformer_blocks.0.attn1.to_q")
    assert list(layer.active_adapters) == ["motion_temporal"]


def test_pinned_and_invisible_strokes_never_move_while_the_others_follow_the_prior(tmp_path) -> None:
    from dataclasses import replace

    sketch = three_stroke_sketch()
    pinned = replace(sketch, paths=[replace(sketch.paths[0], pinned=True), sketch.paths[1], replace(sketch.paths[2], opacity=0.0)])
    truth = np.stack([pinned.flat_points() + [1.0 * i, -0.5 * i] for i in range(FRAMES)])
    renderer = model_view_renderer(pinned, (64, 64))
    with torch.no_grad():
        targets = renderer.render(torch.tensor(truth, dtype=torch.float32))
    settings = DistillationSettings(steps=60, lr=1e-2, augment=False, resolution=64, checkpoint_every=1000)
    result = distill(pinned, TargetFramesPrior(targets), settings, FRAMES, tmp_path / "ckpt.pt", show_bar=False)
    still = pinned.still_points()
    assert still.sum() == len(sketch.paths[0].points) + len(sketch.paths[2].points)
    np.testing.assert_array_equal(result.frames[:, still], np.broadcast_to(pinned.flat_points()[still], result.frames[:, still].shape))  # bit for bit
    assert np.abs(result.frames[-1, ~still] - pinned.flat_points()[~still]).max() > 1.0  # the free stroke moved
    everything = replace(sketch, paths=[replace(p, pinned=True) for p in sketch.paths])
    with pytest.raises(SketchAnimatorError, match="every stroke is pinned"):
        distill(everything, TargetFramesPrior(targets), settings, FRAMES, tmp_path / "other.pt", show_bar=False)
