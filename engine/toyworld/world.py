"""The toy world: line drawings moving in known ways over a few frames, captioned from a small grammar.

A clip is one subject (engine/toyworld/subjects.py) performing one motion
(engine/toyworld/motions.py) at a random size, tilt, line width, speed and place, drawn with
the engine's own rasterizer exactly as stage 3 draws a sketch (black on white). Some subjects
are held out of training entirely (the sketches the protocol animates), and some subject ×
motion pairs are held out as well, so that a novel combination ("a star spinning clockwise")
can be told apart from a memorised one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..vector.sketch import Path, Sketch
from .motions import MOTIONS, NEUTRAL_PROMPT, PHRASES, MotionRanges, MotionTrack, apply_track, magnitude_range, motion_track
from .subjects import SUBJECTS, Subject, subject

HELD_OUT_SUBJECTS = ("tree", "car", "rocket", "flower", "cup", "lamp")
HELD_OUT_PAIRS = frozenset({
    ("star", "clockwise"), ("fish", "up"), ("house", "bounce"), ("arrow", "left"), ("heart", "grow"), ("circle", "down-right"),
    ("triangle", "counterclockwise"), ("boat", "right"), ("stick figure", "wave"), ("moon", "shrink"), ("kite", "down"), ("sun", "up-left"),
})  # fmt: skip


@dataclass(frozen=True)
class WorldConfig:
    """Sizes and ranges of the world; part of the toy model's recipe, so a change makes a new model."""

    canvas: int = 64  # px per side of a sketch's canvas (and of the frames)
    num_frames: int = 8
    subject_radius: tuple[float, float] = (11.0, 15.0)  # px: half the size of the unit box on the canvas
    tilt: float = 10.0  # ± degrees of a drawing's resting angle
    half_width: tuple[float, float] = (0.8, 1.1)  # px
    margin: float = 2.0  # px kept free at the canvas border over the whole clip
    placement: tuple[float, float] = (0.15, 0.85)  # where the clip's extent sits in the room the canvas leaves it (0.5: centred)
    ranges: MotionRanges = field(default_factory=MotionRanges)

    def to_dict(self) -> dict:
        return {
            "canvas": self.canvas, "num_frames": self.num_frames, "subject_radius": list(self.subject_radius), "tilt": self.tilt,
            "half_width": list(self.half_width), "margin": self.margin, "placement": list(self.placement), "ranges": {k: list(v) for k, v in vars(self.ranges).items()},
        }  # fmt: skip


def training_subjects() -> tuple[str, ...]:
    return tuple(name for name in SUBJECTS if name not in HELD_OUT_SUBJECTS)


def motions_for(subject_name: str) -> tuple[str, ...]:
    """The motions a subject can perform (waving needs an articulated part)."""
    return tuple(m for m in MOTIONS if m != "wave" or subject(subject_name).articulated)


def training_pairs() -> list[tuple[str, str]]:
    return [(s, m) for s in training_subjects() for m in motions_for(s) if (s, m) not in HELD_OUT_PAIRS]


def caption(subject_name: str, motion: str) -> str:
    return f"a {subject_name} {PHRASES[motion]}"


def subject_prompt(subject_name: str) -> str:
    return f"a {subject_name}"


def vocabulary() -> list[str]:
    """Every word a caption of the world can use (held-out subjects' names included)."""
    words = {"a"} | set(NEUTRAL_PROMPT.split())
    for name in SUBJECTS:
        words |= set(name.split())
    for phrase in PHRASES.values():
        words |= set(phrase.split())
    return sorted(words)


@dataclass
class ToyClip:
    """One subject moving: its first-frame sketch, every frame's control points, and the truth."""

    subject: str
    motion: str
    magnitude: float
    sketch: Sketch  # frame 0, canvas px
    frames: np.ndarray  # (F, P, 2)
    track: MotionTrack
    centre: np.ndarray  # (2,) the point rotations and scaling turn about, in frame 0
    size: float  # px, the subject's radius on the canvas

    @property
    def caption(self) -> str:
        return caption(self.subject, self.motion)

    def animation(self) -> Sketch:
        return self.sketch.with_frames(self.frames)


def subject_sketch(name: str, centre: tuple[float, float], radius: float, tilt_deg: float = 0.0, half_width: float = 1.0, canvas: int = 64) -> tuple[Sketch, np.ndarray | None, np.ndarray | None]:
    """The subject drawn on a canvas: its unit box scaled to `radius`, turned by `tilt_deg` about
    `centre`; with its part's point mask and its joint in canvas px when it is articulated."""
    item = subject(name)
    angle = math.radians(tilt_deg)
    c, s = math.cos(angle), math.sin(angle)
    place = lambda unit: (np.asarray(unit, float) * radius) @ np.array([[c, -s], [s, c]]).T + np.asarray(centre, float)  # noqa: E731
    paths = [Path(points=place(stroke.array()), closed=stroke.closed, half_width=half_width) for stroke in item.strokes]
    sketch = Sketch(paths=paths, width=canvas, height=canvas, metadata={"toy_subject": name})
    if not item.articulated:
        return sketch, None, None
    mask = np.concatenate([np.full(len(p.points), i in item.part) for i, p in enumerate(paths)])
    return sketch, mask, place(np.asarray(item.joint)[None])[0]


def make_clip(name: str, motion: str, magnitude: float, config: WorldConfig, radius: float, tilt: float, half_width: float, placement: np.ndarray) -> ToyClip:
    """The clip of `name` doing `motion`, placed by `placement` ∈ [0, 1]²: where inside the room the
    whole clip leaves on the canvas its bounding box goes (0.5, 0.5 centres it)."""
    if motion == "grow":
        radius *= 0.85
    elif motion == "shrink":
        radius *= 1.15
    middle = np.array([config.canvas / 2, config.canvas / 2])
    sketch, mask, joint = subject_sketch(name, middle, radius, tilt, half_width, config.canvas)
    track = motion_track(motion, config.num_frames, magnitude)
    frames = apply_track(sketch.flat_points(), track, middle, mask, joint)
    low, high = sketch.curve_bounds(frames).min(axis=0)[0], sketch.curve_bounds(frames).max(axis=0)[1]
    edge = config.margin + half_width
    room_low, room_high = edge - low, config.canvas - edge - high  # the shifts that keep the clip inside
    shift = np.where(room_high >= room_low, room_low + placement * (room_high - room_low), (room_low + room_high) / 2)
    frames = frames + shift
    return ToyClip(name, motion, magnitude, sketch.with_points(frames[0]), frames, track, middle + shift, radius)


def random_clip(rng: np.random.Generator, config: WorldConfig, pairs: list[tuple[str, str]]) -> ToyClip:
    name, motion = pairs[int(rng.integers(len(pairs)))]
    low, high = magnitude_range(motion, config.ranges)
    return make_clip(
        name, motion, float(rng.uniform(low, high)), config, radius=float(rng.uniform(*config.subject_radius)),
        tilt=float(rng.uniform(-config.tilt, config.tilt)), half_width=float(rng.uniform(*config.half_width)), placement=rng.uniform(*config.placement, 2),
    )  # fmt: skip


def render_clip(clip: ToyClip | Sketch, frame_size: int, frames: np.ndarray | None = None) -> np.ndarray:
    """(F, H, W) uint8 grey frames of a clip (or of a sketch with `frames`), drawn by the engine's rasterizer."""
    import torch

    from ..vector.render import model_view_renderer

    sketch, points = (clip.sketch, clip.frames) if isinstance(clip, ToyClip) else (clip, frames)
    renderer = model_view_renderer(sketch, (frame_size, frame_size))
    with torch.no_grad():
        rgb = renderer.render(renderer.to_render_space(torch.as_tensor(points, dtype=torch.float32)))
    return (rgb[:, 0].clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
