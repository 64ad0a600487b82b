"""Stages 1 and 2: seconds per training step and peak memory, measured and estimated.

1. Measured: the tiny model on CPU, stage 1 (one rendered frame, appearance LoRA) and stage 2
   (one random frame for motion_spatial + the 16-frame clip for motion_temporal), 256×256.
2. Estimated for the real ModelScope T2V 1.7B: the floating-point work of one training step,
   counted exactly by running the real architecture on PyTorch's meta device under
   `FlopCounterMode` (no weights, no memory), divided by the sustained fp16 throughput of a
   24 GB GPU. The throughput is an assumption stated in the table (40% of an RTX A5000's
   111 TFLOP/s dense fp16 tensor throughput, MotionDirector's reference card), plus a
   third for block checkpointing's recomputed forward.
3. With a GPU and the real model downloaded, pass --model to measure it instead.

Usage: python benchmarks/stages.py [--threads 2] [--model ali-vilab/text-to-video-ms-1.7b]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

A5000_DENSE_FP16_TFLOPS = 111.1  # RTX A5000 datasheet: 222.2 TFLOPS FP16 tensor with sparsity, half without
ASSUMED_EFFICIENCY = 0.4
CHECKPOINTING_OVERHEAD = 4 / 3  # one more forward per forward + backward
FRAMES = 16
STEPS = 500


def make_test_video(path: Path, frames: int = 24) -> Path:
    import imageio.v3 as iio
    import numpy as np

    video = np.full((frames, 256, 256, 3), 255, np.uint8)
    for i in range(frames):
        video[i, 100:156, 10 + 8 * i : 66 + 8 * i] = (40, 40, 200)
    iio.imwrite(path, video, fps=12, codec="libx264")
    return path


def child_measure(stage: str, model: str | None, threads: int, steps: int = 6) -> dict:
    import torch

    from engine.backbones import load_backbone
    from engine.backbones.adapter_cache import AdapterCache
    from engine.backbones.tiny import build_tiny_model
    from engine.job.events import EventLog, read_events
    from engine.media.reference import VideoSpec, load_reference_frames
    from engine.settings import AppearanceSettings, MotionSettings
    from engine.stages.appearance import learn_appearance
    from engine.stages.motion import learn_motion
    from engine.vector.load import load_sketch

    torch.set_num_threads(threads)
    work = Path(tempfile.mkdtemp())
    backbone = load_backbone(model or build_tiny_model(work / "tiny"))
    log = EventLog(work / "events.jsonl")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if stage == "appearance":
        sketch = load_sketch(ROOT / "examples" / "cat.svg")
        learn_appearance(backbone, sketch, "A cat.", AppearanceSettings(steps=steps, checkpoint_every=steps), AdapterCache(work / "cache"), log, show_bar=False)
    else:
        spec = VideoSpec(path=str(make_test_video(work / "box.mp4")), num_frames=FRAMES)
        learn_motion(backbone, load_reference_frames(spec), spec, "A box moves right.", MotionSettings(steps=steps, checkpoint_every=steps), AdapterCache(work / "cache"), log, show_bar=False)
    total = time.perf_counter() - start
    events = read_events(work / "events.jsonl")[0]
    elapsed = next(e["elapsed_s"] for e in events if e["kind"] == "stage_end")
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024
    if torch.cuda.is_available():
        peak = torch.cuda.max_memory_allocated()
    return {"seconds_per_step": elapsed / steps, "setup_s": total - elapsed, "peak_extra_bytes": peak}


def real_step_flops() -> dict:
    """Exact FLOPs of one training step of each stage on the real architecture (meta device)."""
    import warnings

    import torch
    from backbone import add_stage_adapters  # benchmarks/backbone.py
    from torch.utils.flop_counter import FlopCounterMode

    from engine.backbones.modelscope import UNET_CONFIG, VideoUNet

    warnings.filterwarnings("ignore")
    with torch.device("meta"):
        unet = VideoUNet(**UNET_CONFIG)
        unet.requires_grad_(False)
        add_stage_adapters(unet, rank=32)
        for name, param in unet.named_parameters():
            param.requires_grad_("lora_" in name)
        text = torch.zeros(1, 77, 1024)

        def step_flops(frames: int) -> int:
            counter = FlopCounterMode(display=False)
            with counter:
                unet(torch.zeros(1, 4, frames, 32, 32), torch.tensor([500]), encoder_hidden_states=text).sample.sum().backward()
            return counter.get_total_flops()

        one, clip = step_flops(1), step_flops(FRAMES)
    return {"appearance": one, "motion": one + clip}


def run_child(stage: str, model: str | None, threads: int) -> dict:
    command = [sys.executable, __file__, "--child", stage, "--threads", str(threads)] + (["--model", model] if model else [])
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default=None, help="measure this model instead of the tiny one (needs its weights)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_measure(args.child, args.model, args.threads)))
        return

    import torch

    device = "cuda" if torch.cuda.is_available() else f"CPU, {args.threads} threads"
    name = args.model or "tiny model"
    print(f"measured: {name} on {device}, 256×256 frames, rank 32, AdamW, {FRAMES} frames for stage 2\n")
    print(f"{'stage':12} {'s/step':>8} {'peak extra':>11} {'500 steps':>10}")
    for stage in ("appearance", "motion"):
        measured = run_child(stage, args.model, args.threads)
        print(f"{stage:12} {measured['seconds_per_step']:>8.3f} {measured['peak_extra_bytes'] / 2**20:>8.0f} MB {measured['seconds_per_step'] * STEPS / 60:>7.1f} min")

    flops = real_step_flops()
    throughput = A5000_DENSE_FP16_TFLOPS * 1e12 * ASSUMED_EFFICIENCY
    print(f"\nestimated: real ModelScope T2V 1.7B on a 24 GB GPU (assumed {throughput / 1e12:.1f} TFLOP/s sustained fp16, block checkpointing on)")
    print(f"{'stage':12} {'TFLOP/step':>10} {'s/step':>8} {'500 steps':>10}")
    for stage, count in flops.items():
        seconds = count * CHECKPOINTING_OVERHEAD / throughput
        print(f"{stage:12} {count / 1e12:>10.2f} {seconds:>8.3f} {seconds * STEPS / 60:>7.1f} min")
    print("\nreference: MotionDirector trains a comparable LoRA in 1.5–4.5 minutes on an A5000")


if __name__ == "__main__":
    main()
