"""A content-addressed cache of registry blobs and manifests on disk.

Entries live at ``<root>/<namespace>/<algorithm>/<hex>`` (namespaces ``blobs`` and ``manifests``). A write goes to a
temporary file in the same directory, is flushed and fsynced, then renamed over the final name, so a reader sees a
whole entry or none, and two writers of the same digest cannot corrupt each other. Every read re-hashes the
content: an entry that does not match its name (a torn disk, a tampering) is deleted and reported as a miss, so the
caller pulls it again. Tags are never cached; only content named by its digest is.

The cache is bounded when given ``max_bytes``: ``trim`` deletes the least recently used entries (a read or a
write stamps an entry's mtime) until the entries fit. Without a bound, a long-running controller fills its
emptyDir with every module version it ever pulled (~16 distinct 64 MiB modules fill 1Gi, and the kubelet
evicts the pod). An entry deleted under a reader is a miss, and the reader pulls it again.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from wasmflow.oci.digests import digest_of
from wasmflow.oci.reference import parse_digest

__all__ = ["BlobCache", "Namespace", "default_cache_dir"]

Namespace = Literal["blobs", "manifests"]


def default_cache_dir() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/wasmflow/oci``: where the command line keeps pulled artifacts."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wasmflow" / "oci"


@dataclass
class BlobCache:
    """The cache rooted at ``root``; ``corrupt`` counts the entries found damaged (and deleted) by this instance."""

    root: Path
    #: The size budget that ``trim`` enforces; None: unbounded (the command line's cache).
    max_bytes: int | None = None
    corrupt: int = field(default=0, init=False)

    def path(self, digest: str, namespace: Namespace = "blobs") -> Path:
        algorithm, hexpart = parse_digest(digest)
        return self.root / namespace / algorithm / hexpart

    def read(self, digest: str, namespace: Namespace = "blobs") -> bytes | None:
        """The verified content named ``digest``, or None (absent, or damaged and now deleted)."""
        path = self.path(digest, namespace)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        if digest_of(data, digest) != digest:
            self.corrupt += 1
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return None
        with contextlib.suppress(FileNotFoundError):
            os.utime(path)  # recently used: the last to be trimmed
        return data

    def write(self, digest: str, data: bytes, namespace: Namespace = "blobs") -> Path:
        """Store ``data`` under ``digest`` atomically. The caller has verified it; it is checked again here."""
        if digest_of(data, digest) != digest:
            raise ValueError(f"refusing to cache content under {digest}: it does not hash to that digest")
        path = self.path(digest, namespace)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:16]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            Path(tmp).replace(path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                Path(tmp).unlink()
            raise
        return path

    def contains(self, digest: str, namespace: Namespace = "blobs") -> bool:
        """Cheap presence test (no verification): for deciding whether to skip a download it will still verify."""
        return self.path(digest, namespace).is_file()

    def trim(self) -> int:
        """Delete the least recently used entries until the cache fits ``max_bytes``; the bytes deleted."""
        if self.max_bytes is None:
            return 0
        entries: list[tuple[float, int, Path]] = []
        for namespace in ("blobs", "manifests"):
            for path in (self.root / namespace).glob("*/*"):
                if path.name.startswith("."):
                    continue  # a write in progress
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue
                entries.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        freed = 0
        for _, size, path in sorted(entries):
            if total - freed <= self.max_bytes:
                break
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                freed += size
        return freed
