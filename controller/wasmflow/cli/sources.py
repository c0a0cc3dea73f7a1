"""Where the CLI gets component bytes from: a local file, or an OCI reference pulled with ``wasmflow.oci``."""

from __future__ import annotations

from pathlib import Path

from wasmflow.errors import ConfigError
from wasmflow.oci.pull import pull_component_sync


def read_component(source: str, *, insecure: bool = False) -> bytes:
    """The bytes of a component named by a path or an OCI reference (``host[:port]/repo[:tag][@digest]``)."""
    path = Path(source)
    if path.exists():
        if path.is_dir():
            raise ConfigError("is a directory, expected a .wasm file", where=source)
        return path.read_bytes()
    if "/" in source and not source.startswith((".", "/")) and not source.endswith(".wasm"):
        return pull_component_sync(source, insecure=insecure)
    raise ConfigError("no such file (and not an OCI reference like host:5000/repo:tag)", where=source)
