"""UNet speed and memory with LoRA adapters, and a memory estimate for the real ModelScope model.

1. The tiny model (engine/tiny.py) on CPU: forward and forward + backward seconds and peak
   extra memory of the UNet for 16 frames of 256×256 (latents 32×32), adapters on.
2. The real ModelScope T2V 1.7B architecture, built from its configuration with random
   weights (no download): parameter counts of every component and of the rank-32 adapters,
   and the UNet's training activations per frame measured on CPU (fp32, 1 and 2 frames at
   32×32 latents, block checkpointing on and off). From these, an estimate of GPU memory for
   each stage in fp16 with each memory saver on and off.
3. With a GPU and the real weights downloaded: the same timings measured on the GPU.

Each measurement runs in a fresh subprocess so that its peak RSS is its own.
Usage: python benchmarks/backbone.py [--skip-real] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GB = 1024**3

def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def add_stage_adapters(unet, rank: int) -> None:
    import warnings

    from peft import LoraConfig

    from engine.backbones.modelscope import SPATIAL_TARGETS, TEMPORAL_TARGETS

    warnings.filterwarnings("ignore", message="Already found a `peft_config`")

    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=SPATIAL_TARGETS), adapter_name="appearance")
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=TEMPORAL_TARGETS), adapter_name="motion_temporal")
    unet.set_adapters(["appearance", "motion_temporal"], [0.5, 1.0])
    for name, param in unet.named_parameters():
        param.requires_grad_(".motion_temporal." in name)


# ------------------------------------------------------------------------ children
def child_tiny(frames: int, threads: int) -> dict:
    """Tiny model: UNet forward / forward + backward on 16 frames of 32×32 latents."""
    import tempfile

    import torch

    from engine.backbones import load_backbone
    from engine.backbones.tiny import build_tiny_model

    torch.set_num_threads(threads)
    backbone = load_backbone(build_tiny_model(Path(tempfile.mkdtemp()) / "tiny"))
    backbone.add_adapter("appearance", rank=4)
    backbone.add_adapter("motion_temporal", rank=4)
    backbone.set_adapter_weights({"appearance": 0.5, "motion_temporal": 1.0})
    backbone.train_only("motion_temporal")
    text = backbone.encode_prompt("A horse is galloping.")
    latents = torch.randn(1, 4, frames, 32, 32)
    t = torch.tensor([500])
    backbone.predict_noise(latents[:, :, :2], t, text).mean().backward()  # warm-up
    base = peak_rss()

    def forward() -> float:
        start = time.perf_counter()
        with torch.no_grad():
            backbone.predict_noise(latents, t, text)
        return time.perf_counter() - start

    def forward_backward() -> float:
        start = time.perf_counter()
        backbone.predict_noise(latents, t, text).square().mean().backward()
        return time.perf_counter() - start

    fwd = statistics.median(forward() for _ in range(3))
    fwd_bwd = statistics.median(forward_backward() for _ in range(3))
    return {"forward_s": fwd, "forward_backward_s": fwd_bwd, "peak_extra_bytes": peak_rss() - base}


def child_real_activations(frames: int, mode: str, threads: int) -> dict:
    """Real-size UNet, random weights, fp32 CPU: extra peak memory of one training step.

    mode: "off" (plain autograd), "on" (block checkpointing) or "nograd" (inference only).
    """
    import torch

    from engine.backbones.modelscope import UNET_CONFIG, VideoUNet

    torch.set_num_threads(threads)
    with torch.device("cpu"):
        unet = VideoUNet(**UNET_CONFIG)
    unet.requires_grad_(False)
    add_stage_adapters(unet, rank=32)
    if mode == "on":
        unet.enable_block_checkpointing()
    text = torch.randn(1, 77, 1024)
    latents = torch.randn(1, 4, frames, 32, 32)
    base = peak_rss()
    start = time.perf_counter()
    if mode == "nograd":
        with torch.no_grad():
            unet(latents, torch.tensor([500]), encoder_hidden_states=text)
    else:
        unet(latents, torch.tensor([500]), encoder_hidden_states=text).sample.square().mean().backward()
    return {"seconds": time.perf_counter() - start, "peak_extra_bytes": peak_rss() - base}


def child_real_vae(frames: int, checkpointing: bool, threads: int) -> dict:
    """Real-size VAE encoder, fp32 CPU: extra peak memory of encoding frames with gradient."""
    import torch
    import torch.utils.checkpoint
    from diffusers import AutoencoderKL

    from engine.backbones.modelscope import VAE_CONFIG

    torch.set_num_threads(threads)
    vae = AutoencoderKL(**VAE_CONFIG)
    vae.requires_grad_(False)
    pixels = torch.rand(frames, 3, 256, 256, requires_grad=True)
    base = peak_rss()
    start = time.perf_counter()
    encode = lambda x: vae.quant_conv(vae.encoder(x))  # noqa: E731
    moments = torch.utils.checkpoint.checkpoint(encode, pixels, use_reentrant=False) if checkpointing else encode(pixels)
    moments.sum().backward()
    return {"seconds": time.perf_counter() - start, "peak_extra_bytes": peak_rss() - base}


def child_real_parameters() -> dict:
    """Parameter counts of the real architecture (built on the meta device: no memory)."""
    import torch
    from diffusers import AutoencoderKL
    from transformers import CLIPTextConfig, CLIPTextModel

    from engine.backbones.modelscope import TEXT_CONFIG, UNET_CONFIG, VAE_CONFIG, VideoUNet

    with torch.device("meta"):
        unet = VideoUNet(**UNET_CONFIG)
        vae = AutoencoderKL(**VAE_CONFIG)
        text = CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG))
        base_unet = sum(p.numel() for p in unet.parameters())
        add_stage_adapters(unet, rank=32)
    lora = {
        name: sum(p.numel() for n, p in unet.named_parameters() if f".{name}." in n) for name in ("appearance", "motion_temporal")
    }
    return {
        "unet": base_unet,
        "vae": sum(p.numel() for p in vae.parameters()),
        "vae_encoder": sum(p.numel() for p in vae.encoder.parameters()) + sum(p.numel() for p in vae.quant_conv.parameters()),
        "text_encoder": sum(p.numel() for p in text.parameters()),
        "lora_spatial_rank32": lora["appearance"],
        "lora_temporal_rank32": lora["motion_temporal"],
    }


def run_child(*args: str) -> dict:
    command = [sys.executable, __file__, "--child", *args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------- estimates
def memory_estimates(params: dict, unet_act: dict, vae_act: dict, frames: int = 16) -> list[tuple[str, float, float]]:
    """(stage, GB with savers off, GB with savers on) for fp16 weights, fp32 LoRA + AdamW."""
    fp16, lora_train_bytes = 2, 16  # LoRA: fp32 weight + grad + two AdamW moments
    weights = (params["unet"] + params["vae"]) * fp16
    text_resident = params["text_encoder"] * fp16  # offloaded to CPU once prompts are encoded when on
    lora_spatial = params["lora_spatial_rank32"] * lora_train_bytes
    lora_temporal = params["lora_temporal_rank32"] * lora_train_bytes
    per_frame = {k: v / 2 for k, v in unet_act.items()}  # fp32 measurement → fp16
    vae_frame = {k: v / 2 for k, v in vae_act.items()}
    chunk = 4  # VAE slicing: frames per VAE call
    rows = []
    # Stage 1: spatial LoRA on one frame (batch of 1).
    rows.append(("stage 1 appearance (1 frame)", weights + text_resident + lora_spatial + per_frame["off"], weights + lora_spatial + per_frame["on"]))
    # Stage 2: spatial on one frame, then temporal on the clip (sequential backward passes).
    rows.append(
        (
            f"stage 2 motion ({frames} frames)",
            weights + text_resident + lora_spatial + lora_temporal + frames * per_frame["off"],
            weights + lora_spatial + lora_temporal + frames * per_frame["on"],
        )
    )
    # Stage 3: UNet without grad on the CFG batch (2 × frames), gradient through the VAE encoder.
    unet_inference = 2 * frames * per_frame["nograd"]
    rows.append(
        (
            f"stage 3 SDS ({frames} frames)",
            weights + text_resident + unet_inference + frames * vae_frame["off"],
            weights + unet_inference + chunk * vae_frame["off"],  # only one recomputed chunk is alive at a time
        )
    )
    return [(name, off / GB, on / GB) for name, off, on in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-real", action="store_true", help="only the tiny model")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "tiny":
            out = child_tiny(int(rest[0]), args.threads)
        elif kind == "unet":
            out = child_real_activations(int(rest[0]), rest[1], args.threads)
        elif kind == "vae":
            out = child_real_vae(int(rest[0]), rest[1] == "on", args.threads)
        else:
            out = child_real_parameters()
        print(json.dumps(out))
        return

    import torch

    print(f"torch {torch.__version__}, {args.threads} CPU threads, CUDA: {torch.cuda.is_available()}\n")
    tiny = run_child("tiny", "16")
    print("tiny model, CPU, UNet with appearance 0.5 + motion_temporal 1.0, 16 frames × 32×32 latents")
    print(f"  forward {tiny['forward_s']:.3f} s | forward + backward {tiny['forward_backward_s']:.3f} s | peak extra {tiny['peak_extra_bytes'] / 2**20:.0f} MB\n")
    if args.skip_real:
        return

    params = run_child("params")
    print("ModelScope T2V 1.7B architecture (random weights), parameters:")
    for name, count in params.items():
        print(f"  {name:22} {count / 1e6:9.1f} M")
    unet_act, vae_act = {}, {}
    print("\nreal UNet, fp32 CPU, one training step (motion_temporal trainable), extra peak memory:")
    for mode in ("off", "on", "nograd"):  # 2 and 4 frames: one frame would bypass the trained temporal layers
        two, four = run_child("unet", "2", mode), run_child("unet", "4", mode)
        unet_act[mode] = max(four["peak_extra_bytes"] - two["peak_extra_bytes"], 0) / 2
        print(f"  checkpointing {mode:6}: 2 frames {two['peak_extra_bytes'] / GB:.2f} GB ({two['seconds']:.1f} s), 4 frames {four['peak_extra_bytes'] / GB:.2f} GB ({four['seconds']:.1f} s) → {unet_act[mode] / GB:.3f} GB per frame")
    print("\nreal VAE encoder, fp32 CPU, 256×256 with gradient to the pixels, extra peak memory:")
    for mode in ("off", "on"):
        one, two = run_child("vae", "1", mode), run_child("vae", "2", mode)
        vae_act[mode] = max(two["peak_extra_bytes"] - one["peak_extra_bytes"], 0)
        print(f"  checkpointing {mode:6}: 1 frame {one['peak_extra_bytes'] / GB:.2f} GB, 2 frames {two['peak_extra_bytes'] / GB:.2f} GB → {vae_act[mode] / GB:.3f} GB per frame")

    print("\nestimated GPU memory, fp16 weights, rank-32 LoRA in fp32 with AdamW (anchors: ~14 GB LoRA training, ~24 GB SDS; goal ≤ 12 GB):")
    print(f"  {'stage':32} {'savers off':>11} {'savers on':>10}")
    for name, off, on in memory_estimates(params, unet_act, vae_act):
        print(f"  {name:32} {off:>9.1f} GB {on:>8.1f} GB")
    print("  savers: block checkpointing, VAE slicing (4 frames) + checkpointing, text encoder offloaded after prompts")


if __name__ == "__main__":
    main()
