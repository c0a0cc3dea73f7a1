"""Fetch the bytes of a pinned module and prove they are the pinned ones: nothing unverified ever runs."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from wasmflow.api.workerconfig import PinnedModule
from wasmflow.errors import RegistryError
from wasmflow.oci import pull_component


async def fetch_module(name: str, module: PinnedModule, cache_dir: Path | None) -> bytes:
    if module.path:
        data = await asyncio.to_thread(Path(module.path).read_bytes)
    else:
        reference = f"{module.reference.split('@')[0]}@{module.digest}"
        data = await pull_component(
            reference,
            insecure=module.insecure,
            docker_config=Path(module.pull_secret_file) if module.pull_secret_file else None,
            ca_file=Path(module.ca_file) if module.ca_file else None,
            cache_dir=cache_dir,
        )
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if digest != module.digest:
        raise RegistryError(f"module {name!r}: content has digest {digest}, the Dataflow pins {module.digest}")
    return data
