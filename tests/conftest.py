"""Shared fixtures: the tiny text-to-video model, built once per test session; the extension importable as a package."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def import_extension_package() -> None:
    """The repository root is the extension: import it as the package `sketch_animator`, as Blender
    does (`bl_ext.<repo>.sketch_animator`), so the Blender-side numpy code (grease_pencil/) and its
    relative imports of the engine run in tests exactly as they run in Blender."""
    if "sketch_animator" in sys.modules:
        return
    spec = importlib.util.spec_from_file_location("sketch_animator", ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["sketch_animator"] = module
    spec.loader.exec_module(module)


import_extension_package()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random ModelScope-layout model folder (see engine/tiny.py)."""
    from engine.backbones.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-t2v", seed=0)


@pytest.fixture(scope="session")
def other_tiny_model_dir(tmp_path_factory) -> Path:
    """The same architecture with other random weights: a different base model."""
    from engine.backbones.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-t2v-other", seed=7)
