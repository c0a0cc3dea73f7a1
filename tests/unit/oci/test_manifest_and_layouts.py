"""Manifests as registries serve them, and which Wasm layouts are pulled (or refused, saying what they are)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from wasmflow.oci import ArtifactKind, InvalidReferenceError, Layout, UnsupportedArtifactError
from wasmflow.oci import mediatypes as mt
from wasmflow.oci.digests import sha256_digest
from wasmflow.oci.layouts import classify, require_kind
from wasmflow.oci.manifest import parse_manifest, serialize_manifest
from wasmflow.oci.push import ComponentInfo, component_manifest, wasm_config

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def manifest(config_type: str, *layer_types: str, artifact_type: str | None = None, **extra: Any) -> bytes:
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": D1, "size": 2},
        "layers": [{"mediaType": t, "digest": D2, "size": 10} for t in layer_types],
        **extra,
    }
    if artifact_type:
        document["artifactType"] = artifact_type
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("raw", "layout"),
    [
        (manifest(mt.WASM_CONFIG_V0, mt.WASM_LAYER), Layout.CNCF_WASM),
        (manifest(mt.OCI_EMPTY, mt.WASM_LAYER_CONTENT, artifact_type=mt.AIO_MODULE_ARTIFACT), Layout.AIO_MODULE),
        (manifest(mt.AIO_MODULE_ARTIFACT, mt.WASM_LAYER_CONTENT), Layout.AIO_MODULE),
        (manifest(mt.ORAS_UNKNOWN_CONFIG, mt.AIO_MODULE_ARTIFACT), Layout.AIO_MODULE),
        (manifest(mt.WASM_CONFIG_V1, mt.WASM_LAYER_CONTENT), Layout.WASM_TO_OCI),
        (manifest(mt.OCI_EMPTY, mt.WASM_LAYER, artifact_type="application/vnd.example.op"), Layout.ORAS),
        (manifest(mt.ORAS_UNKNOWN_CONFIG, mt.WASM_LAYER), Layout.ORAS),
        (manifest(mt.WASM_CONFIG_V0, mt.WASM_LAYER_BYTECODEALLIANCE), Layout.CNCF_WASM),
    ],
)
def test_every_component_layout_met_in_the_field_is_pulled_from_its_one_wasm_layer(raw: bytes, layout: Layout) -> None:
    classified = classify(parse_manifest(raw))
    assert (classified.kind, classified.layout, classified.layer.digest) == (ArtifactKind.COMPONENT, layout, D2)


def test_an_aio_graph_definition_is_a_graph_with_its_yaml_layer() -> None:
    classified = classify(parse_manifest(manifest(mt.AIO_GRAPH, "application/yaml")))
    assert (classified.kind, classified.layout) == (ArtifactKind.GRAPH, Layout.AIO_GRAPH)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (manifest(mt.OCI_IMAGE_CONFIG, "application/vnd.oci.image.layer.v1.tar+gzip"), "this is a container image"),
        (manifest(mt.ORAS_UNKNOWN_CONFIG, "application/vnd.docker.image.rootfs.diff.tar.gzip"), "container image"),
        (manifest("application/vnd.cncf.helm.config.v1+json", "application/x-tar"), "this is a Helm chart"),
        (manifest(mt.WASM_CONFIG_V0, mt.WASM_LAYER, mt.WASM_LAYER), "exactly one layer, found 2"),
        (manifest(mt.WASM_CONFIG_V0), "has no layers"),
        (manifest(mt.WASM_CONFIG_V0, "application/octet-stream"), "'application/octet-stream' is not a Wasm"),
        (manifest(mt.AIO_GRAPH, mt.WASM_LAYER), "one application/yaml layer, found: application/wasm"),
    ],
)
def test_what_is_not_a_wasm_artifact_is_refused_by_name(raw: bytes, says: str) -> None:
    with pytest.raises(UnsupportedArtifactError, match=says) as caught:
        classify(parse_manifest(raw), reference="r.example/op:1")
    assert caught.value.reason == "UnsupportedArtifact"
    assert caught.value.found
    assert str(caught.value).startswith("r.example/op:1: ")


def test_a_graph_where_a_component_is_wanted_is_refused_saying_both() -> None:
    classified = classify(parse_manifest(manifest(mt.AIO_GRAPH, "application/yaml")))
    with pytest.raises(UnsupportedArtifactError, match="expected a Wasm component, this is an AIO graph definition"):
        require_kind(classified, ArtifactKind.COMPONENT)


def test_an_image_index_is_refused_with_its_platforms() -> None:
    index = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [
            {
                "mediaType": mt.OCI_MANIFEST,
                "digest": D1,
                "size": 1,
                "platform": {"os": "linux", "architecture": "amd64"},
            },
            {
                "mediaType": mt.OCI_MANIFEST,
                "digest": D2,
                "size": 1,
                "platform": {"os": "wasip2", "architecture": "wasm"},
            },
        ],
    }
    with pytest.raises(UnsupportedArtifactError, match=r"image index .* for linux/amd64, wasip2/wasm.*by digest"):
        parse_manifest(json.dumps(index).encode())


def test_a_docker_schema_1_manifest_is_refused_as_legacy() -> None:
    with pytest.raises(UnsupportedArtifactError, match="schema 1"):
        parse_manifest(json.dumps({"schemaVersion": 1, "name": "x", "fsLayers": []}).encode())


@pytest.mark.parametrize(("raw", "says"), [(b"\x00asm", "not JSON"), (b"[1, 2]", "not a JSON object")])
def test_bytes_that_are_not_a_manifest_object_are_refused(raw: bytes, says: str) -> None:
    with pytest.raises(UnsupportedArtifactError, match=says):
        parse_manifest(raw)


def test_a_malformed_manifest_names_the_field() -> None:
    raw = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "layers": []}).encode()
    with pytest.raises(UnsupportedArtifactError, match="malformed at config"):
        parse_manifest(raw)


def test_a_descriptor_with_a_bad_digest_is_an_invalid_reference() -> None:
    raw = manifest(mt.WASM_CONFIG_V0, mt.WASM_LAYER).replace(D2.encode(), b"sha256:short")
    with pytest.raises(InvalidReferenceError) as caught:
        parse_manifest(raw)
    assert caught.value.part == "digest"


def test_a_manifest_without_media_type_takes_it_from_the_content_type() -> None:
    document = json.loads(manifest(mt.WASM_CONFIG_V0, mt.WASM_LAYER))
    del document["mediaType"]
    parsed = parse_manifest(json.dumps(document).encode(), f"{mt.DOCKER_MANIFEST}; charset=utf-8")
    assert parsed.config.media_type == mt.WASM_CONFIG_V0
    with pytest.raises(UnsupportedArtifactError, match="image index"):
        parse_manifest(json.dumps(document).encode(), mt.OCI_INDEX)


def test_unknown_fields_are_ignored_so_newer_manifests_parse() -> None:
    parsed = parse_manifest(manifest(mt.WASM_CONFIG_V0, mt.WASM_LAYER, subject={"x": 1}, futureField=[1]))
    assert parsed.layers[0].media_type == mt.WASM_LAYER


def test_the_pushed_cncf_manifest_parses_back_into_the_cncf_layout() -> None:
    data = b"\0asm\x0d\x00\x01\x00"
    created = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    info = ComponentInfo(exports=("wasmflow:operator/map@0.1.0",), imports=("wasi:io/error@0.2.0",), target="w")
    config = wasm_config(sha256_digest(data), component=info, created=created, author=None)
    built = component_manifest(data, config, created=created, annotations={"a": "b"}, title="op.wasm")
    parsed = parse_manifest(serialize_manifest(built))
    classified = classify(parsed)
    assert classified.layout is Layout.CNCF_WASM
    assert classified.layer.digest == sha256_digest(data)
    assert classified.layer.title == "op.wasm"
    assert parsed.config.digest == sha256_digest(config)
    assert parsed.annotations == {"org.opencontainers.image.created": "2026-11-30T12:00:00Z", "a": "b"}
    assert json.loads(config) == {
        "created": "2026-11-30T12:00:00Z",
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [sha256_digest(data)],
        "component": {"exports": list(info.exports), "imports": list(info.imports), "target": "w"},
    }
