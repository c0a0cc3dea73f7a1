"""Signatures on pushed components, as cosign stores them: made by ``wasmflow push --sign`` / ``wasmflow sign``,
checked by ``wasmflow verify``, against the real test registry; every refusal with its reason.

The interoperability with the real cosign CLI both ways is in test_cosign_interop.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.services import Registry
from wasmflow.oci import Access, Reference, parse_reference
from wasmflow.oci.manifest import Manifest, serialize_manifest
from wasmflow.oci.signatures import SIGNATURE_ANNOTATION, signature_tag

WASMFLOW = str(Path(sys.executable).parent / "wasmflow")


def wasmflow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WASMFLOW, *args], capture_output=True, text=True, check=False, timeout=120)


def key_pair(directory: Path, name: str) -> tuple[Path, Path]:
    """A PEM ECDSA P-256 private key and its public key, as files."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = directory / f"{name}.key"
    public = directory / f"{name}.pub"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, public


def pushed(registry: Registry, path: Path, *extra: str) -> tuple[str, str]:
    """Push ``path`` to a fresh repository; (the tag reference, the manifest digest)."""
    ref = f"{registry.host}/signed/{uuid.uuid4().hex[:8]}:1.0"
    result = wasmflow("push", str(path), ref, "--insecure", *extra)
    assert result.returncode == 0, result.stderr
    return ref, result.stdout.strip()


def at_tag(ref: Reference, tag: str) -> Reference:
    return Reference(registry=ref.registry, repository=ref.repository, tag=tag)


def copy_signature(registry: Registry, source_digest: str, source_ref: str, target_ref: str, target: str) -> None:
    """Put the signature manifest of ``source_digest`` at ``target``'s ``.sig`` tag (blobs copied along)."""

    async def copy() -> None:
        src = parse_reference(source_ref)
        dst = parse_reference(target_ref)
        async with Access(insecure=True).client(registry.host) as client:
            fetched = await client.fetch_manifest(at_tag(src, signature_tag(source_digest)))
            sig_tag = at_tag(dst, signature_tag(target))
            for descriptor in (fetched.manifest.config, *fetched.manifest.layers):
                data = await client.fetch_blob(src, descriptor.digest)
                await client.upload_blob(sig_tag, data)
            await client.put_manifest(sig_tag, fetched.raw, fetched.media_type)

    asyncio.run(copy())


def tamper_signature(registry: Registry, ref: str, digest: str) -> None:
    """Replace the signature of ``digest`` by the same bytes with one bit flipped (the payload untouched)."""

    async def tamper() -> None:
        base = parse_reference(ref)
        sig_tag = at_tag(base, signature_tag(digest))
        async with Access(insecure=True).client(registry.host) as client:
            fetched = await client.fetch_manifest(sig_tag)
            layer = fetched.manifest.layers[0]
            raw = bytearray(base64.b64decode((layer.annotations or {})[SIGNATURE_ANNOTATION]))
            raw[-1] ^= 0x01
            altered = layer.model_copy(update={"annotations": {SIGNATURE_ANNOTATION: base64.b64encode(raw).decode()}})
            manifest = Manifest.model_validate(
                fetched.manifest.model_copy(update={"layers": (altered,)}).model_dump(by_alias=True)
            )
            await client.put_manifest(sig_tag, serialize_manifest(manifest), fetched.media_type)

    asyncio.run(tamper())


@pytest.fixture
def keys(tmp_path: Path) -> Callable[[str], tuple[Path, Path]]:
    return lambda name: key_pair(tmp_path, name)


def test_push_sign_stores_a_signature_that_verify_accepts_with_the_public_key(
    registry: Registry, component: Callable[[str], Path], keys: Callable[[str], tuple[Path, Path]]
) -> None:
    private, public = keys("release")
    ref, digest = pushed(registry, component("wat_identity_map"), "--sign", str(private))
    result = wasmflow("verify", ref, "--key", str(public), "--insecure")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == digest
    assert "signed by key sha256:" in result.stderr


def test_sign_after_push_signs_the_manifest_digest_the_tag_names(
    registry: Registry, component: Callable[[str], Path], keys: Callable[[str], tuple[Path, Path]]
) -> None:
    private, public = keys("release")
    ref, digest = pushed(registry, component("wat_identity_map"))
    signed = wasmflow("sign", ref, "--key", str(private), "--insecure")
    assert signed.returncode == 0, signed.stderr
    assert signed.stdout.strip() == digest
    by_digest = wasmflow("verify", f"{ref.rsplit(':', 1)[0]}@{digest}", "--key", str(public), "--insecure")
    assert by_digest.returncode == 0, by_digest.stderr


def test_an_unsigned_artifact_is_refused_as_signature_missing(
    registry: Registry, component: Callable[[str], Path], keys: Callable[[str], tuple[Path, Path]]
) -> None:
    _, public = keys("release")
    ref, digest = pushed(registry, component("wat_identity_map"))
    result = wasmflow("verify", ref, "--key", str(public), "--insecure")
    assert result.returncode == 1
    assert "SignatureMissing" in result.stderr
    assert f"no signature found for {digest}" in result.stderr


def test_a_signature_by_another_key_is_refused_as_invalid(
    registry: Registry, component: Callable[[str], Path], keys: Callable[[str], tuple[Path, Path]]
) -> None:
    untrusted, _ = keys("someone-else")
    _, trusted = keys("release")
    ref, _ = pushed(registry, component("wat_identity_map"), "--sign", str(untrusted))
    result = wasmflow("verify", ref, "--key", str(trusted), "--insecure")
    assert result.returncode == 1
    assert "SignatureInvalid" in result.stderr
    assert "does not verify with any trusted key" in result.stderr


def test_a_tampered_signature_is_refused_as_invalid(
    registry: Registry, component: Callable[[str], Path], keys: Callable[[str], tuple[Path, Path]]
) -> None:
    private, public = keys("release")
    ref, digest = pushed(registry, component("wat_identity_map"), "--sign", str(private))
    tamper_signature(registry, ref, digest)
    result = wasmflow("verify", ref, "--key", str(public), "--insecure")
    assert result.returncode == 1
    assert "SignatureInvalid" in result.stderr
    assert "does not verify with any trusted key (made by another key, or altered)" in result.stderr


def test_a_valid_signature_of_another_digest_copied_next_to_an_artifact_is_refused(
    registry: Registry, component: Callable[[str], Path], keys: Callable[[str], tuple[Path, Path]]
) -> None:
    private, public = keys("release")
    signed_ref, signed_digest = pushed(registry, component("wat_identity_map"), "--sign", str(private))
    # The same component pushed again with another annotation: another manifest, so another digest.
    other_ref, other_digest = pushed(registry, component("wat_identity_map"), "--annotation", "build=2")
    copy_signature(registry, signed_digest, signed_ref, other_ref, other_digest)
    result = wasmflow("verify", other_ref, "--key", str(public), "--insecure")
    assert result.returncode == 1
    assert "SignatureInvalid" in result.stderr
    assert f"signs {signed_digest}, not {other_digest}" in result.stderr


def test_inspect_shows_the_signatures_and_the_sbom_annotation_kept_on_push(
    registry: Registry, component: Callable[[str], Path], keys: Callable[[str], tuple[Path, Path]]
) -> None:
    private, _ = keys("release")
    sbom = "dev.wasmflow.sbom=sha256:" + "ab" * 32
    ref, digest = pushed(registry, component("wat_identity_map"), "--sign", str(private), "--annotation", sbom)
    result = wasmflow("inspect", ref, "--insecure", "--json")
    assert result.returncode == 0, result.stderr
    described = json.loads(result.stdout)["provenance"]
    assert described["digest"] == digest
    assert described["annotations"]["dev.wasmflow.sbom"] == sbom.split("=", 1)[1]
    assert [s["signedDigest"] for s in described["signatures"]] == [digest]
    assert described["signatures"][0]["source"] == "tag"
    assert described["referrers"] is None  # distribution 2.8 has no referrers API: cosign's tag schema it is
