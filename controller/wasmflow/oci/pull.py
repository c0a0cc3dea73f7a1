"""Pull a Wasm component (or an AIO graph definition) by reference: resolved, classified, verified, cached.

The steps, each of which can only fail with a typed OciError:

1. parse the reference (InvalidReference);
2. pinned by digest and cached: answer from the cache without any network (a worker restart at the edge);
3. fetch the manifest (by digest, or by tag and hash it), refuse layouts we do not run (UnsupportedArtifact);
4. check the pin (``expected_digest``: the manifest's digest or the component's own) before any layer download
   (PinMismatch, never a silent pull);
5. the layer from the cache (verified on read; a damaged entry is deleted and pulled again) or from the registry,
   verified and size-limited while it streams, then cached.

A reference whose digest is the component's own digest (a layer, not a manifest: what ``status.artifact.digest``
holds and the worker pins) is fetched as a blob of that repository, verified by that digest; the layout is then
``Layout.BLOB`` and ``manifest_digest`` is None.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from wasmflow.oci.auth import Credentials, load_docker_config
from wasmflow.oci.cache import BlobCache
from wasmflow.oci.errors import NotFoundError, PinMismatchError, UnsupportedArtifactError
from wasmflow.oci.layouts import ArtifactKind, Classified, Layout, classify, require_kind
from wasmflow.oci.manifest import Manifest, parse_manifest
from wasmflow.oci.mediatypes import OCI_MANIFEST, WASM_LAYER
from wasmflow.oci.reference import Reference, parse_digest, parse_reference
from wasmflow.oci.transfer import DEFAULT_MAX_BLOB_BYTES, FetchedManifest, RetryPolicy

if TYPE_CHECKING:
    from wasmflow.oci.client import RegistryClient

__all__ = [
    "DEFAULT_MAX_GRAPH_BYTES",
    "Access",
    "PulledArtifact",
    "pull_artifact",
    "pull_component",
    "pull_component_sync",
    "pull_graph",
    "resolve_digest",
]

DEFAULT_MAX_GRAPH_BYTES = 4 * 2**20
WASM_MAGIC = b"\0asm"


@dataclass(frozen=True)
class Access:
    """How to reach a registry: plain HTTP or TLS (with an optional private CA), credentials, patience.

    ``plain_http_credential_hosts``: hosts (``host`` or ``host:port``) to which credentials may go over plain HTTP
    (``insecure``) besides loopback ones; to any other the credentials are refused (InsecureCredentialsError).
    """

    insecure: bool = False
    credentials: Credentials | None = None
    ca_file: Path | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = 30.0
    plain_http_credential_hosts: tuple[str, ...] = ()

    def client(self, registry: str) -> RegistryClient:
        # Imported here, on the first exchange with a registry: answering from the cache needs no HTTP stack.
        from wasmflow.oci.client import RegistryClient  # noqa: PLC0415

        return RegistryClient(
            registry,
            insecure=self.insecure,
            credentials=self.credentials,
            ca_file=self.ca_file,
            retry=self.retry,
            timeout=self.timeout,
            plain_http_credential_hosts=self.plain_http_credential_hosts,
        )


@dataclass(frozen=True)
class PulledArtifact:
    """A verified artifact: ``data`` hashes to ``digest``; ``reference`` is pinned to the manifest digest if known."""

    reference: Reference
    manifest_digest: str | None
    kind: ArtifactKind
    layout: Layout
    digest: str
    size: int
    media_type: str
    data: bytes = field(repr=False)
    annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    from_cache: bool = False


async def pull_artifact(
    reference: str | Reference,
    *,
    access: Access | None = None,
    kind: ArtifactKind = ArtifactKind.COMPONENT,
    expected_digest: str | None = None,
    cache_dir: Path | None = None,
    max_bytes: int | None = None,
) -> PulledArtifact:
    """Pull the artifact ``reference`` names, of ``kind``, verified; see the module docstring for the steps.

    ``expected_digest`` is a pin (``spec.source.oci.digest``): it must equal the manifest digest or the payload's
    own digest. ``max_bytes`` bounds the payload (default: 64 MiB for components, 4 MiB for graphs).
    """
    ref = parse_reference(reference) if isinstance(reference, str) else reference
    where = str(ref)
    if expected_digest is not None:
        parse_digest(expected_digest, reference=where)
    access = access or Access()
    limit = max_bytes or (DEFAULT_MAX_BLOB_BYTES if kind is ArtifactKind.COMPONENT else DEFAULT_MAX_GRAPH_BYTES)
    cache = BlobCache(cache_dir) if cache_dir is not None else None

    if cache is not None and ref.digest:
        hit = await asyncio.to_thread(_from_cache, cache, ref, kind)
        if hit is not None:
            _check_pin(expected_digest, hit.manifest_digest, hit.digest, where)
            return hit

    async with access.client(ref.registry) as client:
        if ref.digest is not None and kind is ArtifactKind.COMPONENT:
            pinned = await _fetch_pinned(client, ref, ref.digest, limit)
            if isinstance(pinned, bytes):
                _check_pin(expected_digest, None, ref.digest, where)
                if cache is not None:
                    await asyncio.to_thread(cache.write, ref.digest, pinned)
                return _content_artifact(ref, pinned, from_cache=False)
            fetched = pinned
        else:
            fetched = await client.fetch_manifest(ref)
        classified = require_kind(classify(fetched.manifest, reference=where), kind, reference=where)
        layer = classified.layer
        _check_pin(expected_digest, fetched.digest, layer.digest, where)
        if cache is not None:
            await asyncio.to_thread(cache.write, fetched.digest, fetched.raw, "manifests")
        cached = await asyncio.to_thread(cache.read, layer.digest) if cache is not None else None
        if cached is not None and len(cached) <= limit:
            data, from_cache = cached, True
        else:
            data, from_cache = await client.fetch_blob(ref, layer.digest, size=layer.size, max_bytes=limit), False
            _check_payload(kind, data, where)
            if cache is not None:
                await asyncio.to_thread(cache.write, layer.digest, data)
    return _artifact(ref.with_digest(fetched.digest), fetched.digest, classified, data, from_cache, fetched.manifest)


async def pull_component(
    reference: str,
    *,
    insecure: bool = False,
    docker_config: Path | None = None,
    cache_dir: Path | None = None,
    credentials: Credentials | None = None,
    ca_file: Path | None = None,
    expected_digest: str | None = None,
    max_bytes: int | None = None,
    plain_http_credential_hosts: tuple[str, ...] = (),
) -> bytes:
    """The verified bytes of the component ``reference`` names (``@sha256:...`` pins it).

    Credentials: ``credentials``, else the entry for the registry in the ``docker_config`` file (a mounted
    ``.dockerconfigjson``), else anonymous. See ``Access`` for ``plain_http_credential_hosts``.
    """
    ref = parse_reference(reference)
    if credentials is None and docker_config is not None:
        credentials = await asyncio.to_thread(load_docker_config, docker_config, ref.registry)
    access = Access(
        insecure=insecure,
        credentials=credentials,
        ca_file=ca_file,
        plain_http_credential_hosts=plain_http_credential_hosts,
    )
    artifact = await pull_artifact(
        ref, access=access, expected_digest=expected_digest, cache_dir=cache_dir, max_bytes=max_bytes
    )
    return artifact.data


async def pull_graph(
    reference: str | Reference,
    *,
    access: Access | None = None,
    expected_digest: str | None = None,
    cache_dir: Path | None = None,
    max_bytes: int | None = None,
) -> PulledArtifact:
    """Pull an AIO graph definition (config ``application/vnd.microsoft.aio.graph.v1+yaml``); ``data`` is YAML."""
    return await pull_artifact(
        reference,
        access=access,
        kind=ArtifactKind.GRAPH,
        expected_digest=expected_digest,
        cache_dir=cache_dir,
        max_bytes=max_bytes,
    )


async def resolve_digest(reference: str | Reference, *, access: Access | None = None) -> str:
    """The manifest digest a tag points to now (one HEAD request when the registry sends the digest)."""
    ref = parse_reference(reference) if isinstance(reference, str) else reference
    async with (access or Access()).client(ref.registry) as client:
        return (await client.resolve(ref)).digest


def pull_component_sync(
    reference: str,
    insecure: bool = False,
    credentials: Credentials | None = None,
    *,
    docker_config: Path | None = None,
    cache_dir: Path | None = None,
    ca_file: Path | None = None,
) -> bytes:
    """``pull_component`` for synchronous callers (the command line); not for use inside an event loop."""
    return asyncio.run(
        pull_component(
            reference,
            insecure=insecure,
            credentials=credentials,
            docker_config=docker_config,
            cache_dir=cache_dir,
            ca_file=ca_file,
        )
    )


async def _fetch_pinned(client: RegistryClient, ref: Reference, digest: str, limit: int) -> bytes | FetchedManifest:
    """What ``ref@digest`` names: the component itself (bytes) or a manifest.

    The blob endpoint is asked first: it serves a component pinned by its own digest, and some registries serve
    manifests there too (verified by the same digest). distribution serves manifests only at ``/manifests/``, and
    answers 500 there for a digest that is a layer, so the order matters.
    """
    try:
        blob = await client.fetch_blob(ref, digest, max_bytes=limit)
    except NotFoundError:
        return await client.fetch_manifest(ref)
    if blob.startswith(WASM_MAGIC):
        return blob
    try:
        manifest = parse_manifest(blob, reference=str(ref))
    except UnsupportedArtifactError as exc:
        raise UnsupportedArtifactError(
            f"{digest} is neither WebAssembly nor a manifest (it starts with {blob[:8]!r})",
            reference=str(ref),
            found="non-wasm content",
        ) from exc
    return FetchedManifest(manifest=manifest, raw=blob, digest=digest, media_type=manifest.media_type or OCI_MANIFEST)


def _content_artifact(ref: Reference, data: bytes, *, from_cache: bool) -> PulledArtifact:
    assert ref.digest is not None
    return PulledArtifact(
        reference=ref,
        manifest_digest=None,
        kind=ArtifactKind.COMPONENT,
        layout=Layout.BLOB,
        digest=ref.digest,
        size=len(data),
        media_type=WASM_LAYER,
        data=data,
        from_cache=from_cache,
    )


def _from_cache(cache: BlobCache, ref: Reference, kind: ArtifactKind) -> PulledArtifact | None:
    """Everything ``ref`` (pinned by digest) needs, from the cache alone; None when anything is missing."""
    assert ref.digest is not None
    raw = cache.read(ref.digest, "manifests")
    if raw is not None:
        manifest = parse_manifest(raw, reference=str(ref))
        classified = require_kind(classify(manifest, reference=str(ref)), kind, reference=str(ref))
        data = cache.read(classified.layer.digest)
        if data is None:
            return None
        return _artifact(ref, ref.digest, classified, data, True, manifest)
    if kind is not ArtifactKind.COMPONENT:
        return None
    data = cache.read(ref.digest)
    if data is None or not data.startswith(WASM_MAGIC):
        return None
    return _content_artifact(ref, data, from_cache=True)


def _artifact(
    ref: Reference, manifest_digest: str, classified: Classified, data: bytes, from_cache: bool, manifest: Manifest
) -> PulledArtifact:
    annotations = manifest.annotations or {}
    return PulledArtifact(
        reference=ref,
        manifest_digest=manifest_digest,
        kind=classified.kind,
        layout=classified.layout,
        digest=classified.layer.digest,
        size=len(data),
        media_type=classified.layer.media_type,
        data=data,
        annotations=MappingProxyType(dict(annotations)),
        from_cache=from_cache,
    )


def _check_pin(expected: str | None, manifest_digest: str | None, content_digest: str, where: str) -> None:
    if expected is None or expected in (manifest_digest, content_digest):
        return
    found = f"manifest {manifest_digest}, component {content_digest}" if manifest_digest else content_digest
    raise PinMismatchError(
        f"the pinned digest {expected} matches neither the manifest nor the content it resolved to ({found})",
        reference=where,
        expected=expected,
        actual=manifest_digest or content_digest,
    )


def _check_payload(kind: ArtifactKind, data: bytes, where: str) -> None:
    """A layer typed as wasm must be WebAssembly (the contract check says whether it is a usable component)."""
    if kind is ArtifactKind.COMPONENT and not data.startswith(WASM_MAGIC):
        raise UnsupportedArtifactError(
            f"the layer is typed as WebAssembly but its content is not (it starts with {data[:8]!r})",
            reference=where,
            found="non-wasm content",
        )
