"""Push a component in the CNCF Wasm OCI artifact layout (what ``wkg`` and ``oci-wasm`` write).

    manifest  application/vnd.oci.image.manifest.v1+json, annotations org.opencontainers.image.created + the user's
    config    application/vnd.wasm.config.v0+json:
              {created, author?, architecture: "wasm", os: "wasip2", layerDigests: [layer], component: {exports,
              imports, target}}
    layer     application/wasm, the component bytes (annotation org.opencontainers.image.title: the file name)

The caller checks the component against the contract first (``wasmflow push`` does) and passes what the check
learnt as ``ComponentInfo``; this module knows nothing of wasmtime.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from wasmflow.oci import mediatypes as mt
from wasmflow.oci.digests import sha256_digest
from wasmflow.oci.errors import InvalidReferenceError, TooLargeError, UnsupportedArtifactError
from wasmflow.oci.manifest import Descriptor, Manifest, serialize_manifest
from wasmflow.oci.pull import WASM_MAGIC, Access
from wasmflow.oci.reference import Reference, parse_reference
from wasmflow.oci.transfer import DEFAULT_MAX_BLOB_BYTES

__all__ = ["ComponentInfo", "PushResult", "component_manifest", "push_component", "wasm_config"]

CREATED = "org.opencontainers.image.created"
TITLE = "org.opencontainers.image.title"


@dataclass(frozen=True)
class ComponentInfo:
    """What the config says about the component: its export and import names, and the world it targets."""

    exports: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()
    target: str | None = None


@dataclass(frozen=True)
class PushResult:
    """``digest`` is the manifest digest (what ``@sha256:...`` pins); ``layer_digest`` the component's own."""

    reference: Reference
    digest: str
    layer_digest: str
    config_digest: str
    size: int


def wasm_config(layer_digest: str, *, component: ComponentInfo | None, created: datetime, author: str | None) -> bytes:
    """The ``application/vnd.wasm.config.v0+json`` document for a single-layer component artifact."""
    document: dict[str, object] = {"created": _rfc3339(created)}
    if author:
        document["author"] = author
    document.update({"architecture": "wasm", "os": "wasip2", "layerDigests": [layer_digest]})
    if component is not None:
        document["component"] = {
            "exports": list(component.exports),
            "imports": list(component.imports),
            **({"target": component.target} if component.target else {}),
        }
    return json.dumps(document, separators=(",", ":")).encode()


def component_manifest(
    data: bytes,
    config: bytes,
    *,
    created: datetime,
    annotations: Mapping[str, str] | None = None,
    title: str | None = None,
) -> Manifest:
    layer_annotations = {TITLE: title} if title else None
    return Manifest(
        schema_version=2,
        media_type=mt.OCI_MANIFEST,
        config=Descriptor(media_type=mt.WASM_CONFIG_V0, digest=sha256_digest(config), size=len(config)),
        layers=(
            Descriptor(
                media_type=mt.WASM_LAYER, digest=sha256_digest(data), size=len(data), annotations=layer_annotations
            ),
        ),
        annotations={CREATED: _rfc3339(created), **(annotations or {})},
    )


async def push_component(
    reference: str | Reference,
    data: bytes,
    *,
    access: Access | None = None,
    component: ComponentInfo | None = None,
    annotations: Mapping[str, str] | None = None,
    author: str | None = None,
    created: datetime | None = None,
    title: str | None = None,
    chunk_size: int | None = None,
    max_bytes: int = DEFAULT_MAX_BLOB_BYTES,
) -> PushResult:
    """Push ``data`` to ``reference`` (which must carry a tag) in the CNCF layout; returns the digests.

    Blobs already in the repository are not uploaded again. ``chunk_size`` switches to a chunked upload.
    """
    ref = parse_reference(reference) if isinstance(reference, str) else reference
    data = bytes(data)  # a bytearray or memoryview would make httpx stream it as a sync iterable
    if ref.digest is not None:
        raise InvalidReferenceError(
            "push to a tag, not a digest: the digest is computed from what is pushed", reference=str(ref), part="digest"
        )
    if not data.startswith(WASM_MAGIC):
        raise UnsupportedArtifactError("the file is not WebAssembly", reference=str(ref), found=repr(data[:8]))
    if len(data) > max_bytes:
        raise TooLargeError(
            f"the component is {len(data)} bytes, over the limit of {max_bytes} bytes",
            reference=str(ref),
            limit=max_bytes,
        )
    created = created or datetime.now(UTC)
    layer_digest = sha256_digest(data)
    config = wasm_config(layer_digest, component=component, created=created, author=author)
    manifest = component_manifest(data, config, created=created, annotations=annotations, title=title)
    raw = serialize_manifest(manifest)
    async with (access or Access()).client(ref.registry) as client:
        await client.upload_blob(ref, data, chunk_size=chunk_size)
        config_digest = await client.upload_blob(ref, config)
        digest = await client.put_manifest(ref, raw, mt.OCI_MANIFEST)
    return PushResult(
        reference=ref.with_digest(digest),
        digest=digest,
        layer_digest=layer_digest,
        config_digest=config_digest,
        size=len(data),
    )


def _rfc3339(moment: datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
