"""Fetch the bytes of a pinned module and prove they are the pinned ones: nothing unverified ever runs.

Both workers use it: ours (``PinnedModule``) and the AIO graph's (``AioModule``), whose modules are pinned alike.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from wasmflow.api.workerconfig import AioModule, PinnedModule
from wasmflow.errors import ConfigError, RegistryError
from wasmflow.oci import pull_component


async def fetch_module(name: str, module: PinnedModule | AioModule, cache_dir: Path | None) -> bytes:
    """The pinned bytes of module ``name``; RegistryError when they are not the pinned ones."""
    if module.path:
        try:
            data = await asyncio.to_thread(Path(module.path).read_bytes)
        except OSError as exc:
            raise ConfigError(f"module {name!r}: cannot read its file: {exc.strerror}", where=module.path) from exc
    else:
        reference = f"{module.reference.split('@')[0]}@{module.digest}"
        data = await pull_component(
            reference,
            insecure=module.insecure,
            docker_config=Path(module.pull_secret_file) if module.pull_secret_file else None,
            ca_file=Path(module.ca_file) if module.ca_file else None,
            cache_dir=cache_dir,
            # The controller pinned this module only after its own pull with these credentials, which it refuses
            # over plain HTTP unless its settings allow the host: the worker follows that verdict.
            plain_http_credential_hosts=(reference.split("/", 1)[0],) if module.insecure else (),
        )
    digest = await asyncio.to_thread(_sha256, data)  # hashlib leaves the GIL: other modules load meanwhile
    if digest != module.digest:
        raise RegistryError(f"module {name!r}: content has digest {digest}, the Dataflow pins {module.digest}")
    return data


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
