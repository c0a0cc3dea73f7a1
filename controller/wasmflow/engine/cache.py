"""The compiled-component cache: a worker restart must not recompile (a componentize-py component takes ~5 s).

Entries are keyed by the component's content digest, the wasmtime version, the machine and the engine settings,
because ``Component.deserialize`` only accepts code produced by the same wasmtime with the same configuration.
Deserialising is trusting native code, so every entry carries the SHA-256 of its own bytes in its file name and is
verified before use; a missing, stale or corrupt entry is compiled again and rewritten, never fatal. Writes go to a
temporary file in the same directory and are renamed into place, so readers never see half an entry and two
processes compiling the same component at once both end up with a complete one.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import platform
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

log = logging.getLogger(__name__)

_SUFFIX = ".cwasm"


@functools.cache
def wasmtime_version() -> str:
    """The installed wasmtime-py version (the native library ships inside it, same version)."""
    return metadata.version("wasmtime")


def cache_key(digest: str, settings: str) -> str:
    """A file-name-safe key for one component under one engine configuration."""
    material = "\n".join((digest, wasmtime_version(), platform.machine(), platform.system(), settings))
    return hashlib.sha256(material.encode()).hexdigest()


@dataclass(frozen=True)
class CompiledCache:
    """A directory of verified serialized components."""

    directory: Path

    def lookup(self, key: str) -> Path | None:
        """The verified entry for ``key``, or None; corrupt entries are removed so they get rewritten."""
        return self.find(key)[0]

    def find(self, key: str) -> tuple[Path | None, bool]:
        """(the verified entry or None, whether a corrupt entry was found and removed on the way)."""
        corrupt = False
        for path in sorted(self.directory.glob(f"{key}-*{_SUFFIX}")):
            expected = path.name[len(key) + 1 : -len(_SUFFIX)]
            try:
                with path.open("rb") as f:
                    actual = hashlib.file_digest(f, "sha256").hexdigest()
            except OSError as exc:
                log.warning("compiled cache entry %s unreadable (%s): recompiling", path, exc)
                continue
            if actual == expected:
                return path, corrupt
            log.warning("compiled cache entry %s is corrupt (checksum mismatch): recompiling", path)
            self.discard(path)
            corrupt = True
        return None, corrupt

    def store(self, key: str, data: bytes | bytearray) -> Path | None:
        """Write an entry atomically; a cache that cannot be written only costs the next start a compile."""
        checksum = hashlib.sha256(data).hexdigest()
        target = self.directory / f"{key}-{checksum}{_SUFFIX}"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{key}-", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                Path(tmp).replace(target)
            except BaseException:
                with contextlib.suppress(OSError):
                    Path(tmp).unlink()
                raise
        except OSError as exc:
            log.warning("cannot write compiled cache entry %s: %s", target, exc)
            return None
        for stale in self.directory.glob(f"{key}-*{_SUFFIX}"):
            if stale != target:
                self.discard(stale)
        return target

    def discard(self, path: Path) -> None:
        """Remove an entry that failed to load (another process may have removed it already)."""
        with contextlib.suppress(OSError):
            path.unlink()
