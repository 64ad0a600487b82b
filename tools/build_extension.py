"""Build the installable extension zip with Blender's own tool, and validate it.

    python tools/build_extension.py [--blender 5.0] [--out dist]

Blender's `blender_ext.py` (shipped inside the bpy wheel) validates blender_manifest.toml,
builds `dist/sketch_animator-<version>.zip` from the repository root (the root *is* the
extension; tests, benchmarks and virtual environments are excluded by the manifest) and
validates the zip. The one bundled wheel (defusedxml, for SVG import inside Blender) is
fetched from PyPI into wheels/ first.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from blender_envs import ROOT, ensure_blender_env  # noqa: E402


def manifest_wheels() -> list[str]:
    text = (ROOT / "blender_manifest.toml").read_text(encoding="utf-8")
    return re.findall(r'"\./wheels/([^"]+\.whl)"', text)


def fetch_wheels(python: Path) -> None:
    """Download the wheels the manifest lists (pure-Python, any platform) into wheels/."""
    for wheel in manifest_wheels():
        if (ROOT / "wheels" / wheel).is_file():
            continue
        name, version = wheel.split("-")[:2]
        subprocess.run(
            [str(python), "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", f"{name}=={version}", "-d", str(ROOT / "wheels")],
            check=True,
        )
        if not (ROOT / "wheels" / wheel).is_file():
            raise SystemExit(f"pip did not produce wheels/{wheel}")


def blender_ext_tool(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import bpy, os; print(os.path.join(bpy.utils.system_resource('SCRIPTS'), 'addons_core/bl_pkg/cli/blender_ext.py'))"],
        check=True, capture_output=True, text=True,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    return Path(out)


def build(blender: str = "5.0", out_dir: Path = ROOT / "dist") -> Path:
    python = ensure_blender_env(blender)
    fetch_wheels(python)
    tool = blender_ext_tool(python)
    out_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(python), str(tool), "validate", str(ROOT)], check=True)
    done = subprocess.run(
        [str(python), str(tool), "build", "--source-dir", str(ROOT), "--output-dir", str(out_dir)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    created = re.search(r'created: "([^"]+)"', done.stdout)
    if not created:
        raise SystemExit(f"blender_ext build said:\n{done.stdout}\n{done.stderr}")
    zip_path = Path(created.group(1))
    zip_path = zip_path if zip_path.is_absolute() else out_dir / zip_path.name
    subprocess.run([str(python), str(tool), "validate", str(zip_path)], check=True)
    return zip_path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blender", default="5.0", help="which Blender's build tool to use (4.5 or 5.0; the zips are identical)")
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder (default dist/)")
    args = parser.parse_args()
    print(build(args.blender, args.out.resolve()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
