"""Where the CLI gets component bytes from: a local file, or an OCI reference pulled with ``wasmflow.oci``."""

from __future__ import annotations

from pathlib import Path

from wasmflow.errors import ConfigError
from wasmflow.oci.pull import pull_component_sync


def read_file(path: Path) -> bytes:
    """The bytes of a local component file.

    Anything that stops the read (a directory, a broken symbolic link, no permission, a file the kernel will not
    read) is a ConfigError naming the file and the reason, which the commands turn into a usage error (exit 2)
    instead of an OSError traceback.
    """
    if path.is_symlink() and not path.exists():
        raise ConfigError(f"is a broken symbolic link (to {path.readlink()}), expected a .wasm file", where=str(path))
    if path.is_dir():
        raise ConfigError("is a directory, expected a .wasm file", where=str(path))
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot be read: {exc.strerror or exc}", where=str(path)) from exc


def read_component(source: str, *, insecure: bool = False) -> bytes:
    """The bytes of a component named by a path or an OCI reference (``host[:port]/repo[:tag][@digest]``)."""
    path = Path(source)
    if path.exists() or path.is_symlink():
        return read_file(path)
    if "/" in source and not source.startswith((".", "/")) and not source.endswith(".wasm"):
        return pull_component_sync(source, insecure=insecure)
    raise ConfigError("no such file (and not an OCI reference like host:5000/repo:tag)", where=source)
