"""Reaching under a real registry: where distribution's filesystem driver keeps a blob, and components unique to
one test (so damaging their blob in a shared registry's storage touches no other test: blobs are shared by
digest across repositories)."""

from __future__ import annotations

import uuid
from pathlib import Path

__all__ = ["flipped", "stored_blob", "unique"]


def unique(component: bytes) -> bytes:
    """``component`` with a custom section holding a random id appended: still valid, with a digest of its own."""
    name = b"wasmflow-test"
    body = bytes([len(name)]) + name + uuid.uuid4().hex.encode()
    return component + bytes([0, len(body)]) + body


def stored_blob(state_dir: Path, digest: str, instance: str = "plain") -> Path:
    """The file holding blob ``digest`` in the storage of registry ``instance`` of ``hack/registry.sh``."""
    hexpart = digest.removeprefix("sha256:")
    blobs = state_dir / f"{instance}-data" / "docker" / "registry" / "v2" / "blobs" / "sha256"
    return blobs / hexpart[:2] / hexpart / "data"


def flipped(data: bytes) -> bytes:
    """The same length, still WebAssembly by its magic, one byte in the middle different."""
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
