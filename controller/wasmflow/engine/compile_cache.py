"""A disk cache of compiled components, so a worker restart does not recompile (18 MB take seconds to compile).

The key covers everything that makes a compiled artefact valid: the component digest, the wasmtime version and the
engine settings. Writes are atomic (temp file + rename); an entry that fails to load is deleted and recompiled,
never fatal.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from importlib import metadata
from pathlib import Path

import wasmtime
from wasmtime import component as cm

log = logging.getLogger(__name__)


def cache_key(digest: str, engine_settings: str) -> str:
    text = f"{digest}\0wasmtime-{metadata.version('wasmtime')}\0{engine_settings}"
    return hashlib.sha256(text.encode()).hexdigest()


def load_or_compile(
    engine: wasmtime.Engine, data: bytes, digest: str, engine_settings: str, cache_dir: Path | None
) -> tuple[cm.Component, str]:
    """The compiled component and how it was obtained: ``hit``, ``miss`` or ``corrupt`` (recompiled)."""
    if cache_dir is None:
        return cm.Component(engine, data), "miss"
    path = cache_dir / f"{cache_key(digest, engine_settings)}.cwasm"
    outcome = "miss"
    if path.exists():
        try:
            return cm.Component.deserialize(engine, path.read_bytes()), "hit"
        except wasmtime.WasmtimeError as exc:
            log.warning("compiled-component cache entry %s is unusable (%s): recompiling", path.name, exc)
            path.unlink(missing_ok=True)
            outcome = "corrupt"
    component = cm.Component(engine, data)
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".tmp-", suffix=".cwasm")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(component.serialize())
        Path(tmp).replace(path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        log.warning("could not write the compiled-component cache at %s: %s", cache_dir, exc)
    return component, outcome
