"""Reading a job's result: the one reader, for the add-on, `evaluate` and the pipeline.

A result folder is complete once its manifest (`result_manifest.json`, written by
engine/job/outputs.py) exists and every file it lists is there with its recorded content hash. No torch: the
Blender add-on reads results through this module.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..errors import SketchAnimatorError
from ..vector.sketch import Sketch

RESULT_JSON = "result.json"
MANIFEST = "result_manifest.json"
MANIFEST_SCHEMA = "sketch-animator/result"
MANIFEST_VERSION = 3  # 3: each file's size and sha256, written before the previews too ("previews": "pending" /
# "written"); 2: result.json metadata holds "timing" (each pose's time in the reference); 1 and 2 (sizes only) are still read


class ResultError(SketchAnimatorError):
    """A result folder is missing, unfinished or unreadable."""


def is_result_complete(out_dir: str | os.PathLike) -> bool:
    """True when the manifest exists and every file it lists is there, unchanged (its content hash)."""
    return result_damage(out_dir) is None


def result_damage(out_dir: str | os.PathLike) -> str | None:
    """None for a complete result; otherwise what is wrong, in a few words ("no manifest",
    "animation.gif is missing", "result.json has changed")."""
    out_dir = Path(out_dir)
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "no manifest"
    except (OSError, ValueError, RecursionError):
        return f"{MANIFEST} is unreadable"
    if not isinstance(manifest, dict) or manifest.get("schema") != MANIFEST_SCHEMA or not isinstance(manifest.get("files"), dict):
        return f"{MANIFEST} is not a result manifest"
    listed = manifest["files"]
    if RESULT_JSON not in listed:
        return f"{MANIFEST} does not list {RESULT_JSON}"
    for name, entry in listed.items():
        path = out_dir / name
        if not isinstance(name, str) or ".." in Path(name).parts or Path(name).is_absolute():
            return f"{MANIFEST} lists {name!r}, outside the result"
        if path.is_symlink() or not path.is_file():
            return f"{name} is missing"
        size, digest = (entry, None) if isinstance(entry, int) else (entry.get("size"), entry.get("sha256")) if isinstance(entry, dict) else (None, None)
        if size != path.stat().st_size or (digest is not None and digest != file_sha256(path)):
            return f"{name} has changed"
    return None


def file_sha256(path: str | os.PathLike) -> str:
    """The file's sha256, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def require_complete_result(out_dir: str | os.PathLike) -> Path:
    """The path of a finished result's result.json; a one-line error for an unfinished one."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise ResultError(f"{out_dir} is not a folder: pass a result folder that holds {RESULT_JSON}")
    if not (out_dir / RESULT_JSON).is_file():
        raise ResultError(f"{out_dir} has no {RESULT_JSON}: pass the folder of a finished animation")
    damage = result_damage(out_dir)
    if damage is not None:
        raise ResultError(f"the result in {out_dir} is incomplete ({damage}): run the job again to finish it")
    return out_dir / RESULT_JSON


def read_result(out_dir: str | os.PathLike) -> Sketch:
    """The animated sketch of a finished result (frames included); refuses an unfinished result."""
    animation = Sketch.load_json(require_complete_result(out_dir))
    if animation.frames is None:
        raise ResultError(f"{Path(out_dir) / RESULT_JSON} is a static sketch without frames: it is not an animation result")
    return animation
