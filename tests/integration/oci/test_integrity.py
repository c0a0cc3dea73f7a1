"""Two different digest failures, produced for real: a pin the artifact does not match (the user's to fix), and a
registry serving bytes that do not match their own digest (its storage damaged on disk here, as a corrupt store or
a tampering middlebox would serve them: the registry's fault, worth retrying)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from tests.components.engine.wat import operator
from tests.integration.oci.storage import flipped, stored_blob, unique
from tests.registry_env import RegistryEnv
from wasmflow.oci import Access, BlobCache, CorruptContentError, PinMismatchError, pull_artifact, push_component
from wasmflow.oci.digests import sha256_digest

PLAIN = Access(insecure=True)


def pushed(registries: RegistryEnv, data: bytes) -> tuple[str, str]:
    """``data`` pushed to a fresh repository of the plain registry: (tagged reference, manifest digest)."""
    ref = f"{registries.plain.host}/integrity/{uuid.uuid4().hex[:10]}:1.0"
    return ref, asyncio.run(push_component(ref, data, access=PLAIN)).digest


def test_a_pin_the_tag_does_not_resolve_to_is_a_pin_mismatch_the_user_must_fix(registries: RegistryEnv) -> None:
    ref, digest = pushed(registries, operator("map"))
    other = "sha256:" + ("0" if digest[-1] != "0" else "1") * 64
    with pytest.raises(PinMismatchError) as caught:
        asyncio.run(pull_artifact(ref, access=PLAIN, expected_digest=other))
    assert (caught.value.expected, caught.value.actual, caught.value.transient) == (other, digest, False)
    assert "matches neither the manifest nor the content" in str(caught.value)


def test_a_layer_whose_stored_bytes_no_longer_match_its_digest_is_corrupt_content_and_is_not_cached(
    registries: RegistryEnv, tmp_path: Path
) -> None:
    component = unique(operator("map"))
    ref, _ = pushed(registries, component)
    layer = sha256_digest(component)
    stored_blob(registries.state_dir, layer).write_bytes(flipped(component))
    with pytest.raises(CorruptContentError) as caught:
        asyncio.run(pull_artifact(ref, access=PLAIN, cache_dir=tmp_path))
    assert caught.value.transient
    assert caught.value.expected == layer
    assert caught.value.actual == sha256_digest(flipped(component))
    assert f"content has digest {caught.value.actual}, expected {layer}" in str(caught.value)
    assert not BlobCache(tmp_path).contains(layer)


def test_a_manifest_whose_stored_bytes_no_longer_match_its_digest_is_corrupt_content(
    registries: RegistryEnv,
) -> None:
    ref, digest = pushed(registries, unique(operator("map")))
    manifest = stored_blob(registries.state_dir, digest)
    raw = manifest.read_bytes()
    damaged = raw.replace(b'"schemaVersion":2', b'"schemaVersion": 2')  # the same document, other bytes
    assert damaged != raw
    manifest.write_bytes(damaged)
    with pytest.raises(CorruptContentError) as caught:
        asyncio.run(pull_artifact(ref, access=PLAIN))
    assert caught.value.expected == digest
    assert f"the registry says the manifest is {digest}" in str(caught.value)
