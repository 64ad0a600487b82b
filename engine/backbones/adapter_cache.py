"""Content-addressed cache of trained adapters: a video's motion is learned once, reused for every sketch.

A key is a hash of everything that determines the adapter (model and revision, input content
hash, prompt, sampling, hyperparameters, stage version), so equal settings find the same entry
and any change misses. An entry is a folder `<root>/<key>/` holding the adapter files and a
`manifest.json` written last; a folder without a valid manifest is not an entry.

Entries appear atomically: `store` writes into a hidden temporary sibling (`.tmp-…`) and
renames it into place, so a crash or a full disk leaves no half-written entry, only a
temporary folder that later calls remove once it is stale. Two processes storing the same key
both succeed: the second rename fails and that writer uses the first writer's entry.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import SketchAnimatorError
from ..files import DISK_FULL, atomic_write_text, disk_full_detail, format_size, write_files
from ..jsondata import to_json_value

KEY_FORMAT_VERSION = 1  # part of every hash: bump it if `canonical` changes
KEY_HEX_CHARS = 24
MANIFEST = "manifest.json"
TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"
STALE_AFTER_S = 3600.0  # a temporary folder untouched this long belongs to a crashed writer
RESERVED_MANIFEST_KEYS = ("key", "kind", "created", "files")


class CacheError(SketchAnimatorError):
    """The cache folder cannot be written or read."""


# --------------------------------------------------------------------------- keys


def cache_key(kind: str, parts: Mapping[str, Any]) -> str:
    """`kind-<24 hex>`: a sha256 of the canonical JSON of `{kind, parts}`.

    Canonical means sorted keys, floats written with `repr` (so 0.1 stays 0.1 and 1.0 stays
    distinct from 1), numpy scalars as Python numbers, tuples as lists. Anything else that is
    not plain data (an object, a function) raises TypeError rather than hashing its id.
    """
    check_kind(kind)
    document = {"version": KEY_FORMAT_VERSION, "kind": kind, "parts": canonical(dict(parts))}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return f"{kind}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:KEY_HEX_CHARS]}"


def canonical(value: Any) -> Any:
    """JSON data that is equal exactly when the inputs mean the same settings."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic):
        return canonical(value.item())
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return {"float": repr(float(value))}
    if isinstance(value, enum.Enum):
        return canonical(value.value)
    if isinstance(value, PurePath):
        return value.as_posix()
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"cache key parts need string keys, got {key!r}")
        return {key: canonical(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(item) for item in value]
    if isinstance(value, (set, frozenset)):
        items = [canonical(item) for item in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    if isinstance(value, np.ndarray):
        return {"array": str(value.dtype), "shape": list(value.shape), "data": canonical(value.tolist())}
    if hasattr(value, "to_dict") and not isinstance(value, type):  # a class's own layout first (VideoSpec drops an unset width)
        return canonical(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return canonical(dataclasses.asdict(value))
    raise TypeError(f"cannot use a {type(value).__name__} in a cache key; pass plain data (numbers, strings, lists, dicts)")


def check_kind(kind: str) -> None:
    if not (kind and kind[0].isascii() and kind[0].islower() and all(c.isascii() and (c.islower() or c.isdigit() or c in "_-") for c in kind)):
        raise ValueError(f"cache kind must be lower-case letters, digits, '_' or '-', starting with a letter; got {kind!r}")


def check_key(key: str) -> None:
    kind, _, digest = key.rpartition("-")
    if not kind or len(digest) != KEY_HEX_CHARS or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"not a cache key: {key!r}")
    check_kind(kind)


def kind_of(key: str) -> str:
    return key.rpartition("-")[0]


# --------------------------------------------------------------------------- location


def default_cache_dir() -> Path:
    """`$SKETCH_ANIMATOR_CACHE`, else the platform's per-user cache folder."""
    override = os.environ.get("SKETCH_ANIMATOR_CACHE")
    if override:
        return Path(override).expanduser()
    if sys.platform.startswith("win"):
        local = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(local) / "sketch-animator" / "cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "sketch-animator"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "sketch-animator"


# --------------------------------------------------------------------------- the cache


@dataclass
class CacheEntry:
    key: str
    kind: str
    path: Path
    created: float  # unix seconds
    size_bytes: int
    manifest: dict[str, Any]

    @property
    def summary(self) -> str:
        """The manifest's `description`, else its first few plain fields."""
        if self.manifest.get("description"):
            return str(self.manifest["description"])
        fields = [
            f"{name}={value}"
            for name, value in self.manifest.items()
            if name not in RESERVED_MANIFEST_KEYS and isinstance(value, (str, int, float, bool))
        ]
        return ", ".join(fields)


class AdapterCache:
    """Folders of trained adapter files, one per key; see the module docstring for guarantees."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir() / "adapters"

    def path_for(self, key: str) -> Path:
        check_key(key)
        return self.root / key

    def lookup(self, key: str) -> Path | None:
        """The entry's folder if it is complete (manifest present, listed files intact), else None."""
        path = self.path_for(key)
        manifest = read_manifest(path)
        if manifest is None or manifest.get("key") != key:
            return None
        for name, size in manifest.get("files", {}).items():
            file = path / name
            if not file.is_file() or file.stat().st_size != size:
                return None
        return path

    def store(self, key: str, write_fn: Callable[[Path], None], manifest: Mapping[str, Any] | None = None) -> Path:
        """Create the entry by calling `write_fn(folder)`, or return the existing one.

        `write_fn` writes the adapter files into the folder it is given; the manifest is added
        after it returns. Disk full or any other write failure raises CacheError and leaves
        no entry behind.
        """
        existing = self.lookup(key)
        if existing is not None:
            return existing
        manifest = dict(manifest or {})
        clash = [name for name in RESERVED_MANIFEST_KEYS if name in manifest]
        if clash:
            raise ValueError(f"manifest field {clash[0]!r} is set by the cache; rename it")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.remove_stale_temporaries()
            staging = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{key}-", dir=self.root))
        except OSError as exc:
            raise cache_write_error(self.root, key, exc) from None
        try:
            write_fn(staging)
            fsync_tree(staging)
            files = {str(p.relative_to(staging).as_posix()): p.stat().st_size for p in sorted(staging.rglob("*")) if p.is_file()}
            document = {"key": key, "kind": kind_of(key), "created": time.time(), "files": files, **manifest}
            atomic_write_text(staging / MANIFEST, json.dumps(canonical_manifest(document), indent=2, sort_keys=True))
            return self.publish(staging, key)
        except OSError as exc:
            raise cache_write_error(self.root, key, exc) from None
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def install(self, key: str, files: Mapping[str, bytes]) -> Path:
        """Put an entry made elsewhere (its files, manifest included, as `files.read_files` gives
        them) into this cache, as atomically as `store`; an entry already here is kept."""
        existing = self.lookup(key)
        if existing is not None:
            return existing
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{key}-", dir=self.root))
        except OSError as exc:
            raise cache_write_error(self.root, key, exc) from None
        try:
            fsync_tree(write_files(staging, dict(files)))
            return self.publish(staging, key)
        except OSError as exc:
            raise cache_write_error(self.root, key, exc) from None
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def publish(self, staging: Path, key: str) -> Path:
        """Rename a finished folder into place; if another writer got there first, use theirs."""
        final = self.path_for(key)
        try:
            os.rename(staging, final)
            return final
        except OSError:
            if self.lookup(key) is not None:
                return final  # a concurrent writer stored the same key; ours is discarded
            if final.exists():
                self.discard(final)  # a damaged folder (no valid manifest) under our key
            os.rename(staging, final)
            return final

    def entries(self) -> list[CacheEntry]:
        """Complete entries, oldest first; temporary and damaged folders are not listed."""
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.iterdir():
            if path.name.startswith(".") or not path.is_dir():
                continue
            try:
                check_key(path.name)
            except ValueError:
                continue
            if self.lookup(path.name) is None:
                continue
            manifest = read_manifest(path) or {}
            found.append(
                CacheEntry(
                    key=path.name,
                    kind=kind_of(path.name),
                    path=path,
                    created=float(manifest.get("created", path.stat().st_mtime)),
                    size_bytes=folder_size(path),
                    manifest=manifest,
                )
            )
        return sorted(found, key=lambda entry: (entry.created, entry.key))

    def clear(self, kind: str | None = None) -> list[CacheEntry]:
        """Remove all entries (or those of one kind); returns what was removed.

        Clearing everything also removes damaged folders and stale temporary folders.
        """
        removed = [entry for entry in self.entries() if kind is None or entry.kind == kind]
        for entry in removed:
            self.discard(entry.path)
        if kind is None and self.root.is_dir():
            for path in self.root.iterdir():
                if path.is_dir() and not path.name.startswith(".") and self.is_damaged(path):
                    self.discard(path)
            self.remove_stale_temporaries()
        return removed

    def is_damaged(self, path: Path) -> bool:
        try:
            check_key(path.name)
        except ValueError:
            return False  # not ours: leave it alone
        return self.lookup(path.name) is None

    def discard(self, path: Path) -> None:
        """Delete a folder without ever exposing it half-deleted: rename it aside first."""
        trash = self.root / f"{TRASH_PREFIX}{path.name}-{os.getpid()}-{time.monotonic_ns()}"
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            return  # someone else removed it
        shutil.rmtree(trash, ignore_errors=True)

    def remove_stale_temporaries(self, max_age_s: float = STALE_AFTER_S) -> int:
        """Delete leftovers of crashed writers and interrupted clears; returns how many."""
        if not self.root.is_dir():
            return 0
        removed = 0
        now = time.time()
        for path in self.root.iterdir():
            is_trash = path.name.startswith(TRASH_PREFIX)
            is_stale_tmp = path.name.startswith(TMP_PREFIX) and now - latest_mtime(path) > max_age_s
            if path.is_dir() and (is_trash or is_stale_tmp):
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
        return removed


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def canonical_manifest(document: Mapping[str, Any]) -> Any:
    """Manifest values as plain JSON (numpy numbers, paths, tuples); NaN becomes null."""
    return to_json_value(dict(document))


def fsync_tree(folder: Path) -> None:
    """Make the written files durable before the manifest declares the entry complete."""
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def latest_mtime(folder: Path) -> float:
    try:
        return max([folder.stat().st_mtime] + [p.stat().st_mtime for p in folder.rglob("*")])
    except OSError:
        return time.time()  # vanished while we looked: not ours to judge


def cache_write_error(root: Path, key: str, exc: OSError) -> CacheError:
    if exc.errno in DISK_FULL:
        return CacheError(f"{disk_full_detail(exc, root / key)}: free space or choose another cache folder (nothing half written is kept)")
    return CacheError(f"cannot write {key} to the cache folder {root}: {exc.strerror or exc}; choose another cache folder")


# --------------------------------------------------------------------------- listing


def format_entries(entries: list[CacheEntry]) -> str:
    """A plain-text table of entries for `python -m engine cache list`."""
    if not entries:
        return "the cache is empty"
    rows = [("KEY", "KIND", "CREATED", "SIZE", "DESCRIPTION")]
    for entry in entries:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.created))
        summary = entry.summary if len(entry.summary) <= 60 else entry.summary[:59] + "…"
        rows.append((entry.key, entry.kind, created, format_size(entry.size_bytes), summary))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = ["  ".join([*(cell.ljust(width) for cell, width in zip(row[:4], widths)), row[4]]).rstrip() for row in rows]
    total = sum(entry.size_bytes for entry in entries)
    lines.append(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}, {format_size(total)}")
    return "\n".join(lines)
