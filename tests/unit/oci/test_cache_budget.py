"""The blob cache keeps to its size budget, evicting the least recently used entries first."""

from __future__ import annotations

import os
from pathlib import Path

from tests.fault_report import Report
from wasmflow.oci.cache import BlobCache
from wasmflow.oci.digests import sha256_digest


def entry(cache: BlobCache, size: int, fill: int, used_at: float) -> str:
    data = bytes([fill]) * size
    digest = sha256_digest(data)
    path = cache.write(digest, data)
    os.utime(path, (used_at, used_at))
    return digest


def size_of(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_trim_deletes_the_least_recently_used_entries_until_the_cache_fits(tmp_path: Path, report: Report) -> None:
    cache = BlobCache(tmp_path, max_bytes=3000)
    digests = [entry(cache, 1000, i, used_at=1_000_000 + i) for i in range(5)]  # oldest first, 5000 bytes
    assert cache.read(digests[0]) is not None  # reading the oldest makes it the most recently used
    freed = cache.trim()
    assert freed == 2000
    assert size_of(tmp_path) == 3000
    kept = [d for d in digests if cache.contains(d)]
    assert kept == [digests[0], digests[3], digests[4]]
    report(budget_bytes=3000, written_bytes=5000, freed_bytes=freed, kept_bytes=size_of(tmp_path))


def test_an_unbounded_cache_is_never_trimmed(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    entry(cache, 1000, 1, used_at=1_000_000)
    assert cache.trim() == 0
    assert size_of(tmp_path) == 1000


def test_a_write_in_progress_is_not_counted_or_deleted(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path, max_bytes=100)
    partial = tmp_path / "blobs" / "sha256" / ".abcdef.tmp"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"x" * 1000)
    assert cache.trim() == 0
    assert partial.exists()
