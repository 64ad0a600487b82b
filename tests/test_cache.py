"""The adapter cache: stable keys, entries that are complete or absent, concurrent writers, the CLI."""

from __future__ import annotations

import argparse
import errno
import io
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from engine.backbones.adapter_cache import TMP_PREFIX, AdapterCache, CacheError, cache_key, default_cache_dir, format_entries
from engine.cli import add_cache_commands
from engine.media.reference import VideoSpec

PARTS = {"model": "ali-vilab/text-to-video-ms-1.7b", "revision": "main", "video_sha256": "ab" * 32, "lr": 5e-4, "rank": 32}


def write_adapter(payload: bytes = b"lora weights"):
    def write(folder: Path) -> None:
        (folder / "adapter.safetensors").write_bytes(payload)
        (folder / "sub").mkdir()
        (folder / "sub" / "config.json").write_text("{}")

    return write


# --------------------------------------------------------------------------- keys


def test_keys_are_stable_and_canonical() -> None:
    key = cache_key("motion", PARTS)
    assert key.startswith("motion-") and len(key) == len("motion-") + 24
    assert cache_key("motion", dict(reversed(list(PARTS.items())))) == key  # order does not matter
    assert cache_key("motion", {**PARTS, "lr": np.float64(5e-4), "rank": np.int64(32)}) == key  # numpy scalars
    assert cache_key("motion", {**PARTS, "shape": (1, 2)}) == cache_key("motion", {**PARTS, "shape": [1, 2]})
    assert cache_key("motion", {**PARTS, "lr": 5.0001e-4}) != key
    assert cache_key("motion", {**PARTS, "rank": 32.0}) != key  # 32 and 32.0 are different settings
    assert cache_key("appearance", PARTS) != key
    assert cache_key("motion", {**PARTS, "nested": {"b": 1, "a": [0.1, None, True]}}) == cache_key(
        "motion", {**PARTS, "nested": {"a": [0.1, None, True], "b": 1}}
    )
    assert cache_key("motion", {"x": float("nan")}).startswith("motion-")
    assert cache_key("motion", {"video": VideoSpec("a.mp4")}) == cache_key("motion", {"video": VideoSpec("a.mp4").to_dict()})


def test_keys_refuse_what_is_not_plain_data() -> None:
    with pytest.raises(TypeError, match="cannot use a object"):
        cache_key("motion", {"thing": object()})
    with pytest.raises(TypeError, match="string keys"):
        cache_key("motion", {"table": {1: "a"}})
    with pytest.raises(ValueError, match="lower-case"):
        cache_key("Motion!", PARTS)


def test_default_cache_dir_per_platform(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SKETCH_ANIMATOR_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("SKETCH_ANIMATOR_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert default_cache_dir() == tmp_path / ".cache" / "sketch-animator"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "sketch-animator"
    monkeypatch.setattr("sys.platform", "darwin")
    assert default_cache_dir() == tmp_path / "Library" / "Caches" / "sketch-animator"
    monkeypatch.setattr("sys.platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "Local"))
    assert default_cache_dir() == tmp_path / "Local" / "sketch-animator" / "cache"


# --------------------------------------------------------------------------- entries


def test_store_then_lookup_and_list(tmp_path) -> None:
    cache = AdapterCache(tmp_path / "adapters")
    key = cache_key("motion", PARTS)
    assert cache.lookup(key) is None
    path = cache.store(key, write_adapter(), {"description": "horse gallop, rank 32", "steps": np.int64(300)})
    assert path == cache.path_for(key) == cache.lookup(key)
    assert (path / "adapter.safetensors").read_bytes() == b"lora weights"
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["key"] == key and manifest["kind"] == "motion" and manifest["steps"] == 300
    assert manifest["files"] == {"adapter.safetensors": 12, "sub/config.json": 2}
    calls = []
    assert cache.store(key, lambda folder: calls.append(folder), {}) == path and calls == []  # learned once
    (entry,) = cache.entries()
    assert (entry.key, entry.kind) == (key, "motion")
    assert entry.size_bytes == 14 + (path / "manifest.json").stat().st_size
    assert entry.summary == "horse gallop, rank 32" and time.time() - entry.created < 60
    table = format_entries(cache.entries())
    assert key in table and "motion" in table and "horse gallop" in table and "1 entry" in table
    assert format_entries([]) == "the cache is empty"


def test_incomplete_or_damaged_folders_are_not_entries(tmp_path) -> None:
    cache = AdapterCache(tmp_path)
    key = cache_key("motion", PARTS)
    cache.path_for(key).mkdir(parents=True)
    (cache.path_for(key) / "adapter.safetensors").write_bytes(b"half")  # no manifest: a crash mid-write
    assert cache.lookup(key) is None and cache.entries() == []
    path = cache.store(key, write_adapter(), {})  # replaces the damaged folder
    assert cache.lookup(key) == path and (path / "adapter.safetensors").read_bytes() == b"lora weights"
    (path / "adapter.safetensors").write_bytes(b"")  # a file listed in the manifest lost its bytes
    assert cache.lookup(key) is None


def test_a_failing_writer_leaves_nothing(tmp_path) -> None:
    cache = AdapterCache(tmp_path)
    key = cache_key("motion", PARTS)

    def crash(folder: Path) -> None:
        (folder / "adapter.safetensors").write_bytes(b"partial")
        raise RuntimeError("training diverged")

    with pytest.raises(RuntimeError, match="diverged"):
        cache.store(key, crash, {})
    assert cache.lookup(key) is None and list(tmp_path.iterdir()) == []


def test_disk_full_is_one_line_and_leaves_nothing(tmp_path) -> None:
    cache = AdapterCache(tmp_path)
    key = cache_key("appearance", PARTS)

    def disk_full(folder: Path) -> None:
        (folder / "adapter.safetensors").write_bytes(b"part")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(CacheError, match=f"no space left on device while writing .*{key}: free space or choose another cache folder \\(nothing half written is kept\\)"):
        cache.store(key, disk_full, {})
    assert cache.lookup(key) is None and list(tmp_path.iterdir()) == []


def test_a_second_writer_of_the_same_key_uses_the_first_entry(tmp_path) -> None:
    cache = AdapterCache(tmp_path)
    key = cache_key("motion", PARTS)
    inner_paths = []

    def slow_writer(folder: Path) -> None:
        write_adapter(b"slow")(folder)
        inner_paths.append(cache.store(key, write_adapter(b"fast"), {}))  # another process finishes first

    assert cache.store(key, slow_writer, {}) == inner_paths[0] == cache.path_for(key)
    assert (cache.path_for(key) / "adapter.safetensors").read_bytes() == b"fast"
    assert [p.name for p in tmp_path.iterdir()] == [key]  # the loser's temporary folder is gone


def test_concurrent_threads_storing_one_key(tmp_path) -> None:
    cache = AdapterCache(tmp_path)
    key = cache_key("motion", PARTS)
    both_writing = threading.Barrier(2)
    results: list[Path] = []

    def writer(folder: Path) -> None:
        write_adapter()(folder)
        both_writing.wait(timeout=10)

    threads = [threading.Thread(target=lambda: results.append(cache.store(key, writer, {}))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [cache.path_for(key)] * 2 and cache.lookup(key) is not None
    assert [p.name for p in tmp_path.iterdir()] == [key]


def test_stale_temporaries_are_cleaned_and_fresh_ones_kept(tmp_path) -> None:
    cache = AdapterCache(tmp_path)
    stale = tmp_path / f"{TMP_PREFIX}motion-crashed"
    fresh = tmp_path / f"{TMP_PREFIX}motion-writing"
    for folder in (stale, fresh):
        folder.mkdir()
        (folder / "adapter.safetensors").write_bytes(b"x")
    long_ago = time.time() - 7200
    for path in (stale / "adapter.safetensors", stale):
        os.utime(path, (long_ago, long_ago))
    cache.store(cache_key("motion", PARTS), write_adapter(), {})
    assert not stale.exists() and fresh.exists()


def test_clear_by_kind_and_everything(tmp_path) -> None:
    cache = AdapterCache(tmp_path)
    motion = cache.store(cache_key("motion", PARTS), write_adapter(), {})
    appearance = cache.store(cache_key("appearance", PARTS), write_adapter(), {})
    damaged = cache.path_for(cache_key("motion", {"other": 1}))
    damaged.mkdir()
    unrelated = tmp_path / "notes"
    unrelated.mkdir()
    removed = cache.clear(kind="motion")
    assert [entry.path for entry in removed] == [motion] and not motion.exists() and appearance.exists()
    assert damaged.exists()  # clearing one kind touches nothing else
    assert [entry.path for entry in cache.clear()] == [appearance]
    assert not damaged.exists() and unrelated.exists() and cache.entries() == []


# --------------------------------------------------------------------------- command line


def cache_cli(*argv: str) -> None:
    parser = argparse.ArgumentParser(prog="python -m engine")
    add_cache_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    args.handler(args)


def test_cli_list_and_clear(tmp_path, capsys, monkeypatch) -> None:
    cache = AdapterCache(tmp_path / "adapters")
    key = cache.store(cache_key("motion", PARTS), write_adapter(), {"description": "gallop"}).name
    cache_cli("cache", "list", "--cache-dir", str(tmp_path))
    output = capsys.readouterr().out
    assert key in output and "gallop" in output and str(cache.root) in output

    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal: no one to ask
    with pytest.raises(CacheError, match="without confirmation; add --yes"):
        cache_cli("cache", "clear", "--cache-dir", str(tmp_path))
    assert cache.lookup(key) is not None

    cache_cli("cache", "clear", "--kind", "appearance", "--yes", "--cache-dir", str(tmp_path))
    assert cache.lookup(key) is not None and "deleted 0 entries" in capsys.readouterr().out
    cache_cli("cache", "clear", "--yes", "--cache-dir", str(tmp_path))
    assert cache.lookup(key) is None and "deleted 1 entry" in capsys.readouterr().out


def test_cli_clear_asks_on_a_terminal(tmp_path, capsys, monkeypatch) -> None:
    cache = AdapterCache(tmp_path / "adapters")
    key = cache.store(cache_key("motion", PARTS), write_adapter(), {}).name

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    cache_cli("cache", "clear", "--cache-dir", str(tmp_path))
    assert cache.lookup(key) is not None and "nothing deleted" in capsys.readouterr().out
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    cache_cli("cache", "clear", "--cache-dir", str(tmp_path))
    assert cache.lookup(key) is None
