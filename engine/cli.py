"""`python -m engine …`: the engine's command line.

Every expected failure (bad input, missing file, full disk) prints one line, `error: …`,
and exits with status 2; Ctrl-C exits with 130. Output files are written atomically, so a
failed command never leaves a partial file behind.
"""

from __future__ import annotations

import argparse
import signal
import sys
import warnings
from pathlib import Path
from typing import Any

from .errors import SketchAnimatorError, SketchAnimatorWarning
from .settings import (
    DEFAULT_CLIP,
    DEFAULT_MODEL,
    DEFAULT_NUM_FRAMES,
    DEFAULT_POSE_RATE,
    DEFAULT_QUALITY,
    DEFAULT_WINDOW_OVERLAP,
    DEFAULT_XCLIP,
    DISTILLATION_OPTIONS,
    FLOW_METHODS,
    LEGACY_FLOW_METHODS,
    QUALITY_PRESETS,
    RIGIDITIES,
    STAGES,
    DistillationSettings,
    LoraTrainingSettings,
    PreviewSettings,
    check_number,
)  # fmt: skip
from .vector.sketch import DEFAULT_CANVAS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m engine",
        description="Sketch Animator engine: bring vector sketches to life like a reference video.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    render = commands.add_parser(
        "render",
        help="render a sketch (SVG or JSON) to PNG, or an animated sketch to GIF/MP4",
        description="Render a sketch to an image. An animated sketch (JSON with frames) renders "
        "every frame to a GIF or MP4; a PNG gets the first frame (or --frame).",
    )
    render.add_argument("input", type=Path, help="the sketch: an .svg file or a sketch .json file")
    render.add_argument("-o", "--output", type=Path, required=True, help="output file: .png, .gif or .mp4")
    render.add_argument(
        "--size", type=int, default=None, help="longer side of the output in pixels (default: the sketch's canvas, 256 for SVG)"
    )
    render.add_argument("--canvas", type=int, default=DEFAULT_CANVAS, help=f"canvas size an SVG is mapped onto, in pixels (default {DEFAULT_CANVAS})")
    render.add_argument("--frame", type=int, default=None, help="with a .png output, which animation frame to draw (default 0)")
    render.add_argument("--fps", type=float, default=8.0, help="frames per second of a GIF or MP4 (default 8)")
    render.set_defaults(handler=run_render)

    download = commands.add_parser(
        "download",
        help="download the text-to-video model's weights (only the files the engine uses)",
        description="Fetch the configs, tokenizer and one weight file per component (fp16 where the "
        "repository has it) into the Hugging Face cache or a folder. Every other command runs offline.",
    )
    download.add_argument("model", nargs="?", default=None, help=f"hub id (default: {DEFAULT_MODEL})")
    download.add_argument("--revision", default=None, help="branch, tag or commit (default: main)")
    download.add_argument("--cache-dir", default=None, help="Hugging Face cache folder (default: the standard one)")
    download.add_argument("--dir", dest="local_dir", default=None, help="download into this plain folder instead of the cache")
    download.set_defaults(handler=run_download)

    appearance = commands.add_parser(
        "learn-appearance",
        help="stage 1: learn the sketch's appearance as a LoRA (cached)",
        description="Train the `appearance` LoRA on the rendered sketch with the subject prompt "
        "(paper eq. 5). A run with the same inputs is a cache hit; a killed run resumes.",
    )
    appearance.add_argument("--sketch", type=Path, required=True, help="the sketch: .svg or sketch .json")
    appearance.add_argument("--subject", required=True, help='a short subject prompt, e.g. "A horse."')
    appearance.add_argument("--no-augment", action="store_true", help="no scale/shift jitter of the drawing")
    add_training_options(appearance)
    appearance.set_defaults(handler=run_learn_appearance)

    motion = commands.add_parser(
        "learn-motion",
        help="stage 2: learn the reference video's motion as a LoRA (cached: a motion library)",
        description="Train `motion_spatial` on single frames and `motion_temporal` on the clip with "
        "the motion prompt (paper eqs. 6–7). The same video and settings are learned once.",
    )
    motion.add_argument("--video", type=Path, required=True, help="mp4, mov, webm, avi, gif or a folder of numbered images")
    motion.add_argument("--motion", required=True, help='a motion prompt, e.g. "A horse is galloping."')
    motion.add_argument("--frames", type=int, default=DEFAULT_NUM_FRAMES, help=f"frames sampled from the video (default {DEFAULT_NUM_FRAMES})")
    motion.add_argument("--start", type=float, default=None, help="start time in seconds (default: the beginning)")
    motion.add_argument("--end", type=float, default=None, help="end time in seconds (default: the end)")
    motion.add_argument("--fit", choices=("crop", "pad"), default="crop", help="fit frames to the model's frame shape by centre crop or white padding")
    motion.add_argument("--debiased", action="store_true", help="add MotionDirector's appearance-debiased temporal loss")
    add_training_options(motion)
    motion.set_defaults(handler=run_learn_motion)

    animate = commands.add_parser(
        "animate",
        help="animate a sketch like a reference video: stages 1–3 into a job folder",
        description="Create a job folder in --out and run it: learn the sketch's appearance and the "
        "video's motion (cached), then optimise the sketch's per-frame control points by score "
        "distillation. Run the same command, or `run DIR`, again to resume after a kill.",
    )
    animate.add_argument("--sketch", type=Path, required=True, help="the sketch: .svg or sketch .json")
    animate.add_argument("--video", type=Path, required=True, help="the reference video (mp4, mov, webm, avi, gif, image folder)")
    animate.add_argument("--subject", required=True, help='subject prompt for the sketch, e.g. "A horse."')
    animate.add_argument("--motion", required=True, help='motion prompt for the video, e.g. "A horse is galloping."')
    animate.add_argument("--out", type=Path, required=True, help="job folder; the result goes to OUT/result")
    animate.add_argument("--model", default=None, help="hub id or folder (default: ModelScope T2V if downloaded, else the embedded tiny model)")
    animate.add_argument("--frames", type=int, default=DEFAULT_NUM_FRAMES, help=f"output poses, sampled from the video (default {DEFAULT_NUM_FRAMES})")
    animate.add_argument("--pose-rate", type=float, default=None, help=f"poses per second of the chosen range instead of --frames (e.g. {DEFAULT_POSE_RATE:g}); long clips run as windows")
    animate.add_argument("--window", type=int, default=None, help="poses per window of the video model (default: its native clip length, 16 for ModelScope)")
    animate.add_argument("--window-overlap", type=int, default=DEFAULT_WINDOW_OVERLAP, help=f"poses consecutive windows share (default {DEFAULT_WINDOW_OVERLAP})")
    animate.add_argument("--max-minutes", type=float, default=None, help="refuse a plan expected to take longer than this, before anything runs")
    animate.add_argument("--start", type=float, default=None, help="video start time in seconds")
    animate.add_argument("--end", type=float, default=None, help="video end time in seconds")
    animate.add_argument("--fit", choices=("crop", "pad"), default="crop", help="fit video frames to the model's frame shape by crop or white padding")
    animate.add_argument("--init", choices=("static", "preview"), default="static", help="stage 3 starts from the sketch duplicated (static, the paper) or from the video's tracked motion (preview)")
    animate.add_argument("--quality", default=DEFAULT_QUALITY, help=f"{', '.join(QUALITY_PRESETS)}: training steps of each stage (default {DEFAULT_QUALITY})")
    animate.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    animate.add_argument("--resolution", type=int, default=None, help="longer side of the frames the model sees, in pixels (default: the model's own, 256 for ModelScope)")
    animate.add_argument("--backbone", default=None, help="which registered video model implementation to use (default: chosen for the model)")
    animate.add_argument("--prior", default="diffusion", help="what stage 3 optimises against: diffusion (SDS, the paper) or target-frames (an oracle)")
    animate.add_argument("--prior-option", action="append", default=[], metavar="KEY=VALUE", help="an option of the prior, e.g. targets=targets.json (target-frames)")
    animate.add_argument("--device", default="auto", help="auto, cuda, mps or cpu")
    animate.add_argument("--dtype", default="auto", help="auto, float16, bfloat16 or float32")
    animate.add_argument("--cache-dir", type=Path, default=None, help="adapter cache folder (default: the user cache)")
    for stage in STAGES:
        animate.add_argument(f"--{stage}-steps", type=int, default=None, help=f"override the preset's {stage} steps")
    d = DistillationSettings()
    sds = animate.add_argument_group("stage 3 (score distillation) options")
    sds.add_argument("--lr", type=float, default=None, help=f"Adam learning rate on control points in canvas units (default {d.lr:g}: ~0.5 px/step at 256)")
    sds.add_argument("--guidance", type=float, default=None, help=f"classifier-free guidance scale (default {d.guidance:g})")
    sds.add_argument("--t-min", type=int, default=None, help=f"smallest diffusion timestep (default {d.t_min})")
    sds.add_argument("--t-max", type=int, default=None, help=f"largest diffusion timestep (default {d.t_max})")
    sds.add_argument("--anneal-t", action="store_true", default=None, help="lower t-max linearly over the run")
    sds.add_argument("--weighting", choices=("sds", "uniform"), default=None, help="w(t): sds = 1 − ᾱ_t (default) or uniform")
    sds.add_argument("--appearance-weight", type=float, default=None, help=f"λ1 of the appearance LoRA (default {d.appearance_weight:g}; 0 = the paper's w/o A-LoRA)")
    sds.add_argument("--motion-weight", type=float, default=None, help=f"λ2 of the motion LoRA (default {d.motion_weight:g}; 0 = the paper's w/o M-LoRA)")
    sds.add_argument("--no-augment", dest="augment", action="store_false", default=None, help="no random crop/perspective augmentation")
    sds.add_argument("--periodic", action="store_true", default=None, help="a cycle (walk, gallop): the frame after the last is the first, so the loop is seamless")
    again = animate.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="--out already holds a job: continue it as it is (these settings are not used)")
    again.add_argument("--restart", action="store_true", help="--out already holds a job with other settings: start this one there instead (learned adapters stay in the cache)")
    animate.add_argument("--wait", action="store_true", help="if another process runs the job in --out, wait for it instead of refusing")
    animate.set_defaults(handler=run_animate)

    run = commands.add_parser("run", help="run or resume a job folder (what the Blender add-on starts)")
    run.add_argument("job_dir", type=Path, help="the job folder (with job.json)")
    run.add_argument("--wait", action="store_true", help="if another process runs this job, wait for it instead of refusing")
    run.set_defaults(handler=run_job_folder)

    add_batch_command(commands)
    add_cache_commands(commands)
    add_metrics_commands(commands)
    add_preview_command(commands)

    demo = commands.add_parser(
        "demo",
        help="animate the example sketch like a generated reference video (a couple of minutes on CPU)",
        description="Run the whole pipeline on examples/cat.svg and a generated bouncing-ball video with the "
        "demo preset (8 frames, 128 px). Uses ModelScope T2V if downloaded, else the embedded tiny model with "
        "random weights, whose motion is meaningless (it says so).",
    )
    demo.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default demo_out)")
    demo.add_argument("--model", default=None, help="hub id or folder (default: ModelScope T2V if downloaded, else the embedded tiny model)")
    demo.set_defaults(handler=run_demo)
    return parser


# --------------------------------------------------------------------------- batch
def add_batch_command(subparsers: Any) -> None:
    batch = subparsers.add_parser(
        "batch",
        help="animate many sketches with many motions as one graph on Ray (each motion learned once)",
        description="Run a plan (TOML or JSON: sketches, motions, which sketch gets which) or job folders as one batch on Ray: "
        "each distinct motion is learned once, each sketch's appearance once, and each pair's stage 3 starts as soon as both exist. "
        "A local Ray starts inside the command unless --address names a cluster. Running a batch again continues it.",
    )
    batch.add_argument("plan", type=Path, nargs="?", help="the plan file (.toml or .json); see the README for its layout")
    batch.add_argument("--job", type=Path, action="append", default=[], metavar="DIR", help="a job folder to run as it is (repeat for more; instead of or besides a plan)")
    batch.add_argument("--address", default=None, help="a Ray cluster to run on (e.g. ray://gpu-host:10001 or gpu-host:6379); default: a local Ray in this command")
    batch.add_argument("--workers", type=int, default=None, help="with the local Ray: jobs run at once (default: one per CPU core)")
    batch.add_argument("--restart", action="store_true", help="start over the plan's job folders that hold other settings (learned adapters stay in the cache)")
    batch.add_argument("--ship", action="store_true", help="send every job's files to its worker and its result back, even where a worker could read the folder")
    batch.set_defaults(handler=run_batch_command)


def run_batch_command(args: argparse.Namespace) -> None:
    from .batch.plan import PlanError, distinct_jobs, jobs_from_folders, load_plan
    from .batch.runner import BatchError, run_batch

    if args.plan is None and not args.job:
        raise PlanError("nothing to run: give a plan file, or job folders with --job DIR")
    if args.workers is not None and args.workers < 1:
        raise PlanError(f"--workers {args.workers}: use 1 or more")
    jobs, log_dir = [], None
    if args.plan is not None:
        log_dir, jobs = load_plan(args.plan, restart=args.restart)
    jobs = distinct_jobs(jobs + jobs_from_folders(args.job))
    log_dir = log_dir or jobs[0].folder.parent
    signal.signal(signal.SIGTERM, stop_on_sigterm)  # a cancelled batch stops its local Ray; the jobs keep their checkpoints
    report = run_batch(jobs, log_dir, address=args.address, workers=args.workers, ship=args.ship)
    for name in report.done:
        print(f"done: {name}: {next(j.folder for j in jobs if j.name == name) / 'result'}")
    if report.already:
        print(f"{len(report.already)} of {len(jobs)} jobs were already finished")
    for name, message in report.failed.items():
        print(f"failed: {name}: {message}", file=sys.stderr)
    if report.failed:
        raise BatchError(f"{len(report.failed)} of {len(jobs)} jobs failed ({', '.join(report.failed)}); the others are done: fix them and run the batch again")


def stop_on_sigterm(*_: Any) -> None:
    raise KeyboardInterrupt


# --------------------------------------------------------------------------- cache
def add_cache_commands(subparsers: Any) -> None:
    """Register `cache list` and `cache clear [--kind K] [--yes]` on the CLI's subparsers."""
    location = argparse.ArgumentParser(add_help=False)
    location.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="cache folder (default: $SKETCH_ANIMATOR_CACHE or the platform's user cache folder)",
    )
    cache = subparsers.add_parser(
        "cache",
        help="list or clear the cache of trained adapters (the motion library)",
        description="Trained adapters are cached by everything that determines them, so a video's "
        "motion is learned once and reused for every sketch.",
    )
    actions = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", parents=[location], help="show the cached adapters")
    listing.set_defaults(handler=run_cache_list)
    clear = actions.add_parser("clear", parents=[location], help="delete cached adapters")
    clear.add_argument("--kind", default=None, help="only delete entries of this kind (e.g. motion, appearance)")
    clear.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    clear.set_defaults(handler=run_cache_clear)


def cache_from_args(args: argparse.Namespace):
    from .backbones.adapter_cache import AdapterCache

    return AdapterCache(args.cache_dir / "adapters" if args.cache_dir is not None else None)


def run_cache_list(args: argparse.Namespace) -> None:
    from .backbones.adapter_cache import format_entries

    cache = cache_from_args(args)
    print(f"cache folder: {cache.root}")
    print(format_entries(cache.entries()))


def run_cache_clear(args: argparse.Namespace) -> None:
    from .backbones.adapter_cache import CacheError
    from .files import format_size

    cache = cache_from_args(args)
    targets = [entry for entry in cache.entries() if args.kind is None or entry.kind == args.kind]
    what = f"{len(targets)} {args.kind + ' ' if args.kind else ''}entr{'y' if len(targets) == 1 else 'ies'}"
    if not args.yes:
        if not sys.stdin.isatty():
            raise CacheError(f"refusing to delete {what} from {cache.root} without confirmation; add --yes")
        answer = input(f"delete {what} ({format_size(sum(e.size_bytes for e in targets))}) from {cache.root}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return
    removed = cache.clear(args.kind)
    print(f"deleted {len(removed)} entr{'y' if len(removed) == 1 else 'ies'} ({format_size(sum(e.size_bytes for e in removed))})")


# --------------------------------------------------------------------------- evaluate
def add_metrics_commands(subparsers: Any) -> None:
    """Register `evaluate DIR …` and `download-metrics …` on the CLI's subparsers."""
    evaluate = subparsers.add_parser(
        "evaluate",
        help="score an animation with the paper's metrics (appearance, motion, temporal consistency)",
        description="Compute the paper's Table I metrics of DIR/result.json with CLIP and X-CLIP, "
        "print them and write DIR/metrics.json and DIR/metrics.txt. Runs offline: fetch the models "
        "once with `python -m engine download-metrics`.",
    )
    evaluate.add_argument("result_dir", type=Path, metavar="DIR", help="a result folder holding result.json (an animated sketch)")
    evaluate.add_argument("--motion", default=None, metavar="PROMPT", help="motion prompt (default: the one recorded with the result)")
    evaluate.add_argument("--clip", default=DEFAULT_CLIP, metavar="MODEL", help=f"CLIP model: hub id or folder (default {DEFAULT_CLIP})")
    evaluate.add_argument("--xclip", default=DEFAULT_XCLIP, metavar="MODEL", help=f"X-CLIP model: hub id or folder (default {DEFAULT_XCLIP})")
    evaluate.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="where the models run (default auto)")
    evaluate.add_argument("--cache-dir", default=None, metavar="DIR", help="Hugging Face cache folder (default: the standard one)")
    evaluate.set_defaults(handler=run_evaluate)

    download = subparsers.add_parser(
        "download-metrics",
        help="download the CLIP and X-CLIP models that `evaluate` uses",
        description="Fetch configs, tokenizer, image processor and one weights file of each model into the Hugging Face cache.",
    )
    download.add_argument("--clip", default=DEFAULT_CLIP, metavar="MODEL", help=f"CLIP hub id (default {DEFAULT_CLIP})")
    download.add_argument("--xclip", default=DEFAULT_XCLIP, metavar="MODEL", help=f"X-CLIP hub id (default {DEFAULT_XCLIP})")
    download.add_argument("--cache-dir", default=None, metavar="DIR", help="Hugging Face cache folder (default: the standard one)")
    download.set_defaults(handler=run_download_metrics)


def run_evaluate(args: argparse.Namespace) -> None:
    from .metrics import METRICS_FILE, TABLE_FILE, evaluate_result, format_metrics_table

    report = evaluate_result(args.result_dir, args.motion, clip=args.clip, xclip=args.xclip, device=args.device, cache_dir=args.cache_dir)
    print(format_metrics_table(report))
    print(f"wrote {args.result_dir / METRICS_FILE} and {args.result_dir / TABLE_FILE}")


def run_download_metrics(args: argparse.Namespace) -> None:
    from .metrics import download_metric_models

    for model, folder in zip((args.clip, args.xclip), download_metric_models(args.clip, args.xclip, args.cache_dir)):
        print(f"{model} is ready in {folder}")


# --------------------------------------------------------------------------- preview
def add_preview_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register `preview` on the engine's command line (`python -m engine preview …`)."""
    parser = subparsers.add_parser(
        "preview",
        help="instant motion preview: move the sketch like the video's subject (no GPU, seconds)",
        description="Track the subject of the reference video (sub-pixel point tracks, the camera's motion removed) and "
        "move the sketch's control points the same way. No diffusion model: a quick look at the motion, written "
        "in the same result format as `animate` (result.json, per-frame SVG, GIF/MP4, side by side).",
    )
    parser.add_argument("--sketch", type=Path, required=True, help="the sketch: .svg or sketch .json")
    parser.add_argument("--video", type=Path, required=True, help="the reference video (mp4, mov, webm, avi, gif, image folder)")
    parser.add_argument("--out", type=Path, required=True, help="result folder (result.json, frames/, animation.gif, side_by_side.gif …)")
    d = PreviewSettings()
    parser.add_argument("--frames", type=int, default=d.num_frames, help=f"frames sampled from the video (default {d.num_frames})")
    parser.add_argument("--pose-rate", type=float, default=None, help="poses per second of the chosen range instead of --frames (no length limit)")
    parser.add_argument("--start", type=float, default=None, help="video start time in seconds (default: the beginning)")
    parser.add_argument("--end", type=float, default=None, help="video end time in seconds (default: the end)")
    parser.add_argument("--fit", choices=("crop", "pad"), default="crop", help="make video frames square by centre crop or white padding")
    parser.add_argument("--resolution", type=int, default=d.size, help=f"frame size the motion is tracked at in pixels (default {d.size})")
    parser.add_argument(
        "--rigidity", choices=RIGIDITIES, default=d.rigidity,
        help="similarity: one turn/scale/shift for the whole sketch; partwise: rigid parts; deformable: smooth bending (default)",
    )  # fmt: skip
    parser.add_argument("--strength", type=float, default=d.strength, help="scale of the motion: 0 still, 1 as in the video (default), 2 exaggerated")
    parser.add_argument(
        "--smoothing", type=float, default=d.temporal_smoothing,
        help=f"smoothing over time: Gaussian sigma in mean frame spacings, on each frame's real time (default {d.temporal_smoothing:g}; 0 = none)",
    )  # fmt: skip
    parser.add_argument("--keep-in-place", action="store_true", help="do not follow the subject across the frame: keep its turns and bending only")
    parser.add_argument(
        "--off-canvas", action="store_true",
        help="follow all of the subject's travel even where it carries the drawing off its canvas (default: the travel is scaled down to stay on it, with a warning)",
    )  # fmt: skip
    parser.add_argument(
        "--box", type=float, nargs=4, metavar=("X0", "Y0", "X1", "Y1"), default=None,
        help="the subject on the first frame, in pixels of the square --resolution frame (default: found from the motion)",
    )  # fmt: skip
    parser.add_argument(
        "--flow", choices=FLOW_METHODS + LEGACY_FLOW_METHODS, default=d.flow,
        help=f"point tracker (default {d.flow}: pyramidal Lucas–Kanade; dis and farneback, of earlier versions, now mean it too)",
    )  # fmt: skip
    parser.add_argument(
        "--substeps", type=int, default=d.flow_substeps, help=f"video frames tracked per output frame (default {d.flow_substeps}; more follows faster motion, but is slower)"
    )
    parser.add_argument("--seed", type=int, default=d.seed, help=f"random seed of the camera-motion fit (default {d.seed})")
    parser.add_argument("--events", type=Path, default=None, help="also append JSON-lines progress events to this file")
    parser.set_defaults(handler=run_preview_command)
    return parser


def run_preview_command(args: argparse.Namespace) -> None:
    from .job.events import EventLog
    from .media.reference import VideoSpec, poses_for_rate
    from .preview import preview_motion
    from .vector.load import load_sketch

    frames = args.frames
    if args.pose_rate is not None:
        check_number("--pose-rate", args.pose_rate, 0.1, 120.0)
        frames = poses_for_rate(VideoSpec(path=str(args.video), start_s=args.start, end_s=args.end), args.pose_rate)
    settings = PreviewSettings(
        rigidity=args.rigidity, strength=args.strength, temporal_smoothing=args.smoothing, follow_translation=not args.keep_in_place,
        subject_box=None if args.box is None else tuple(args.box), flow=args.flow, num_frames=frames, size=args.resolution, seed=args.seed,
        flow_substeps=args.substeps, keep_on_canvas=not args.off_canvas,
    )  # fmt: skip
    sketch = load_sketch(args.sketch)
    spec = settings.video_spec(args.video, args.start, args.end, args.fit)
    events = EventLog(args.events) if args.events else None
    result = preview_motion(sketch, spec, settings, args.out, events)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {result.files.out_dir} ({len(result.frames)} frames; open {result.files.side_by_side_gif or result.files.animation_gif})")


# --------------------------------------------------------------------------- the other commands
def run_render(args: argparse.Namespace) -> None:
    from .media.writers import save_frames
    from .vector.load import load_sketch
    from .vector.draw import render_sketch_frames
    from .vector.sketch import check_canvas

    check_output_suffix(args.output)
    if args.size is not None:
        check_canvas(args.size, args.size)
    sketch = load_sketch(args.input, size=args.canvas)
    if args.output.suffix.lower() == ".png" and sketch.frames is not None:
        index = args.frame or 0
        if not 0 <= index < sketch.num_frames:
            raise SketchAnimatorError(f"--frame {index} is out of range: the sketch has {sketch.num_frames} frames")
        sketch = sketch.frame(index)
    frames = render_sketch_frames(sketch, size=args.size)
    save_frames(frames, args.output, fps=args.fps)
    print(f"wrote {args.output} ({len(frames)} frame{'s' * (len(frames) != 1)}, {frames.shape[2]}×{frames.shape[1]})")


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by the LoRA stages; defaults from engine/settings.py."""
    d = LoraTrainingSettings()
    parser.add_argument("--model", default=None, help="hub id or folder (default: ModelScope T2V if downloaded, else the embedded tiny model)")
    parser.add_argument("--backbone", default=None, help="which registered video model implementation to use (default: chosen for the model)")
    parser.add_argument("--device", default="auto", help="auto, cuda, mps or cpu (default auto)")
    parser.add_argument("--dtype", default="auto", help="auto (fp16 on GPU, fp32 on CPU), float16, bfloat16 or float32")
    parser.add_argument("--steps", type=int, default=d.steps, help=f"training steps (default {d.steps}, as in the paper)")
    parser.add_argument("--lr", type=float, default=d.lr, help=f"AdamW learning rate (default {d.lr:g})")
    parser.add_argument("--rank", type=int, default=d.rank, help=f"LoRA rank (default {d.rank}; lower it to save memory)")
    parser.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    parser.add_argument("--resolution", type=int, default=None, help="longer side of the frames the model sees, in pixels (default: the model's own)")
    parser.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, help=f"save a resumable checkpoint every K steps (default {d.checkpoint_every})")
    parser.add_argument("--cache-dir", type=Path, default=None, help="adapter cache folder (default: the user cache)")
    parser.add_argument("--events", type=Path, default=None, help="also append JSON-lines progress events to this file")


def training_context(args: argparse.Namespace):
    """Backbone, cache and event log from the shared options (prints the tiny-model note)."""
    from .backbones import load_backbone
    from .backbones.adapter_cache import AdapterCache
    from .backbones.base import BackboneOptions
    from .backbones.hub import model_or_embedded_tiny
    from .job.events import EventLog

    options = BackboneOptions(device=args.device, dtype=args.dtype)
    model, note = model_or_embedded_tiny(args.model, options)
    if note:
        print(f"note: {note}", file=sys.stderr)
    cache = AdapterCache(args.cache_dir / "adapters" if args.cache_dir else None)
    events = EventLog(args.events) if args.events else None
    return load_backbone(model, options, args.backbone), cache, events


def training_settings(args: argparse.Namespace, settings_class, **extra):
    return settings_class(
        steps=args.steps, lr=args.lr, rank=args.rank, seed=args.seed, resolution=args.resolution, checkpoint_every=args.checkpoint_every, **extra
    )


def run_learn_appearance(args: argparse.Namespace) -> None:
    from .job.checkpoint import StopRequest
    from .settings import AppearanceSettings
    from .stages.appearance import learn_appearance
    from .vector.load import load_sketch

    sketch = load_sketch(args.sketch)
    settings = training_settings(args, AppearanceSettings, augment=not args.no_augment)
    backbone, cache, events = training_context(args)
    with StopRequest() as stop:
        path = learn_appearance(backbone, sketch, args.subject, settings, cache, events, stop)
    print(path)


def run_learn_motion(args: argparse.Namespace) -> None:
    from .job.checkpoint import StopRequest
    from .media.reference import VideoSpec, load_reference_frames
    from .settings import MotionSettings
    from .stages.motion import learn_motion

    settings = training_settings(args, MotionSettings, debiased_temporal=args.debiased)
    backbone, cache, events = training_context(args)
    height, width = backbone.frame_size_for(args.resolution)
    spec = VideoSpec(path=str(args.video), num_frames=args.frames, size=height, width=width, start_s=args.start, end_s=args.end, fit=args.fit)
    clip = load_reference_frames(spec)
    for warning in clip.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    with StopRequest() as stop:
        path = learn_motion(backbone, clip, spec, args.motion, settings, cache, events, stop)
    print(path)


def run_animate(args: argparse.Namespace) -> None:
    from .job.folder import JOB_FILE, JobSpec, clear_job, job_differences, write_job
    from .job.lock import JobLock
    from .job.pipeline import run_job
    from .vector.load import load_sketch

    steps = {stage: getattr(args, f"{stage}_steps") for stage in STAGES if getattr(args, f"{stage}_steps") is not None}
    distillation = {name: getattr(args, name) for name in sorted(DISTILLATION_OPTIONS) if getattr(args, name, None) is not None}
    spec = JobSpec(
        video=str(args.video.resolve()), subject_prompt=args.subject, motion_prompt=args.motion, num_frames=args.frames,
        video_start_s=args.start, video_end_s=args.end, video_fit=args.fit, model=args.model, quality=args.quality,
        seed=args.seed, resolution=args.resolution, device=args.device, dtype=args.dtype,
        cache_dir=str(args.cache_dir.resolve()) if args.cache_dir else None, steps=steps, distillation=distillation, init=args.init,
        prior=args.prior, prior_options=key_values(args.prior_option, "--prior-option"), backbone=args.backbone,
        pose_rate=args.pose_rate, window=args.window, window_overlap=args.window_overlap, max_minutes=args.max_minutes,
    )
    if (args.out / JOB_FILE).is_file() and not args.resume:
        sketch = load_sketch(args.sketch)
        differences = job_differences(args.out, sketch, spec)
        if differences and not args.restart:
            raise SketchAnimatorError(
                f"{args.out} already holds a job with other settings ({'; '.join(differences)}): "
                "add --resume to continue that job as it is, or --restart to start this one there (learned adapters stay in the cache)"
            )
        if differences:
            with JobLock(args.out, wait=args.wait):
                clear_job(args.out)
                write_job(args.out, sketch, spec)
    elif not (args.out / JOB_FILE).is_file():
        if args.resume:
            raise SketchAnimatorError(f"{args.out} holds no job to resume: leave out --resume to start one there")
        write_job(args.out, load_sketch(args.sketch), spec)
    print(f"result: {run_job(args.out, wait=args.wait)}")


def key_values(items: list[str], option: str) -> dict[str, str]:
    """KEY=VALUE strings as a dict; a string without '=' is a one-line error naming the option."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SketchAnimatorError(f"{option} {item!r} is not KEY=VALUE: write e.g. {option} targets=targets.json")
        out[key] = value
    return out


def run_job_folder(args: argparse.Namespace) -> None:
    from .job.pipeline import run_job

    print(f"result: {run_job(args.job_dir, wait=args.wait)}")


def run_download(args: argparse.Namespace) -> None:
    from .backbones.hub import download_model

    model = args.model or DEFAULT_MODEL
    folder = download_model(model, revision=args.revision, cache_dir=args.cache_dir, local_dir=args.local_dir)
    print(f"{model} is ready in {folder}")


def run_demo(args: argparse.Namespace) -> None:
    from .demo import run_demo as demo

    for path in demo(EXAMPLES / "cat.svg", args.out, args.model):
        print(f"wrote {path}")
    print(f"open {args.out / 'job' / 'result' / 'side_by_side.gif'} to see the sketch next to the reference video")


def check_output_suffix(path: Path) -> None:
    if path.suffix.lower() not in (".png", ".gif", ".mp4"):
        raise SketchAnimatorError(f"{path}: unknown output format {path.suffix!r}; use .png, .gif or .mp4")


def show_warning_line(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: str | None = None) -> None:
    """Our warnings as one line, `warning: …`, without the file, line number and code of where
    they rose; the libraries' own (torch, diffusers, peft explaining themselves) are not shown,
    so nothing but our one line comes before an error."""
    if issubclass(category, SketchAnimatorWarning):
        text = " ".join(str(message).split())
        print(f"warning: {text}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    warnings.showwarning = show_warning_line
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except SketchAnimatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
