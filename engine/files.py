"""Atomic file writes: an output file is either complete or absent, never half written."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from .errors import SketchAnimatorError


DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


class DiskFullError(SketchAnimatorError, OSError):
    """The disk filled while a file was written: one line naming the file and the space it needs.

    Also an OSError with errno ENOSPC, so every handler of a full disk sees it as one."""

    def __init__(self, path: str | os.PathLike, written: int, free: int) -> None:
        detail = f"no space left on device while writing {path}: it needs more than {format_size(written)}, {format_size(free)} free"
        OSError.__init__(self, errno.ENOSPC, detail)
        self.path, self.written, self.free = Path(path), written, free

    def __str__(self) -> str:
        return self.strerror


def format_size(size_bytes: float) -> str:
    """A size for people: 512 B, 3.4 MB (powers of 1000, as disks are sold)."""
    for unit in ("B", "KB", "MB", "GB"):
        if size_bytes < 1000 or unit == "GB":
            return f"{size_bytes:.0f} {unit}" if unit == "B" else f"{size_bytes:.1f} {unit}"
        size_bytes /= 1000
    return f"{size_bytes:.1f} TB"  # pragma: no cover


def free_bytes(folder: str | os.PathLike) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call `write(tmp_path)` on a temporary file beside `path`, then rename it into place.

    If `write` raises (disk full, bad data, Ctrl-C), the temporary file is removed and any
    existing file at `path` is left untouched; a full disk is a `DiskFullError` naming `path`
    and how much was written before the disk filled. A link at `path` is replaced by the file,
    never written through.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        written = os.path.getsize(tmp) if os.path.exists(tmp) else 0
        free = free_bytes(path.parent)  # while the half-written file still fills the disk
        if os.path.exists(tmp):
            os.remove(tmp)
        if exc.errno in DISK_FULL and not isinstance(exc, DiskFullError):
            raise DiskFullError(path, max(written, 1), free) from None
        raise
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 text atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)

    return atomic_write(path, write)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write bytes atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(data)

    return atomic_write(path, write)


def real_directory(path: str | os.PathLike) -> Path:
    """A folder at `path` that is not a symbolic link: a link there (to a folder or a file, even a
    dangling one) is removed and a real folder made, so nothing is written through it to
    somewhere else, nor deleted there."""
    path = Path(path)
    if path.is_symlink():
        path.unlink()
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_files(folder: str | os.PathLike) -> dict[str, bytes]:
    """Every regular file under `folder` as {relative POSIX path: bytes} (links are not followed),
    to send a folder somewhere as data; `write_files` puts it back."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def write_files(folder: str | os.PathLike, files: dict[str, bytes]) -> Path:
    """Write {relative path: bytes} under `folder` (a fresh staging folder, renamed into place after)."""
    folder = Path(folder)
    for relative, data in files.items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return folder


def disk_full_detail(exc: OSError, path: str | os.PathLike) -> str:
    """What a full disk while writing `path` says: the file and the space it needs, when known."""
    return str(exc) if isinstance(exc, DiskFullError) else f"no space left on device while writing {path}"
