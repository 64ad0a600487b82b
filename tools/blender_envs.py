"""Headless Blender for the tests: one virtual environment per supported version, with the
`bpy` wheel from PyPI (Blender as a Python module, about 1 GB installed each).

    python tools/blender_envs.py            # create .venv-blender/4.5 and .venv-blender/5.0
    python tools/blender_envs.py 5.0        # just one

The tests call `ensure_blender_env` themselves, so `pytest` alone is enough on a fresh clone;
this command is for doing it ahead (or for building the extension zip, which uses Blender's
own `blender_ext.py` from the wheel).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENVS = ROOT / ".venv-blender"
# The newest releases of each supported line that have wheels for Python 3.11 on PyPI.
BLENDER_VERSIONS = {"4.5": "4.5.15", "5.0": "5.0.1"}


def env_python(version: str) -> Path:
    return ENVS / version / "bin" / "python"


def ensure_blender_env(version: str, base_python: str | None = None) -> Path:
    """The Python of a venv with bpy `version`, created on first use."""
    if version not in BLENDER_VERSIONS:
        raise SystemExit(f"unknown Blender version {version!r}: use one of {', '.join(BLENDER_VERSIONS)}")
    python = env_python(version)
    marker = ENVS / version / "bpy-ready"
    if python.is_file() and marker.is_file():
        return python
    base = base_python or _python311()
    subprocess.run([base, "-m", "venv", "--clear", str(ENVS / version)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"bpy=={BLENDER_VERSIONS[version]}"],
        check=True,
    )
    marker.write_text(BLENDER_VERSIONS[version] + "\n")
    return python


def _python311() -> str:
    """bpy 4.5 and 5.0 wheels exist for CPython 3.11 only."""
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    for candidate in ("python3.11", "/usr/bin/python3.11", "/usr/local/bin/python3.11"):
        try:
            subprocess.run([candidate, "-c", "pass"], check=True, capture_output=True)
            return candidate
        except (OSError, subprocess.CalledProcessError):
            continue
    raise SystemExit("the bpy wheels need Python 3.11: install it (e.g. apt install python3.11-venv) and run again")


def main(argv: list[str]) -> int:
    for version in argv or list(BLENDER_VERSIONS):
        print(f"Blender {version}: {ensure_blender_env(version)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
