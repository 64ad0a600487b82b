"""A batch plan: sketches, motions and which sketch gets which motion, read from TOML or JSON.

    out = "storyboard"                 # the job folders go here (relative to the plan file)
    pairs = "all"                      # every sketch with every motion, or [["horse", "gallop"], …]

    [settings]                         # job.json settings for every job (quality, seed, num_frames, …)
    quality = "draft"

    [sketches.horse]
    file = "horse.svg"                 # an SVG or a sketch JSON …
    subject = "A horse."
    [sketches.rig]
    job = "jobs/rig"                   # … or a job folder written by the add-on (its sketch and settings)

    [motions.gallop]
    video = "gallop.mp4"
    prompt = "A horse is galloping."
    start = 1.5                        # seconds; also end, fit, frames, pose_rate

    jobs = ["jobs/a", "jobs/b"]        # job folders run as they are (Blender's "Animate selected")

Every pair becomes the job folder `out/<sketch>/<motion>/`. Everything is checked before
anything runs, and every mistake is one line naming the entry and the fix. No Ray, no torch.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import SketchAnimatorError
from ..job.folder import JOB_FILE, JobError, JobSpec, clear_job, job_differences, read_job, write_job
from ..jsondata import JSONInputError, check_depth, expect, read_json_file, read_text_file

PLAN_KEYS = ("out", "pairs", "settings", "sketches", "motions", "jobs")
SKETCH_KEYS = ("file", "job", "subject")
MOTION_KEYS = {"video": "video", "prompt": "motion_prompt", "start": "video_start_s", "end": "video_end_s", "fit": "video_fit",
               "frames": "num_frames", "pose_rate": "pose_rate"}  # fmt: skip
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_PLAN_BYTES = 4 * 2**20
MAX_PLAN_DEPTH = 16  # a plan nests a few tables deep


class PlanError(SketchAnimatorError):
    """A batch plan that cannot be run as written."""


@dataclass(frozen=True)
class PlannedJob:
    """One job of the batch: its name (`sketch/motion`, or the folder's name) and its folder."""

    name: str
    folder: Path


def read_plan_file(path: Path) -> dict[str, Any]:
    """The plan's data, from TOML (`.toml`) or JSON (anything else), read with the limits every JSON
    input has (engine/jsondata.py) and with duplicate keys refused."""
    what = f"the plan {path}"
    try:
        if path.suffix.lower() == ".toml":
            try:
                data = tomllib.loads(read_text_file(path, what, MAX_PLAN_BYTES))  # TOML itself refuses a table declared twice
            except (tomllib.TOMLDecodeError, RecursionError) as exc:
                raise PlanError(f"{what} is not valid TOML ({one_line(exc)})") from None
            check_depth(data, what, MAX_PLAN_DEPTH)
        else:
            data = read_json_file(path, what, MAX_PLAN_BYTES, MAX_PLAN_DEPTH, object_pairs_hook=refuse_duplicate_keys)
    except OSError as exc:
        raise PlanError(f"{what} cannot be read ({exc.strerror or exc}): check the path") from None
    except JSONInputError as exc:
        raise PlanError(str(exc)) from None
    if not isinstance(data, dict):
        raise PlanError(f"{what} must be a table of out, pairs, settings, sketches, motions, jobs")
    return data


def refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"the name {key!r} is given twice")
        seen[key] = value
    return seen


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def load_plan(path: str | os.PathLike, restart: bool = False) -> tuple[Path, list[PlannedJob]]:
    """Check the whole plan, then write (or keep) one job folder per pair; returns the output
    folder and the jobs. A folder that already holds the same job is kept (the batch continues
    it); one with other settings is refused unless `restart`."""
    path = Path(path).resolve()
    data = read_plan_file(path)
    base = path.parent
    unknown = sorted(set(data) - set(PLAN_KEYS))
    if unknown:
        raise PlanError(f"{path.name}: unknown key {unknown[0]!r}: a plan has {', '.join(PLAN_KEYS)}")
    out = base / plan_value(data.get("out", path.stem + "_jobs"), "str", "out")
    settings = plan_value(data.get("settings", {}), "object", "settings")
    sketches = named_tables(data.get("sketches", {}), "sketches", SKETCH_KEYS)
    motions = named_tables(data.get("motions", {}), "motions", tuple(MOTION_KEYS))
    listed = [check_job_folder(base / plan_value(item, "str", f"jobs[{i}]"), f"jobs[{i}]") for i, item in enumerate(plan_value(data.get("jobs", []), "list", "jobs"))]
    pairs = plan_pairs(data.get("pairs", "all"), sketches, motions)
    if not pairs and not listed:
        raise PlanError(f"{path.name} names no work: add [sketches.NAME] and [motions.NAME] tables (and pairs), or jobs = [folders]")

    loaded = {name: load_plan_sketch(name, table, base) for name, table in sketches.items() if any(name == s for s, _ in pairs)}
    planned = []
    for sketch_name, motion_name in pairs:
        sketch, spec = job_for_pair(sketch_name, loaded[sketch_name], motion_name, motions[motion_name], settings, base)
        planned.append((PlannedJob(f"{sketch_name}/{motion_name}", out / sketch_name / motion_name), sketch, spec))
    jobs = distinct_jobs([job for job, _, _ in planned] + [PlannedJob(folder.name, folder) for folder in listed])
    names = [job.name for job in jobs]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise PlanError(f"{path.name}: two jobs are named {clash[0]!r}: give the job folders different names")
    for planned_job, sketch, spec in planned:  # every check has passed: now write
        place_job(planned_job.folder, sketch, spec, restart)
    return out, jobs


def jobs_from_folders(folders: list[str | os.PathLike]) -> list[PlannedJob]:
    """Job folders run as they are (the add-on's "Animate selected"), named by their folders."""
    jobs = distinct_jobs([PlannedJob(Path(f).resolve().name, check_job_folder(Path(f).resolve(), str(f))) for f in folders])
    names = [job.name for job in jobs]
    if len(set(names)) < len(names):  # same folder name in different places: name them by their parent too
        jobs = [replace(job, name=f"{job.folder.parent.name}/{job.name}") for job in jobs]
    return jobs


def distinct_jobs(jobs: list[PlannedJob]) -> list[PlannedJob]:
    """The jobs, refusing one folder given twice (two tasks would fight over its lock)."""
    seen = [job.folder for job in jobs]
    duplicated = sorted({str(f) for f in seen if seen.count(f) > 1})
    if duplicated:
        raise PlanError(f"the job folder {duplicated[0]} is given twice: give each job once")
    return jobs


def plan_value(value: Any, kinds: str, field: str) -> Any:
    """`value` if it has the JSON kind `kinds` (jsondata.expect), else one line naming the plan's field."""
    try:
        return expect(value, kinds, field)
    except JSONInputError as exc:
        raise PlanError(f"the plan's {exc}") from None


def named_tables(value: Any, field: str, keys: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """`[sketches.NAME]` / `[motions.NAME]` tables, each name checked (it names a folder) and each key known."""
    tables = plan_value(value, "object", field)
    for name, table in tables.items():
        if not NAME.match(name):
            raise PlanError(f"{field}.{name!r} is not a usable name: use letters, digits, '_', '-' or '.', starting with a letter or digit")
        plan_value(table, "object", f"{field}.{name}")
        unknown = sorted(set(table) - set(keys))
        if unknown:
            raise PlanError(f"{field}.{name} has an unknown key {unknown[0]!r}: use {', '.join(keys)}")
    lowered = [name.lower() for name in tables]
    clash = sorted({name for name in tables if lowered.count(name.lower()) > 1})
    if clash:
        raise PlanError(f"{field}: the names {' and '.join(n for n in tables if n.lower() == clash[0].lower())} differ only in case: a folder is named after each")
    return tables


def plan_pairs(value: Any, sketches: dict, motions: dict) -> list[tuple[str, str]]:
    """Which sketch gets which motion: "all", or a list of [sketch, motion]."""
    if value == "all":
        return [(s, m) for s in sketches for m in motions]
    if not isinstance(value, list):
        raise PlanError(f"pairs must be \"all\" or a list of [sketch, motion], not {json.dumps(value)[:40]}")
    pairs = []
    for index, pair in enumerate(value):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(n, str) for n in pair)):
            raise PlanError(f"pairs[{index}] must be [sketch, motion], two names, not {json.dumps(pair)[:40]}")
        sketch, motion = pair
        for name, table, what in ((sketch, sketches, "sketch"), (motion, motions, "motion")):
            if name not in table:
                known = ", ".join(table) or "none yet"
                raise PlanError(f"pairs[{index}] names the {what} {name!r}, which the plan does not define: use one of {known}")
        if (sketch, motion) in pairs:
            raise PlanError(f"pairs[{index}] pairs {sketch} with {motion} a second time: list each pair once")
        pairs.append((sketch, motion))
    return pairs


def existing_file(base: Path, value: Any, field: str) -> Path:
    path = (base / plan_value(value, "str", field)).resolve()
    if not path.is_file():
        raise PlanError(f"{field} {value!r} does not exist (looked for {path}): fix the path, relative to the plan file")
    return path


def check_job_folder(folder: Path, field: str) -> Path:
    if not (folder / JOB_FILE).is_file():
        raise PlanError(f"{field} {folder} is not a job folder (no {JOB_FILE}): write it with Animate in Blender or `python -m engine animate`")
    return folder.resolve()


def load_plan_sketch(name: str, table: dict[str, Any], base: Path) -> tuple[Any, dict[str, Any]]:
    """A sketch entry's sketch and the job settings it brings (a job folder's own settings, the subject)."""
    from ..vector.load import load_sketch

    field = f"sketches.{name}"
    if ("file" in table) == ("job" in table):
        raise PlanError(f"{field} needs exactly one of file (an SVG or sketch JSON) or job (a job folder)")
    own: dict[str, Any] = {}
    try:
        if "file" in table:
            sketch = load_sketch(existing_file(base, table["file"], f"{field}.file"))
        else:
            folder = check_job_folder((base / plan_value(table["job"], "str", f"{field}.job")).resolve(), f"{field}.job")
            sketch, spec = read_job(folder)
            own = spec.to_dict()
    except PlanError:
        raise
    except (SketchAnimatorError, JSONInputError) as exc:
        raise PlanError(f"{field}: {exc}") from None
    if "subject" in table:
        own["subject_prompt"] = plan_value(table["subject"], "str", f"{field}.subject")
    return sketch, own


def job_for_pair(sketch_name: str, loaded: tuple[Any, dict], motion_name: str, motion: dict[str, Any], settings: dict, base: Path) -> tuple[Any, JobSpec]:
    """The pair's job settings: the sketch's own (a job folder's), then the plan's settings, then the motion."""
    sketch, own = loaded
    field = f"motions.{motion_name}"
    if "video" not in motion or "prompt" not in motion:
        raise PlanError(f"{field} needs video (a file) and prompt (what the motion is, e.g. \"A horse is galloping.\")")
    values = {key: value for key, value in own.items() if key not in ("schema", "version")}
    values.update(settings)
    values.update({MOTION_KEYS[key]: value for key, value in motion.items()})
    values["video"] = str(existing_file(base, motion["video"], f"{field}.video"))
    if values.get("cache_dir"):
        values["cache_dir"] = str((base / values["cache_dir"]).resolve())
    values.setdefault("subject_prompt", "")
    try:
        spec = JobSpec.from_dict({"schema": "sketch-animator/job", "version": 3, **values}, f"the job {sketch_name}/{motion_name}")
    except JobError as exc:
        raise PlanError(str(exc)) from None
    unknown = sorted(set(settings) - set(spec.to_dict()))
    if unknown:
        raise PlanError(f"settings has an unknown key {unknown[0]!r}: use the names of job.json (quality, seed, num_frames, resolution, steps, …)")
    from ..priors import prior_entry

    if prior_entry(spec.prior).uses_backbone and spec.method == "diffusion":
        if not spec.subject_prompt.strip():
            raise PlanError(f"sketches.{sketch_name} needs a subject (what the drawing shows, e.g. subject = \"A horse.\")")
        if not spec.motion_prompt.strip():
            raise PlanError(f"motions.{motion_name}.prompt is empty: say what moves and how, e.g. prompt = \"A horse is galloping.\"")
    return sketch, spec


def place_job(folder: Path, sketch: Any, spec: JobSpec, restart: bool) -> None:
    """Write the pair's job, keep the same job already there, refuse (or with `restart`, replace) another."""
    if (folder / JOB_FILE).is_file():
        differences = job_differences(folder, sketch, spec)
        if not differences:
            return
        if not restart:
            raise PlanError(f"{folder} already holds a job with other settings ({'; '.join(differences)}): run the batch with --restart to start it over")
        clear_job(folder)
    write_job(folder, sketch, spec)
