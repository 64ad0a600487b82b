"""The layout's promises: every package says its job, no import cycles, and the Blender side
(operators, panels, the Grease Pencil bridge) never pulls in torch or the diffusion libraries."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "diffusers", "transformers", "peft")
BLENDER_SIDE = ("operators", "panels", "grease_pencil")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) or "__root__"


def python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def resolve(importer: str, is_package: bool, level: int, module: str | None) -> str:
    """The absolute (repository-relative) name a relative import refers to."""
    if not level:
        return module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def imports_of(path: Path, module_level_only: bool) -> set[str]:
    """Modules `path` imports (repository-relative names for relative imports); with
    `module_level_only`, only what runs at import time (not inside functions or TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name, is_package = module_name(path), path.name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and module_level_only:
                continue
            if isinstance(child, ast.If) and module_level_only and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                target = resolve(name, is_package, child.level, child.module)
                found.add(target)
                for alias in child.names:  # `from . import tiny` imports a module
                    candidate = f"{target}.{alias.name}"
                    if (ROOT / Path(*candidate.split("."))).with_suffix(".py").is_file() or (ROOT / Path(*candidate.split(".")) / "__init__.py").is_file():
                        found.add(candidate)
            visit(child, top)

    visit(tree, True)
    return found


def test_every_package_has_a_one_line_docstring_of_its_job() -> None:
    packages = [p for p in python_files("engine", *BLENDER_SIDE) if p.name == "__init__.py"]
    assert len(packages) >= 12, [module_name(p) for p in packages]
    for package in packages:
        docstring = ast.get_docstring(ast.parse(package.read_text(encoding="utf-8")))
        assert docstring, f"{module_name(package)} has no docstring"
        assert len(docstring.splitlines()[0]) > 20, f"{module_name(package)}: say the package's job in its first line"


def test_the_folders_are_the_parts_of_the_method() -> None:
    expected = {
        "engine/vector/raster.py",  # the rasterizer
        "engine/priors/diffusion.py",  # the SDS prior
        "engine/stages/motion.py",  # the motion LoRA
        "engine/backbones/modelscope.py",  # the ModelScope specifics
        "engine/job/pipeline.py",  # the job runner
        "grease_pencil/strokes.py",  # the Grease Pencil conversion
        "engine/cli.py",  # one command-line module
        "engine/settings.py",  # one source of settings
    }
    assert {p for p in expected if not (ROOT / p).is_file()} == set()
    flat = sorted(p.name for p in (ROOT / "engine").glob("*.py"))
    assert len(flat) <= 12, f"engine/ holds {len(flat)} loose modules again: {flat}"


def test_there_are_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {}
    for path in python_files("engine", *BLENDER_SIDE):
        name = module_name(path)
        graph[name] = {m for m in imports_of(path, module_level_only=True) if m.split(".")[0] in ("engine", *BLENDER_SIDE)}
    assert "engine.vector.sketch" in graph and graph["engine.job.pipeline"], "the graph must hold the engine's modules"

    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            target = target if target in graph else next((m for m in graph if target.startswith(m + ".")), target)
            if state.get(target) == 1:
                cycles.append(path[path.index(target) :] + [target])
            elif target in graph and not state.get(target):
                visit(target, path + [target])
        state[node] = 2

    for node in sorted(graph):
        if not state.get(node):
            visit(node, [node])
    assert cycles == [], cycles


def blender_side_engine_modules() -> list[str]:
    """Every engine or bridge module that the Blender side imports anywhere (functions included),
    followed through the bridge's own numpy modules; as names inside the extension package."""
    pending = [p for p in python_files(*BLENDER_SIDE)] + [ROOT / "__init__.py"]
    seen_files: set[Path] = set()
    wanted: set[str] = set()
    while pending:
        path = pending.pop()
        if path in seen_files:
            continue
        seen_files.add(path)
        for name in imports_of(path, module_level_only=False):
            if name.split(".")[0] not in ("engine", "grease_pencil"):
                continue
            file = ROOT / Path(*name.split("."))
            file = file / "__init__.py" if file.is_dir() else file.with_suffix(".py")
            if not file.is_file():
                continue
            source = file.read_text(encoding="utf-8")
            if "import bpy" in source:  # Blender-only: its own imports are followed, it is not imported here
                pending.append(file)
                continue
            wanted.add(name)
            if name.startswith("grease_pencil"):
                pending.append(file)
    return sorted(wanted)


def test_blender_side_imports_neither_torch_nor_the_diffusion_libraries() -> None:
    modules = blender_side_engine_modules()
    for required in ("engine.job.client", "engine.job.folder", "engine.job.results", "engine.settings", "engine.vector.svg", "grease_pencil.strokes", "grease_pencil.keyframes"):
        assert required in modules, (required, modules)
    code = f"""
import importlib, json, sys
sys.path.insert(0, {str(ROOT / "tests")!r})
from conftest import import_extension_package
import_extension_package()
for name in {json.dumps(modules)}:
    importlib.import_module("sketch_animator." + name)
print(json.dumps({{"heavy": sorted(m for m in {HEAVY!r} if m in sys.modules), "loaded": len(sys.modules)}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT / "tests", timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["heavy"] == [], f"the Blender side pulls in {report['heavy']}"


@pytest.mark.parametrize("folder", ["operators", "panels"])
def test_operators_and_panels_never_import_torch_directly(folder: str) -> None:
    for path in python_files(folder):
        heavy = {m for m in imports_of(path, module_level_only=False) if m.split(".")[0] in HEAVY}
        assert not heavy, (module_name(path), heavy)


def test_engine_never_imports_bpy() -> None:
    for path in python_files("engine"):
        assert not {m for m in imports_of(path, module_level_only=False) if m.split(".")[0] in ("bpy", "mathutils", "bmesh")}, module_name(path)
