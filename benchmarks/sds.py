"""One SDS step of stage 3, part by part: render, VAE encode, UNet (CFG), backward.

1. Measured: the tiny model on CPU, 16 frames of 256×256, the example sketch; the share of
   the rasterizer in a step, and the peak extra memory.
2. Estimated for the real ModelScope T2V 1.7B on a 24 GB GPU: the exact floating-point work of
   the VAE encoder (forward + backward to the pixels) and of the UNet (no gradient, batch of
   2 × 16 frames for classifier-free guidance), counted on PyTorch's meta device, divided by
   the same assumed sustained throughput as benchmarks/stages.py; the rasterizer's time on a
   GPU is taken as its CPU time here ÷ 20 (a stated assumption; measure it with a GPU).

Usage: python benchmarks/sds.py [--threads 2] [--steps 1000]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

FRAMES = 16


def measure_tiny_step(threads: int, repeats: int = 3) -> dict:
    import torch

    from engine.backbones import load_backbone
    from engine.backbones.tiny import build_tiny_model
    from engine.priors.diffusion import SDSPrior
    from engine.settings import DistillationSettings
    from engine.stages.distillation import random_view
    from engine.vector.load import load_sketch
    from engine.vector.render import model_view_renderer

    torch.set_num_threads(threads)
    backbone = load_backbone(build_tiny_model(Path(tempfile.mkdtemp()) / "tiny"))
    backbone.add_adapter("appearance", rank=32)
    backbone.add_adapter("motion_temporal", rank=32)
    prior = SDSPrior(backbone, "A cat is jumping.", DistillationSettings())
    sketch = load_sketch(ROOT / "examples" / "cat.svg")
    renderer = model_view_renderer(sketch, (256, 256))
    base_points = renderer.frame_points().repeat(FRAMES, 1, 1)
    text = prior.text
    parts: dict[str, list[float]] = {"render": [], "augment": [], "vae encode": [], "unet (cfg)": [], "backward": []}
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(repeats + 1):
        points = base_points.clone().requires_grad_(True)
        start = time.perf_counter()
        frames = renderer.render(points)
        t1 = time.perf_counter()
        frames = random_view(frames)
        t2 = time.perf_counter()
        latents = backbone.encode_frames(frames, sample=False)
        t3 = time.perf_counter()
        with torch.no_grad():
            noisy = torch.cat([latents.detach()] * 2)
            backbone.predict_noise(noisy, torch.tensor([500, 500]), text)
        t4 = time.perf_counter()
        (latents * torch.randn_like(latents)).sum().backward()
        t5 = time.perf_counter()
        for name, seconds in zip(parts, (t1 - start, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            parts[name].append(seconds)
    # raster-only backward share: time the rasterizer's own backward
    points = base_points.clone().requires_grad_(True)
    frames = renderer.render(points)
    start = time.perf_counter()
    frames.sum().backward()
    raster_backward = time.perf_counter() - start
    medians = {name: statistics.median(values[1:]) for name, values in parts.items()}
    medians["(raster backward, inside backward)"] = raster_backward
    return {"parts": medians, "peak_extra_bytes": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) * 1024}


def real_step_flops() -> dict:
    import warnings

    import torch
    from diffusers import AutoencoderKL
    from torch.utils.flop_counter import FlopCounterMode

    from engine.backbones.modelscope import UNET_CONFIG, VAE_CONFIG, VideoUNet

    warnings.filterwarnings("ignore")
    with torch.device("meta"):
        vae = AutoencoderKL(**VAE_CONFIG)
        vae.requires_grad_(False)
        unet = VideoUNet(**UNET_CONFIG)
        unet.requires_grad_(False)
        pixels = torch.zeros(FRAMES, 3, 256, 256, requires_grad=True)
        counter = FlopCounterMode(display=False)
        with counter:
            vae.quant_conv(vae.encoder(pixels)).sum().backward()
        vae_flops = counter.get_total_flops()
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            unet(torch.zeros(2, 4, FRAMES, 32, 32), torch.tensor([500, 500]), encoder_hidden_states=torch.zeros(2, 77, 1024))
        unet_flops = counter.get_total_flops()
    return {"vae encode + backward": vae_flops, "unet (cfg)": unet_flops}


def main() -> None:
    from stages import A5000_DENSE_FP16_TFLOPS, ASSUMED_EFFICIENCY

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=1000, help="steps to extrapolate to (Live Sketch: 1000)")
    args = parser.parse_args()

    tiny = measure_tiny_step(args.threads)
    parts = tiny["parts"]
    step = sum(v for k, v in parts.items() if not k.startswith("("))
    raster = parts["render"] + parts["(raster backward, inside backward)"]
    print(f"measured: tiny model, CPU, {args.threads} threads, {FRAMES} frames × 256², example sketch (cat.svg)")
    for name, seconds in parts.items():
        print(f"  {name:36} {seconds:8.3f} s")
    print(f"  {'one step':36} {step:8.3f} s   rasterizer (forward + backward): {100 * raster / step:.1f}% of the step")
    print(f"  peak extra memory: {tiny['peak_extra_bytes'] / 2**20:.0f} MB\n")

    flops = real_step_flops()
    throughput = A5000_DENSE_FP16_TFLOPS * 1e12 * ASSUMED_EFFICIENCY
    gpu_raster = raster / 20
    print(f"estimated: real ModelScope T2V 1.7B on a 24 GB GPU (assumed {throughput / 1e12:.1f} TFLOP/s sustained fp16)")
    total = gpu_raster
    for name, count in flops.items():
        seconds = count / throughput
        total += seconds
        print(f"  {name:36} {count / 1e12:7.2f} TFLOP  {seconds:7.3f} s")
    print(f"  {'rasterizer (CPU time ÷ 20)':36} {'':13} {gpu_raster:7.3f} s")
    print(f"  one step ≈ {total:.3f} s → {args.steps} steps ≈ {total * args.steps / 60:.1f} min; the rasterizer is {100 * gpu_raster / total:.1f}% of it")
    print("reference: Live Sketch ~30 min for 1000 steps on an A100; goal under 10 min on a 24 GB GPU")


if __name__ == "__main__":
    main()
