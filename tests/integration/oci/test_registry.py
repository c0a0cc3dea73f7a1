"""The OCI client against real CNCF distribution registries (hack/registry.sh): push, pull, verify, refuse."""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path

import pytest

from tests.components.engine.wat import operator
from tests.services import AuthRegistry, Registry
from wasmflow.oci import (
    Access,
    ArtifactKind,
    BlobCache,
    Credentials,
    DigestMismatchError,
    Layout,
    NotFoundError,
    RetryPolicy,
    TooLargeError,
    UnauthorizedError,
    UnreachableError,
    UnsupportedArtifactError,
    parse_reference,
    pull_artifact,
    pull_graph,
    push_component,
    resolve_digest,
)
from wasmflow.oci import mediatypes as mt
from wasmflow.oci.digests import sha256_digest
from wasmflow.oci.manifest import Descriptor, Manifest, serialize_manifest

COMPONENT = operator("map")
PLAIN = Access(insecure=True)


def ref_in(host: str, tag: str = "1.0") -> str:
    return f"{host}/oci-tests/{uuid.uuid4().hex[:10]}:{tag}"


def push(ref: str, data: bytes = COMPONENT, access: Access = PLAIN, **kwargs: object) -> str:
    return asyncio.run(push_component(ref, data, access=access, **kwargs)).digest  # type: ignore[arg-type]


def push_raw(ref: str, config_type: str, layers: list[tuple[str, bytes]], *, artifact_type: str | None = None) -> str:
    """A manifest as another tool (oras, AIO, docker) would push it, built by hand."""
    parsed = parse_reference(ref)

    async def go() -> str:
        async with PLAIN.client(parsed.registry) as client:
            config = b"{}"
            await client.upload_blob(parsed, config)
            descriptors = []
            for media_type, data in layers:
                descriptors.append(
                    Descriptor(media_type=media_type, digest=await client.upload_blob(parsed, data), size=len(data))
                )
            manifest = Manifest(
                media_type=mt.OCI_MANIFEST,
                artifact_type=artifact_type,
                config=Descriptor(media_type=config_type, digest=sha256_digest(config), size=len(config)),
                layers=tuple(descriptors),
            )
            return await client.put_manifest(parsed, serialize_manifest(manifest))

    return asyncio.run(go())


def pull(ref: str, access: Access = PLAIN, **kwargs: object):  # type: ignore[no-untyped-def]
    return asyncio.run(pull_artifact(ref, access=access, **kwargs))  # type: ignore[arg-type]


def test_a_pushed_component_pulls_back_verified_in_the_cncf_layout(registry: Registry) -> None:
    ref = ref_in(registry.host)
    digest = push(ref)
    pulled = pull(ref)
    assert pulled.data == COMPONENT
    assert (pulled.layout, pulled.kind, pulled.media_type) == (Layout.CNCF_WASM, ArtifactKind.COMPONENT, mt.WASM_LAYER)
    assert pulled.manifest_digest == digest
    assert pulled.digest == sha256_digest(COMPONENT)
    assert pulled.reference.digest == digest
    assert asyncio.run(resolve_digest(ref, access=PLAIN)) == digest


def test_a_chunked_upload_pulls_back_the_same_bytes(registry: Registry) -> None:
    ref = ref_in(registry.host)
    push(ref, chunk_size=100)
    assert pull(ref).data == COMPONENT


def test_pushing_to_the_htpasswd_registry_and_pulling_with_credentials(registry_auth: AuthRegistry) -> None:
    access = Access(insecure=True, credentials=Credentials(registry_auth.username, registry_auth.password))
    ref = ref_in(registry_auth.host)
    digest = push(ref, access=access)
    assert pull(ref, access).manifest_digest == digest


def test_the_htpasswd_registry_refuses_an_anonymous_pull_saying_credentials_are_needed(
    registry_auth: AuthRegistry,
) -> None:
    with pytest.raises(UnauthorizedError, match="requires credentials"):
        pull(ref_in(registry_auth.host))


def test_a_wrong_password_is_unauthorized_and_the_message_does_not_carry_it(registry_auth: AuthRegistry) -> None:
    wrong = "wrong-" + uuid.uuid4().hex
    access = Access(insecure=True, credentials=Credentials(registry_auth.username, wrong))
    with pytest.raises(UnauthorizedError, match="refused the credentials") as caught:
        pull(ref_in(registry_auth.host), access)
    assert wrong not in str(caught.value)
    assert not caught.value.transient


def test_a_missing_tag_is_not_found(registry: Registry) -> None:
    ref = ref_in(registry.host)
    push(ref)
    missing = ref.rsplit(":", 1)[0] + ":2.0"
    with pytest.raises(NotFoundError, match=r"manifest 2\.0 not found"):
        pull(missing)


def test_a_repository_nobody_pushed_to_is_not_found(registry: Registry) -> None:
    with pytest.raises(NotFoundError, match=r"manifest 1\.0 not found"):
        pull(ref_in(registry.host))


def test_a_digest_pin_that_the_tag_does_not_resolve_to_is_a_mismatch_before_any_layer_download(
    registry: Registry, tmp_path: Path
) -> None:
    ref = ref_in(registry.host)
    digest = push(ref)
    tampered = "sha256:" + ("0" if digest[-1] != "0" else "1") * 64
    with pytest.raises(DigestMismatchError, match="matches neither the manifest nor the content") as caught:
        pull(ref, expected_digest=tampered, cache_dir=tmp_path)
    assert caught.value.expected == tampered
    assert not BlobCache(tmp_path).contains(sha256_digest(COMPONENT))


def test_a_pin_may_name_the_manifest_or_the_component_itself(registry: Registry) -> None:
    ref = ref_in(registry.host)
    digest = push(ref)
    assert pull(ref, expected_digest=digest).data == COMPONENT
    assert pull(ref, expected_digest=sha256_digest(COMPONENT)).data == COMPONENT


def test_a_reference_pinned_to_the_component_digest_is_fetched_as_that_blob(registry: Registry) -> None:
    ref = ref_in(registry.host)
    push(ref)
    pinned = ref.rsplit(":", 1)[0] + "@" + sha256_digest(COMPONENT)
    pulled = pull(pinned)
    assert (pulled.layout, pulled.data, pulled.manifest_digest) == (Layout.BLOB, COMPONENT, None)


def test_a_component_over_the_size_limit_is_refused_before_a_byte_of_it_is_read(registry: Registry) -> None:
    ref = ref_in(registry.host)
    push(ref)
    with pytest.raises(TooLargeError, match=f"{len(COMPONENT)} bytes .* over the limit of 100 bytes") as caught:
        pull(ref, max_bytes=100)
    assert (caught.value.limit, caught.value.received) == (100, 0)


def test_a_container_image_is_refused_by_name(registry: Registry) -> None:
    ref = ref_in(registry.host)
    push_raw(ref, mt.OCI_IMAGE_CONFIG, [("application/vnd.oci.image.layer.v1.tar+gzip", b"\x1f\x8b not really")])
    with pytest.raises(UnsupportedArtifactError, match="this is a container image") as caught:
        pull(ref)
    assert "application/vnd.oci.image.layer.v1.tar+gzip" in str(caught.value)


def test_a_layer_of_an_unknown_type_is_refused_naming_the_type(registry: Registry) -> None:
    ref = ref_in(registry.host)
    push_raw(ref, mt.WASM_CONFIG_V0, [("application/octet-stream", COMPONENT)])
    with pytest.raises(UnsupportedArtifactError, match="'application/octet-stream' is not a Wasm component layer"):
        pull(ref)


def test_a_layer_typed_as_wasm_that_is_not_webassembly_is_refused(registry: Registry) -> None:
    ref = ref_in(registry.host)
    push_raw(ref, mt.WASM_CONFIG_V0, [(mt.WASM_LAYER, b"#!/bin/sh\necho not wasm\n")])
    with pytest.raises(UnsupportedArtifactError, match="typed as WebAssembly but its content is not"):
        pull(ref)


@pytest.mark.parametrize(
    ("config_type", "layer_type", "artifact_type", "layout"),
    [
        (mt.OCI_EMPTY, mt.WASM_LAYER_CONTENT, mt.AIO_MODULE_ARTIFACT, Layout.AIO_MODULE),
        (mt.AIO_MODULE_ARTIFACT, mt.WASM_LAYER_CONTENT, None, Layout.AIO_MODULE),
        (mt.ORAS_UNKNOWN_CONFIG, mt.WASM_LAYER, None, Layout.ORAS),
        (mt.WASM_CONFIG_V1, mt.WASM_LAYER_CONTENT, None, Layout.WASM_TO_OCI),
    ],
)
def test_components_pushed_by_other_tools_pull(
    registry: Registry, config_type: str, layer_type: str, artifact_type: str | None, layout: Layout
) -> None:
    ref = ref_in(registry.host)
    push_raw(ref, config_type, [(layer_type, COMPONENT)], artifact_type=artifact_type)
    pulled = pull(ref)
    assert (pulled.layout, pulled.data, pulled.media_type) == (layout, COMPONENT, layer_type)


def test_an_aio_graph_definition_pulls_as_yaml_and_is_refused_where_a_component_is_wanted(registry: Registry) -> None:
    ref = ref_in(registry.host)
    graph = b"moduleRequirements:\n  apiVersion: 1.1.0\n"
    push_raw(ref, mt.AIO_GRAPH, [("application/yaml", graph)])
    assert asyncio.run(pull_graph(ref, access=PLAIN)).data == graph
    with pytest.raises(UnsupportedArtifactError, match="expected a Wasm component"):
        pull(ref)


def test_a_pinned_cached_component_is_served_without_the_network(registry: Registry, tmp_path: Path) -> None:
    ref = ref_in(registry.host)
    digest = push(ref)
    first = pull(ref, cache_dir=tmp_path)
    assert not first.from_cache
    # The same digest under a host that answers nothing: only the cache can serve it.
    offline = f"127.0.0.1:{free_port()}/oci-tests/anything@{digest}"
    again = pull(offline, cache_dir=tmp_path)
    assert again.from_cache and again.data == COMPONENT


def test_a_damaged_cache_entry_is_pulled_again(registry: Registry, tmp_path: Path) -> None:
    ref = ref_in(registry.host)
    push(ref)
    pull(ref, cache_dir=tmp_path)
    BlobCache(tmp_path).path(sha256_digest(COMPONENT)).write_bytes(b"\0asm damaged on disk")
    pulled = pull(ref, cache_dir=tmp_path)
    assert not pulled.from_cache and pulled.data == COMPONENT
    assert BlobCache(tmp_path).read(sha256_digest(COMPONENT)) == COMPONENT


def test_a_registry_nobody_listens_on_is_unreachable_after_the_retries() -> None:
    access = Access(insecure=True, retry=RetryPolicy(attempts=2, initial_delay=0.01, max_delay=0.02))
    with pytest.raises(UnreachableError, match="cannot connect") as caught:
        pull(f"127.0.0.1:{free_port()}/oci-tests/op:1", access)
    assert caught.value.transient


def test_tls_to_a_plain_http_registry_says_to_set_insecure(registry: Registry) -> None:
    access = Access(retry=RetryPolicy(attempts=1))
    with pytest.raises(UnreachableError, match="insecure: true"):
        pull(ref_in(registry.host), access)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
