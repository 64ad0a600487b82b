"""The engine Python: what it needs, whether a given interpreter has it, and how to make one.

Blender's own Python has no torch, so the add-on runs the engine with another interpreter
(design.md §1). The requirements are read from the project's pyproject.toml (shipped inside
the extension), so there is one list, and installed at the versions the test suite passed with
(constraints.txt, shipped too); the check flags an environment outside them. Standard library
only: the add-on calls this.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]  # the folder that holds engine/ and pyproject.toml
MIN_PYTHON = (3, 10)
CONSTRAINTS_FILE = "constraints.txt"  # the versions the test suite passed with

# Run by the candidate interpreter: Python version, each requirement's installed version and
# whether it satisfies the specifier, and what torch can run on. Prints one JSON object.
_CHECK_SCRIPT = r"""
import json, re, sys
from importlib import metadata
try:
    from packaging.requirements import Requirement
except ImportError:
    try:
        from pip._vendor.packaging.requirements import Requirement
    except ImportError:
        Requirement = None
report = {"python": list(sys.version_info[:3]), "executable": sys.executable, "packages": {}, "problems": [], "untested": []}
for line in json.loads(sys.argv[3]):  # the tested versions (constraints.txt): flag what differs
    name, _, tested = line.partition("==")
    try:
        version = metadata.version(name)
    except metadata.PackageNotFoundError:
        continue
    if version.split("+")[0] != tested.split("+")[0]:
        report["untested"].append(f"{name} {version} (tested: {tested})")
for line in json.loads(sys.argv[1]):
    name, spec = re.match(r"[A-Za-z0-9_.-]+", line).group(0), ""
    if Requirement is not None:
        req = Requirement(line); name, spec = req.name, req.specifier
    try:
        version = metadata.version(name)
    except metadata.PackageNotFoundError:
        report["problems"].append(f"{name} is missing"); continue
    report["packages"][name] = version
    if spec and not spec.contains(version, prereleases=True):
        report["problems"].append(f"{name} {version} does not satisfy {line}")
if sys.argv[2] == "1" and "torch" in report["packages"]:
    try:
        import torch
        report["cuda"] = bool(torch.cuda.is_available())
        report["gpu"] = torch.cuda.get_device_name(0) if report["cuda"] else None
        report["mps"] = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    except Exception as exc:
        report["problems"].append(f"torch does not import: {type(exc).__name__}: {exc}")
print(json.dumps(report))
"""

# Run by a base interpreter (Blender's own): create the venv, then pip-install into it.
_SETUP_SCRIPT = r"""
import subprocess, sys, venv, json, os
folder, requirements, constraints = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
print(f"creating a virtual environment in {folder}", flush=True)
venv.EnvBuilder(with_pip=True, clear=False, upgrade_deps=False).create(folder)
python = os.path.join(folder, "Scripts", "python.exe") if os.name == "nt" else os.path.join(folder, "bin", "python")
if requirements:
    print("installing: " + " ".join(requirements) + " (torch is several GB: this takes minutes)", flush=True)
    tested = ["-c", constraints] if constraints else []  # the versions the engine's tests passed with
    code = subprocess.call([python, "-m", "pip", "install", "--progress-bar", "off", *tested, *requirements])
    if code:
        print(f"error: pip install failed (exit code {code}); see the lines above", flush=True)
        sys.exit(code)
print(f"ready: {python}", flush=True)
"""


@dataclass
class EnvironmentReport:
    """What `check_engine_python` found; `ok` when nothing is missing."""

    python: str
    version: tuple[int, ...] = ()
    packages: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    untested: list[str] = field(default_factory=list)  # installed versions outside constraints.txt
    cuda: bool | None = None
    gpu: str | None = None
    mps: bool | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """One line: what is missing and how to fix it, or what the engine will run on."""
        if self.problems:
            return f"{self.python}: " + "; ".join(self.problems) + " — press 'Create engine environment' or pip-install the engine's requirements there"
        device = f"CUDA ({self.gpu})" if self.cuda else "Apple MPS" if self.mps else "CPU only (slow: a GPU is advised)"
        version = ".".join(map(str, self.version))
        line = f"Python {version} with torch {self.packages.get('torch', '?')}, device: {device}"
        if self.untested:
            line += (
                f"; not the tested versions: {', '.join(self.untested)} — press 'Create engine environment', "
                f"or pip install -c {CONSTRAINTS_FILE} the engine's requirements there"
            )
        return line


def engine_requirements(pyproject: str | os.PathLike | None = None) -> list[str]:
    """The engine's requirements as pip specifiers, from pyproject.toml's [project] dependencies."""
    import tomllib

    path = Path(pyproject) if pyproject else ROOT / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return [str(line) for line in data["project"]["dependencies"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(f"cannot read the engine's requirements from {path} ({exc}): reinstall the extension") from None


def tested_versions(constraints: str | os.PathLike | None = None) -> list[str]:
    """The `name==version` pins of constraints.txt: the set the engine's test suite passed with."""
    path = Path(constraints) if constraints else ROOT / CONSTRAINTS_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [line.split("#")[0].strip() for line in lines if "==" in line.split("#")[0]]


def check_engine_python(
    python: str | os.PathLike, requirements: list[str] | None = None, probe_torch: bool = True, timeout_s: float = 120, tested: list[str] | None = None
) -> EnvironmentReport:
    """Ask `python` which of the engine's requirements it has (and, with probe_torch, its devices),
    in the same environment variables as a job gets, so the check sees what the job will see."""
    python = os.fspath(python)
    report = EnvironmentReport(python=python)
    if not python:
        report.problems.append("no engine Python is set")
        return report
    if not Path(python).is_file():
        report.problems.append("this file does not exist")
        return report
    requirements = engine_requirements() if requirements is None else requirements
    try:
        done = subprocess.run(
            [python, "-c", _CHECK_SCRIPT, json.dumps(requirements), "1" if probe_torch else "0", json.dumps(tested_versions() if tested is None else tested)],
            capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL, env=engine_environment(ROOT),
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        report.problems.append(f"cannot run it ({exc})")
        return report
    try:
        data: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        report.problems.append(f"it is not a working Python ({last})")
        return report
    report.version = tuple(data.get("python", ()))
    report.packages = dict(data.get("packages", {}))
    report.problems = list(data.get("problems", []))
    report.untested = list(data.get("untested", []))
    report.cuda, report.gpu, report.mps = data.get("cuda"), data.get("gpu"), data.get("mps")
    if report.version and report.version < MIN_PYTHON:
        report.problems.insert(0, f"Python {'.'.join(map(str, report.version))} is too old (the engine needs 3.10 or newer)")
    return report


def setup_command(folder: str | os.PathLike, requirements: list[str] | None = None, base_python: str | None = None) -> list[str]:
    """The command that creates a venv in `folder` and installs the engine's requirements into it,
    at the tested versions (constraints.txt, shipped beside pyproject.toml)."""
    requirements = engine_requirements() if requirements is None else requirements
    constraints = ROOT / CONSTRAINTS_FILE
    return [base_python or sys.executable, "-c", _SETUP_SCRIPT, os.fspath(folder), json.dumps(requirements), str(constraints) if constraints.is_file() else ""]


def venv_python(folder: str | os.PathLike) -> Path:
    folder = Path(folder)
    return folder / "Scripts" / "python.exe" if os.name == "nt" else folder / "bin" / "python"


def engine_environment(engine_root: str | os.PathLike) -> dict[str, str]:
    """The environment for another Python running the engine: `engine_root` (the folder that
    holds `engine/`) first on PYTHONPATH, unbuffered output so its log is live, and without
    Blender's PYTHONHOME/PYTHONSTARTUP, which would break another interpreter."""
    env = dict(os.environ)
    root = os.fspath(Path(engine_root).resolve())
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONHOME", None)
    env.pop("PYTHONSTARTUP", None)
    return env
