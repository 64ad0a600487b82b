"""`python -m engine …`: the engine's command line.

Every expected failure (bad input, missing file, full disk) prints one line, `error: …`,
and exits with status 2; Ctrl-C exits with 130. Output files are written atomically, so a
failed command never leaves a partial file behind.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import SketchAnimatorError

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
    render.add_argument("--canvas", type=int, default=256, help="canvas size an SVG is mapped onto, in pixels (default 256)")
    render.add_argument("--frame", type=int, default=None, help="with a .png output, which animation frame to draw (default 0)")
    render.add_argument("--fps", type=float, default=8.0, help="frames per second of a GIF or MP4 (default 8)")
    render.set_defaults(handler=run_render)

    download = commands.add_parser(
        "download",
        help="download the text-to-video model's weights (only the files the engine uses)",
        description="Fetch the configs, tokenizer and one weight file per component (fp16 where the "
        "repository has it) into the Hugging Face cache or a folder. Every other command runs offline.",
    )
    download.add_argument("model", nargs="?", default=None, help="hub id (default: ali-vilab/text-to-video-ms-1.7b)")
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
    add_training_options(appearance, steps=500)
    appearance.set_defaults(handler=run_learn_appearance)

    motion = commands.add_parser(
        "learn-motion",
        help="stage 2: learn the reference video's motion as a LoRA (cached: a motion library)",
        description="Train `motion_spatial` on single frames and `motion_temporal` on the clip with "
        "the motion prompt (paper eqs. 6–7). The same video and settings are learned once.",
    )
    motion.add_argument("--video", type=Path, required=True, help="mp4, mov, webm, avi, gif or a folder of numbered images")
    motion.add_argument("--motion", required=True, help='a motion prompt, e.g. "A horse is galloping."')
    motion.add_argument("--frames", type=int, default=16, help="frames sampled from the video (default 16)")
    motion.add_argument("--start", type=float, default=None, help="start time in seconds (default: the beginning)")
    motion.add_argument("--end", type=float, default=None, help="end time in seconds (default: the end)")
    motion.add_argument("--fit", choices=("crop", "pad"), default="crop", help="make frames square by centre crop or white padding")
    motion.add_argument("--debiased", action="store_true", help="add MotionDirector's appearance-debiased temporal loss")
    add_training_options(motion, steps=500)
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
    animate.add_argument("--frames", type=int, default=16, help="output frames, sampled from the video (default 16)")
    animate.add_argument("--start", type=float, default=None, help="video start time in seconds")
    animate.add_argument("--end", type=float, default=None, help="video end time in seconds")
    animate.add_argument("--fit", choices=("crop", "pad"), default="crop", help="make video frames square by crop or white padding")
    animate.add_argument("--init", choices=("static", "preview"), default="static", help="stage 3 starts from the sketch duplicated (static, the paper) or from the video's tracked motion (preview)")
    animate.add_argument("--quality", default="standard", help="demo, draft, standard or paper: training steps of each stage")
    animate.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    animate.add_argument("--resolution", type=int, default=256, help="frame size the model sees in pixels (default 256)")
    animate.add_argument("--device", default="auto", help="auto, cuda, mps or cpu")
    animate.add_argument("--dtype", default="auto", help="auto, float16, bfloat16 or float32")
    animate.add_argument("--cache-dir", type=Path, default=None, help="adapter cache folder (default: the user cache)")
    for stage in ("appearance", "motion", "distillation"):
        animate.add_argument(f"--{stage}-steps", type=int, default=None, help=f"override the preset's {stage} steps")
    sds = animate.add_argument_group("stage 3 (score distillation) options")
    sds.add_argument("--lr", type=float, default=None, help="Adam learning rate on control points in canvas units (default 2e-3: ~0.5 px/step at 256)")
    sds.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale (default 35)")
    sds.add_argument("--t-min", type=int, default=None, help="smallest diffusion timestep (default 50)")
    sds.add_argument("--t-max", type=int, default=None, help="largest diffusion timestep (default 950)")
    sds.add_argument("--anneal-t", action="store_true", default=None, help="lower t-max linearly over the run")
    sds.add_argument("--weighting", choices=("sds", "uniform"), default=None, help="w(t): sds = 1 − ᾱ_t (default) or uniform")
    sds.add_argument("--appearance-weight", type=float, default=None, help="λ1 of the appearance LoRA (default 0.5; 0 = the paper's w/o A-LoRA)")
    sds.add_argument("--motion-weight", type=float, default=None, help="λ2 of the motion LoRA (default 1.0; 0 = the paper's w/o M-LoRA)")
    sds.add_argument("--no-augment", dest="augment", action="store_false", default=None, help="no random crop/perspective augmentation")
    animate.set_defaults(handler=run_animate)

    run = commands.add_parser("run", help="run or resume a job folder (what the Blender add-on starts)")
    run.add_argument("job_dir", type=Path, help="the job folder (with job.json)")
    run.set_defaults(handler=run_job_folder)

    from .cache import add_cache_commands
    from .metrics import add_metrics_commands
    from .preview import add_preview_command

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


def run_render(args: argparse.Namespace) -> None:
    from .media import save_frames
    from .render import render_sketch_frames
    from .sketch import check_canvas, load_sketch

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


def add_training_options(parser: argparse.ArgumentParser, steps: int) -> None:
    """Options shared by the LoRA stages."""
    parser.add_argument("--model", default=None, help="hub id or folder (default: ModelScope T2V if downloaded, else the embedded tiny model)")
    parser.add_argument("--device", default="auto", help="auto, cuda, mps or cpu (default auto)")
    parser.add_argument("--dtype", default="auto", help="auto (fp16 on GPU, fp32 on CPU), float16, bfloat16 or float32")
    parser.add_argument("--steps", type=int, default=steps, help=f"training steps (default {steps}, as in the paper)")
    parser.add_argument("--lr", type=float, default=5e-4, help="AdamW learning rate (default 5e-4)")
    parser.add_argument("--rank", type=int, default=32, help="LoRA rank (default 32; lower it to save memory)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--resolution", type=int, default=256, help="frame size the model sees in pixels (default 256)")
    parser.add_argument("--checkpoint-every", type=int, default=50, help="save a resumable checkpoint every K steps (default 50)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="adapter cache folder (default: the user cache)")
    parser.add_argument("--events", type=Path, default=None, help="also append JSON-lines progress events to this file")


def training_context(args: argparse.Namespace):
    """Backbone, cache and event log from the shared options (prints the tiny-model note)."""
    from .backbone import BackboneOptions, load_backbone, model_or_embedded_tiny
    from .cache import AdapterCache
    from .events import EventLog

    options = BackboneOptions(device=args.device, dtype=args.dtype)
    model, note = model_or_embedded_tiny(args.model, options)
    if note:
        print(f"note: {note}", file=sys.stderr)
    cache = AdapterCache(args.cache_dir / "adapters" if args.cache_dir else None)
    events = EventLog(args.events) if args.events else None
    return load_backbone(model, options), cache, events


def training_settings(args: argparse.Namespace, settings_class, **extra):
    return settings_class(
        steps=args.steps, lr=args.lr, rank=args.rank, seed=args.seed, resolution=args.resolution, checkpoint_every=args.checkpoint_every, **extra
    )


def run_learn_appearance(args: argparse.Namespace) -> None:
    from .appearance import AppearanceSettings, learn_appearance
    from .checkpoint import StopRequest
    from .sketch import load_sketch

    sketch = load_sketch(args.sketch)
    settings = training_settings(args, AppearanceSettings, augment=not args.no_augment)
    backbone, cache, events = training_context(args)
    with StopRequest() as stop:
        path = learn_appearance(backbone, sketch, args.subject, settings, cache, events, stop)
    print(path)


def run_learn_motion(args: argparse.Namespace) -> None:
    from .checkpoint import StopRequest
    from .motion import MotionSettings, learn_motion
    from .video import VideoSpec, load_reference_frames

    spec = VideoSpec(path=str(args.video), num_frames=args.frames, size=args.resolution, start_s=args.start, end_s=args.end, fit=args.fit)
    clip = load_reference_frames(spec)
    for warning in clip.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    settings = training_settings(args, MotionSettings, debiased_temporal=args.debiased)
    backbone, cache, events = training_context(args)
    with StopRequest() as stop:
        path = learn_motion(backbone, clip, spec, args.motion, settings, cache, events, stop)
    print(path)


def run_animate(args: argparse.Namespace) -> None:
    from .pipeline import JobSpec, run_job, write_job
    from .sketch import load_sketch

    steps = {stage: getattr(args, f"{stage}_steps") for stage in ("appearance", "motion", "distillation") if getattr(args, f"{stage}_steps") is not None}
    options = ("lr", "guidance", "t_min", "t_max", "anneal_t", "weighting", "appearance_weight", "motion_weight", "augment")
    distillation = {name: getattr(args, name) for name in options if getattr(args, name) is not None}
    spec = JobSpec(
        video=str(args.video.resolve()), subject_prompt=args.subject, motion_prompt=args.motion, num_frames=args.frames,
        video_start_s=args.start, video_end_s=args.end, video_fit=args.fit, model=args.model, quality=args.quality,
        seed=args.seed, resolution=args.resolution, device=args.device, dtype=args.dtype,
        cache_dir=str(args.cache_dir.resolve()) if args.cache_dir else None, steps=steps, distillation=distillation, init=args.init,
    )
    if not (args.out / "job.json").is_file():
        write_job(args.out, load_sketch(args.sketch), spec)
    print(f"result: {run_job(args.out)}")


def run_job_folder(args: argparse.Namespace) -> None:
    from .pipeline import run_job

    print(f"result: {run_job(args.job_dir)}")


def run_download(args: argparse.Namespace) -> None:
    from .backbone import DEFAULT_MODEL, download_model

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


def main(argv: list[str] | None = None) -> int:
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
