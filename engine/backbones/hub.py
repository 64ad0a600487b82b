"""Where models come from: a local folder or a Hugging Face hub id (offline), the download command,
and the embedded tiny model used when no real model is downloaded."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..settings import DEFAULT_MODEL
from .base import BackboneOptions, ModelError


def resolve_model_dir(model: str | os.PathLike = DEFAULT_MODEL, revision: str | None = None, cache_dir: str | None = None) -> Path:
    """The local folder of a model given by folder or hub id, without any network access."""
    path = Path(model).expanduser()
    if path.exists():
        return path
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", str(model)):
        raise ModelError(f"model {model!r} is neither a folder nor a Hugging Face model id (owner/name)")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id=str(model), revision=revision, cache_dir=cache_dir, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        raise ModelError(f"model {model} is not downloaded: run `python -m engine download {model}`") from None


def checked_model_dir(model: str | os.PathLike, options: BackboneOptions, backbone: str | None = None) -> Path:
    """The model's folder, checked to hold every file its backbone needs."""
    from . import choose_backbone

    folder = resolve_model_dir(model, options.revision, options.cache_dir)
    choose_backbone(folder, str(model), backbone).implementation_class().check_folder(folder, str(model))
    return folder


def model_or_embedded_tiny(model: str | None = None, options: BackboneOptions | None = None) -> tuple[str, str | None]:
    """The model to use and, when it is the embedded tiny one, a sentence that says so.

    An explicitly given model must exist (a `ModelError` otherwise); with none given, the
    default ModelScope model is used when downloaded, else the tiny random model.
    """
    options = options or BackboneOptions()
    if model is not None:
        return str(checked_model_dir(model, options)), None
    try:
        return str(checked_model_dir(DEFAULT_MODEL, options)), None
    except ModelError:
        from .tiny import ensure_tiny_model

        note = (
            f"{DEFAULT_MODEL} is not downloaded, so the embedded tiny model with random weights is used: "
            f"the motion it produces is meaningless. For real results run `python -m engine download` (about 3.5 GB)."
        )
        return str(ensure_tiny_model()), note


def download_model(model: str = DEFAULT_MODEL, revision: str | None = None, cache_dir: str | None = None, local_dir: str | None = None) -> Path:
    """Fetch only the files the model's backbone uses, with a progress bar, into the HF cache or `local_dir`."""
    from huggingface_hub import HfApi, snapshot_download

    from . import choose_backbone

    implementation = choose_backbone(Path(local_dir) if local_dir else Path(os.devnull), model).implementation_class()
    try:
        files = HfApi().list_repo_files(model, revision=revision)
    except Exception as exc:  # network errors, unknown repos: one line, not a traceback
        raise ModelError(f"cannot list the files of {model} on the Hugging Face Hub ({type(exc).__name__}): check the model id and your connection") from None
    wanted = implementation.select_download_files(files)
    try:
        folder = snapshot_download(repo_id=model, revision=revision, cache_dir=cache_dir, local_dir=local_dir, allow_patterns=wanted)
    except Exception as exc:
        raise ModelError(f"download of {model} failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}): run the command again to resume") from None
    implementation.check_folder(Path(folder), model)
    return Path(folder)
