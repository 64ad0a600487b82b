"""The backbone on the tiny model: loading, LoRA arithmetic, targets, single-frame bypass, save/load."""

from __future__ import annotations

import re
import shutil

import pytest
import torch

from engine.backbones import load_backbone
from engine.backbones.base import AdapterError, ModelError
from engine.backbones.lora import read_adapter_metadata
from engine.backbones.modelscope import SPATIAL_TARGETS, TEMPORAL_TARGETS, select_download_files

SPATIAL_LAYER = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
TEMPORAL_LAYER = "down_blocks.0.temp_attentions.0.transformer_blocks.0.attn1.to_q"


@pytest.fixture()
def backbone(tiny_model_dir):
    return load_backbone(tiny_model_dir)


def randomise_lora(backbone, name: str, seed: int) -> None:
    """LoRA B starts at zero (a no-op); give both matrices random values so that ΔW ≠ 0."""
    generator = torch.Generator().manual_seed(seed)
    for param_name, param in backbone.unet.named_parameters():
        if f".{name}." in param_name:
            param.data = torch.randn(param.shape, generator=generator) * 0.3


def lora_delta(module, name: str) -> torch.Tensor:
    """ΔW = (alpha / r) · B · A of one adapter on one wrapped linear, from its parts."""
    scaling = module.lora_alpha[name] / module.r[name]
    return scaling * module.lora_B[name].weight @ module.lora_A[name].weight


def hand_computed_linear(layer, x: torch.Tensor, weighted_deltas: list[tuple[float, torch.Tensor]]) -> torch.Tensor:
    """x · (W0 + Σ λ·ΔW)ᵀ + b."""
    weight = layer.base_layer.weight + sum(weight * delta for weight, delta in weighted_deltas)
    bias = layer.base_layer.bias
    return x @ weight.T + (0 if bias is None else bias)


def latents(frames: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(1, 4, frames, 8, 8, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------- LoRA arithmetic
def test_adapted_linear_equals_hand_computed_weights(backbone) -> None:
    backbone.add_adapter("appearance", rank=4, alpha=8)
    backbone.add_adapter("motion_spatial", rank=2, alpha=2)
    randomise_lora(backbone, "appearance", 1)
    randomise_lora(backbone, "motion_spatial", 2)
    backbone.set_adapter_weights({"appearance": 0.5, "motion_spatial": 1.7})
    layer = backbone.unet.get_submodule(SPATIAL_LAYER)
    x = torch.randn(3, 5, layer.base_layer.weight.shape[1])
    expected = hand_computed_linear(layer, x, [(0.5, lora_delta(layer, "appearance")), (1.7, lora_delta(layer, "motion_spatial"))])
    assert torch.allclose(layer(x), expected, atol=1e-5)


def test_stage3_weights_reach_spatial_and_temporal_layers_separately(backbone) -> None:
    backbone.add_adapter("appearance", rank=4)
    backbone.add_adapter("motion_temporal", rank=4)
    randomise_lora(backbone, "appearance", 3)
    randomise_lora(backbone, "motion_temporal", 4)
    backbone.set_adapter_weights({"appearance": 0.5, "motion_temporal": 1.0})
    spatial = backbone.unet.get_submodule(SPATIAL_LAYER)
    temporal = backbone.unet.get_submodule(TEMPORAL_LAYER)
    x = torch.randn(2, spatial.base_layer.weight.shape[1])
    assert torch.allclose(spatial(x), hand_computed_linear(spatial, x, [(0.5, lora_delta(spatial, "appearance"))]), atol=1e-5)
    y = torch.randn(2, temporal.base_layer.weight.shape[1])
    assert torch.allclose(temporal(y), hand_computed_linear(temporal, y, [(1.0, lora_delta(temporal, "motion_temporal"))]), atol=1e-5)


# ---------------------------------------------------------------------------- targets
def test_spatial_and_temporal_adapters_wrap_disjoint_layers(backbone) -> None:
    backbone.add_adapter("appearance", rank=2)
    backbone.add_adapter("motion_temporal", rank=2)
    wrapped = {name: set(module.lora_A.keys()) for name, module in backbone.unet.named_modules() if hasattr(module, "lora_A")}
    spatial = {n for n, adapters in wrapped.items() if "appearance" in adapters}
    temporal = {n for n, adapters in wrapped.items() if "motion_temporal" in adapters}
    assert spatial and temporal and not spatial & temporal
    for name in spatial:
        assert re.search(r"(^|\.)attentions\.\d+\.transformer_blocks", name) and "temp_" not in name and not name.startswith("transformer_in")
    for name in temporal:
        assert ".temp_attentions." in name or name.startswith("transformer_in.")
    # Every attention/feed-forward linear of every spatial transformer is wrapped, and no other.
    linears = [n.removesuffix(".base_layer") for n, m in backbone.unet.named_modules() if isinstance(m, torch.nn.Linear) and "lora_" not in n]
    expected_spatial = {n for n in linears if re.search(r"\.attentions\.\d+\.transformer_blocks\.0\.(attn1|attn2|ff)\.", n)}
    expected_temporal = {n for n in linears if re.search(r"(\.temp_attentions\.\d+|^transformer_in)\.transformer_blocks\.0\.(attn1|attn2|ff)\.", n)}
    assert spatial == expected_spatial and temporal == expected_temporal


def test_target_patterns_on_module_names() -> None:
    assert re.fullmatch(SPATIAL_TARGETS, "up_blocks.1.attentions.2.transformer_blocks.0.ff.net.0.proj")
    assert not re.fullmatch(SPATIAL_TARGETS, "up_blocks.1.temp_attentions.2.transformer_blocks.0.ff.net.0.proj")
    assert not re.fullmatch(SPATIAL_TARGETS, "transformer_in.transformer_blocks.0.attn1.to_q")
    assert re.fullmatch(TEMPORAL_TARGETS, "transformer_in.transformer_blocks.0.attn1.to_q")
    assert re.fullmatch(TEMPORAL_TARGETS, "mid_block.temp_attentions.0.transformer_blocks.0.attn2.to_out.0")
    assert not re.fullmatch(TEMPORAL_TARGETS, "mid_block.attentions.0.transformer_blocks.0.attn2.to_out.0")
    assert not re.fullmatch(TEMPORAL_TARGETS, "down_blocks.0.temp_attentions.0.proj_in")


# --------------------------------------------------------------------------- training
def test_only_the_active_adapter_trains_and_the_base_never_changes(backbone) -> None:
    backbone.add_adapter("appearance", rank=4)
    backbone.add_adapter("motion_temporal", rank=4)
    randomise_lora(backbone, "motion_temporal", 5)
    backbone.set_adapter_weights({"appearance": 1.0, "motion_temporal": 1.0})
    params = backbone.train_only("appearance")
    before = {n: p.detach().clone() for n, p in backbone.unet.named_parameters()}
    assert {n for n, p in backbone.unet.named_parameters() if p.requires_grad} == {n for n in before if ".appearance." in n}
    assert all(not p.requires_grad for p in [*backbone.vae.parameters(), *backbone.text_encoder.parameters()])

    optimiser = torch.optim.AdamW(params, lr=1e-2)
    text = backbone.encode_prompt("A horse.")
    for step in range(3):
        noise_pred = backbone.predict_noise(latents(4, step), torch.tensor([500]), text)
        loss = (noise_pred - latents(4, 10 + step)).square().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    after = dict(backbone.unet.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed and all(".appearance." in n for n in changed)
    assert any(".lora_B.appearance." in n for n in changed)


# ---------------------------------------------------------------------- single frame
def test_one_frame_bypasses_the_temporal_layers(backbone) -> None:
    backbone.add_adapter("motion_temporal", rank=4)
    backbone.set_adapter_weights({"motion_temporal": 1.0})
    text = backbone.encode_prompt("A horse.")
    t = torch.tensor([300])
    with torch.no_grad():
        one_before = backbone.predict_noise(latents(1), t, text)
        many_before = backbone.predict_noise(latents(3), t, text)
        randomise_lora(backbone, "motion_temporal", 6)
        one_after = backbone.predict_noise(latents(1), t, text)
        many_after = backbone.predict_noise(latents(3), t, text)
    assert torch.equal(one_before, one_after)
    assert not torch.allclose(many_before, many_after)


def test_single_frame_loss_sends_no_gradient_to_temporal_adapter(backbone) -> None:
    backbone.add_adapter("motion_spatial", rank=4)
    backbone.add_adapter("motion_temporal", rank=4)
    randomise_lora(backbone, "motion_temporal", 8)
    backbone.set_adapter_weights({"motion_spatial": 1.0, "motion_temporal": 1.0})
    backbone.train_only("motion_spatial", "motion_temporal")
    text = backbone.encode_prompt("A horse is galloping.")
    backbone.predict_noise(latents(1), torch.tensor([400]), text).square().mean().backward()
    grads = {n: p.grad for n, p in backbone.unet.named_parameters() if p.requires_grad}
    assert all(g is None or not g.any() for n, g in grads.items() if ".motion_temporal." in n)
    assert any(g is not None and g.any() for n, g in grads.items() if ".motion_spatial." in n)


# ------------------------------------------------------------------------ save / load
def test_adapter_round_trip_and_wrong_base_refused(backbone, tiny_model_dir, other_tiny_model_dir, tmp_path) -> None:
    backbone.add_adapter("appearance", rank=4, alpha=6)
    randomise_lora(backbone, "appearance", 9)
    backbone.set_adapter_weights({"appearance": 0.8})
    text = backbone.encode_prompt("A horse.")
    with torch.no_grad():
        expected = backbone.predict_noise(latents(2), torch.tensor([100]), text)
    path = backbone.save_adapter("appearance", tmp_path / "appearance.safetensors", trained_on={"sketch": "abc123", "steps": 500})

    info = read_adapter_metadata(path)
    assert (info["adapter"], info["rank"], info["alpha"], info["trained_on"]["steps"]) == ("appearance", 4, 6, 500)
    assert info["base_fingerprint"] == backbone.fingerprint

    fresh = load_backbone(tiny_model_dir)
    fresh.load_adapter("appearance", path)
    fresh.set_adapter_weights({"appearance": 0.8})
    with torch.no_grad():
        again = fresh.predict_noise(latents(2), torch.tensor([100]), fresh.encode_prompt("A horse."))
    assert torch.equal(expected, again)

    other = load_backbone(other_tiny_model_dir)
    with pytest.raises(AdapterError, match="retrain it for this model"):
        other.load_adapter("appearance", path)
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 40)
    with pytest.raises(AdapterError, match="not a valid safetensors"):
        fresh.load_adapter("appearance", tmp_path / "junk.safetensors")


def test_adapter_file_uses_peft_diffusers_keys(backbone, tmp_path) -> None:
    from safetensors import safe_open

    backbone.add_adapter("motion_temporal", rank=2)
    path = backbone.save_adapter("motion_temporal", tmp_path / "m.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        keys = list(handle.keys())
        metadata = handle.metadata()
    assert "transformer_in.transformer_blocks.0.attn1.to_q.lora_A.weight" in keys
    assert all(k.endswith((".lora_A.weight", ".lora_B.weight")) for k in keys)
    assert "lora_adapter_metadata" in metadata and metadata["format"] == "pt"


# ---------------------------------------------------------------------------- loading
def test_tiny_folder_has_the_hub_layout_and_loads(tiny_model_dir, backbone) -> None:
    for relative in ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors", "vae/config.json",
                     "text_encoder/config.json", "text_encoder/model.safetensors", "tokenizer/vocab.json", "scheduler/scheduler_config.json"]:
        assert (tiny_model_dir / relative).is_file(), relative
    assert type(backbone.unet).__mro__[1].__name__ == "UNet3DConditionModel"
    assert backbone.device.type == "cpu" and backbone.dtype == torch.float32
    assert backbone.vae.config.scaling_factor == pytest.approx(0.18215)


def test_prompt_embeddings_are_computed_once(backbone) -> None:
    calls = []
    handle = backbone.text_encoder.register_forward_hook(lambda *args: calls.append(1))
    first = backbone.encode_prompt("A horse.")
    second = backbone.encode_prompt("A horse.")
    backbone.encode_prompt("A cat.")
    handle.remove()
    assert first is second and len(calls) == 2


def test_vae_encoding_is_differentiable_and_chunked(backbone) -> None:
    frames = torch.rand(5, 3, 64, 64, requires_grad=True)
    z = backbone.encode_frames(frames, sample=False)
    assert z.shape == (1, 4, 5, 8, 8)
    z.sum().backward()
    assert frames.grad is not None and frames.grad.abs().sum() > 0
    with torch.no_grad():  # chunking is invisible: the same as one frame at a time
        one_by_one = torch.cat([backbone.encode_frames(frames[i : i + 1], sample=False) for i in range(5)], dim=2)
    assert torch.allclose(z.detach(), one_by_one, atol=1e-5)


@pytest.mark.parametrize("damage", ["missing", "no-unet-weights", "no-tokenizer", "not-downloaded-hub-id"])
def test_missing_or_half_downloaded_model_gives_one_line(tiny_model_dir, tmp_path, damage, monkeypatch) -> None:
    if damage == "missing":
        model = tmp_path / "nowhere"
        model.mkdir()
    elif damage == "not-downloaded-hub-id":
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        model = "ali-vilab/text-to-video-ms-1.7b"
    else:
        model = tmp_path / "partial"
        shutil.copytree(tiny_model_dir, model)
        if damage == "no-unet-weights":
            (model / "unet" / "diffusion_pytorch_model.safetensors").unlink()
        else:
            shutil.rmtree(model / "tokenizer")
    with pytest.raises(ModelError) as info:
        load_backbone(model)
    message = str(info.value)
    assert "\n" not in message and "python -m engine download" in message
    assert str(model).split("/")[-1] in message


def test_download_picks_only_the_files_the_engine_uses() -> None:
    repo = [
        "README.md", "model_index.json", "scheduler/scheduler_config.json",
        "text_encoder/config.json", "text_encoder/model.fp16.safetensors", "text_encoder/model.safetensors", "text_encoder/pytorch_model.bin",
        "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
        "unet/config.json", "unet/diffusion_pytorch_model.bin", "unet/diffusion_pytorch_model.fp16.safetensors", "unet/diffusion_pytorch_model.safetensors",
        "vae/config.json", "vae/diffusion_pytorch_model.bin", "vae/diffusion_pytorch_model.safetensors",
    ]
    chosen = set(select_download_files(repo))
    assert chosen == {
        "model_index.json", "scheduler/scheduler_config.json",
        "text_encoder/config.json", "text_encoder/model.fp16.safetensors",
        "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
        "unet/config.json", "unet/diffusion_pytorch_model.fp16.safetensors",
        "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
    }
