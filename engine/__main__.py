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

    demo = commands.add_parser(
        "demo",
        help="render the example sketch and a procedural animation of it (no model needed)",
        description="Render examples/cat.svg to PNG and a swaying animation of it to GIF and MP4.",
    )
    demo.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default demo_out)")
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


def run_demo(args: argparse.Namespace) -> None:
    from .demo import sway_demo

    for path in sway_demo(EXAMPLES / "cat.svg", args.out):
        print(f"wrote {path}")


def check_output_suffix(path: Path) -> None:
    if path.suffix.lower() not in (".png", ".gif", ".mp4"):
        raise SketchAnimatorError(f"{path}: unknown output format {path.suffix!r}; use .png, .gif or .mp4")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except SketchAnimatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
