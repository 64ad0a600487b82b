"""Rasterizer speed and memory: 16 frames of 256×256, N single-segment strokes of half-width 1.5.

Prints a table of forward and forward + backward seconds and peak extra memory for the
sparse rasterizer and, measured in the same run, the dense reference (every pixel against
every flattened piece, same coverage formula), with the ratio. The dense reference needs
tens of GB for 16 frames at once, so it is measured on one frame and multiplied by 16
(frames are independent, so its cost is linear in them); the table says so.

A second table measures the line-weight variants against uniform round caps in the same
run: a half-width per control point (a pressure stroke, 0.5 to 2.5 px), flat caps at both
ends, and both together, with each one's ratio to uniform round (the budget is 1.2×).

Each configuration runs in a fresh subprocess so that peak RSS (CPU) is its own.
Usage: python benchmarks/raster.py [--strokes 16 32 64] [--devices cpu cuda] [--threads 2]
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
FRAMES, SIZE, HALF_WIDTH = 16, 256, 1.5
VARIANTS = ("uniform round", "per-point widths", "flat caps", "per-point + flat")


def canvas_spanning_strokes(frames: int, strokes: int, seed: int = 0):
    """Random cubics whose end points lie on opposite halves of the canvas."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    start = torch.rand(frames, strokes, 1, 2, generator=generator) * SIZE * 0.4
    end = SIZE - torch.rand(frames, strokes, 1, 2, generator=generator) * SIZE * 0.4
    middle = torch.rand(frames, strokes, 2, 2, generator=generator) * SIZE
    return torch.cat([start, middle, end], dim=2)


def variant_arguments(variant: str, segments, seed: int = 1) -> tuple:
    """Half-widths and cap keywords of one variant, for `segments` `(F, N, 4, 2)`."""
    import torch

    per_point = variant in ("per-point widths", "per-point + flat")
    flat = variant in ("flat caps", "per-point + flat")
    if per_point:  # a pressure profile: 0.5 to 2.5 px, mean 1.5 like the uniform rows
        generator = torch.Generator().manual_seed(seed)
        widths = 0.5 + 2.0 * torch.rand(segments.shape[:-1], generator=generator)
        widths = widths.to(segments.device)
    else:
        widths = HALF_WIDTH
    caps = {}
    if flat:  # single-segment strokes: each segment both starts and ends its stroke
        ends = torch.ones(segments.shape[:-2], dtype=torch.bool, device=segments.device)
        caps = {"flat_start": ends, "flat_end": ends}
    return widths, caps


def measure_one(strokes: int, implementation: str, device: str, threads: int, variant: str = VARIANTS[0]) -> dict:
    """Run inside a subprocess: time forward and forward + backward, and the peak memory."""
    import torch

    sys.path.insert(0, str(ROOT))
    from engine.vector.raster import rasterize, rasterize_dense

    torch.set_num_threads(threads)
    frames = FRAMES if implementation == "sparse" else 1
    repeats = 3 if implementation == "sparse" else 1  # the dense reference takes minutes
    segments = canvas_spanning_strokes(FRAMES, strokes)[:frames].to(device)
    widths, caps = variant_arguments(variant, segments)
    rasterizer = rasterize if implementation == "sparse" else rasterize_dense  # dense: uniform round only

    def function(points, height: int, width: int):
        """The variant's widths and caps, cut to the frames and strokes of `points`."""
        frames_here, strokes_here = points.shape[:2]
        scale = widths if isinstance(widths, float) else widths[:frames_here, :strokes_here]
        flags = {name: flag[:frames_here, :strokes_here] for name, flag in caps.items()}
        return rasterizer(points, scale, height, width, **flags)

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    def forward() -> float:
        sync()
        start = time.perf_counter()
        with torch.no_grad():
            function(segments, SIZE, SIZE)
        sync()
        return time.perf_counter() - start

    def forward_backward() -> float:
        points = segments.clone().requires_grad_(True)
        sync()
        start = time.perf_counter()
        function(points, SIZE, SIZE).sum().backward()
        sync()
        return time.perf_counter() - start

    small = canvas_spanning_strokes(1, 1).to(device).requires_grad_(True)  # warm up kernels and autograd
    function(small, 32, 32).sum().backward()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    forward_backward()  # first full-size call: allocator warm-up, counted in the peak
    fwd = statistics.median(forward() for _ in range(repeats))
    fwd_bwd = statistics.median(forward_backward() for _ in range(repeats))
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    scale = FRAMES / frames
    return {"forward_s": fwd * scale, "forward_backward_s": fwd_bwd * scale, "peak_bytes": peak, "measured_frames": frames}


def run_child(strokes: int, implementation: str, device: str, threads: int, variant: str = VARIANTS[0]) -> dict:
    command = [sys.executable, __file__, "--child", str(strokes), implementation, device, "--threads", str(threads), "--variant", variant]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strokes", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when available")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2, the reference machine)")
    parser.add_argument("--no-dense", action="store_true", help="skip the dense reference")
    parser.add_argument("--no-variants", action="store_true", help="skip the line-weight and cap table")
    parser.add_argument("--child", nargs=3, metavar=("N", "IMPL", "DEVICE"), help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=VARIANTS, default=VARIANTS[0], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_one(int(args.child[0]), args.child[1], args.child[2], args.threads, args.variant)))
        return

    import torch

    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    print(f"rasterize: {FRAMES} frames × N strokes, {SIZE}×{SIZE}, half-width {HALF_WIDTH}, {args.threads} CPU threads, torch {torch.__version__}")
    print("dense reference: measured once on 1 frame, ×16 (it takes minutes per row)\n")
    header = f"{'device':6} {'N':>4} | {'sparse fwd':>10} {'fwd+bwd':>9} {'peak MB':>8} | {'dense fwd':>10} {'fwd+bwd':>9} {'peak MB':>8} | {'speed-up fwd+bwd':>16}"
    print(header)
    print("-" * len(header))
    for device in devices:
        for strokes in args.strokes:
            sparse = run_child(strokes, "sparse", device, args.threads)
            row = f"{device:6} {strokes:>4} | {sparse['forward_s']:>10.3f} {sparse['forward_backward_s']:>9.3f} {sparse['peak_bytes'] / 2**20:>8.0f} | "
            if args.no_dense:
                row += f"{'-':>10} {'-':>9} {'-':>8} | {'-':>16}"
            else:
                dense = run_child(strokes, "dense", device, args.threads)
                ratio = dense["forward_backward_s"] / sparse["forward_backward_s"]
                row += f"{dense['forward_s']:>10.2f} {dense['forward_backward_s']:>9.2f} {dense['peak_bytes'] / 2**20:>8.0f} | {ratio:>15.0f}×"
            print(row, flush=True)
    if not args.no_variants:
        print_variant_table(devices, args.strokes, args.threads)
    print("\nreference (diffvg CPU, 2 cores, N = 16, 2×2 samples/pixel): 1.7 s forward, 7.5 s forward + backward, ~350 MB")
    print("targets: N = 16 forward + backward < 2 s on 2 CPU cores, < 10 ms on a GPU")


def print_variant_table(devices: list[str], stroke_counts: list[int], threads: int) -> None:
    """Sparse forward + backward of each line-weight variant, and its ratio to uniform round."""
    print("\nline weight and caps (sparse, forward + backward s; ratio to uniform round caps, budget 1.2×)")
    header = f"{'device':6} {'N':>4} | " + " | ".join(f"{name:>16}" for name in VARIANTS)
    print(header)
    print("-" * len(header))
    for device in devices:
        for strokes in stroke_counts:
            times = {variant: run_child(strokes, "sparse", device, threads, variant)["forward_backward_s"] for variant in VARIANTS}
            reference = times[VARIANTS[0]]
            cells = [f"{reference:>15.3f}s"] + [f"{times[v]:>7.3f}s {times[v] / reference:>6.2f}×" for v in VARIANTS[1:]]
            print(f"{device:6} {strokes:>4} | " + " | ".join(f"{cell:>16}" for cell in cells), flush=True)


if __name__ == "__main__":
    main()
