"""Reading a job's result: the one reader, for the add-on, `evaluate` and the pipeline.

A result folder is complete once its manifest (`result_manifest.json`, written last by
engine/job/outputs.py) exists and vouches for the result.json beside it. No torch: the
Blender add-on reads results through this module.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import SketchAnimatorError
from ..vector.sketch import Sketch

RESULT_JSON = "result.json"
MANIFEST = "result_manifest.json"
MANIFEST_SCHEMA = "sketch-animator/result"
MANIFEST_VERSION = 3  # 3: written before the previews too ("previews": "pending" / "written"); 2: result.json metadata
# holds "timing" (each pose's time in the reference); 1 and 2 are still read


class ResultError(SketchAnimatorError):
    """A result folder is missing, unfinished or unreadable."""


def is_result_complete(out_dir: str | os.PathLike) -> bool:
    """True when the manifest exists and vouches for the result.json beside it (same size)."""
    out_dir = Path(out_dir)
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
        listed_size = manifest["files"][RESULT_JSON]
        actual_size = (out_dir / RESULT_JSON).stat().st_size
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return manifest.get("schema") == MANIFEST_SCHEMA and listed_size == actual_size


def require_complete_result(out_dir: str | os.PathLike) -> Path:
    """The path of a finished result's result.json; a one-line error for an unfinished one."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise ResultError(f"{out_dir} is not a folder: pass a result folder that holds {RESULT_JSON}")
    if not (out_dir / RESULT_JSON).is_file():
        raise ResultError(f"{out_dir} has no {RESULT_JSON}: pass the folder of a finished animation")
    if not is_result_complete(out_dir):
        raise ResultError(f"the result in {out_dir} is incomplete: run the job again to finish it")
    return out_dir / RESULT_JSON


def read_result(out_dir: str | os.PathLike) -> Sketch:
    """The animated sketch of a finished result (frames included); refuses an unfinished result."""
    animation = Sketch.load_json(require_complete_result(out_dir))
    if animation.frames is None:
        raise ResultError(f"{Path(out_dir) / RESULT_JSON} is a static sketch without frames: it is not an animation result")
    return animation
