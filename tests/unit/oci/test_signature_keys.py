"""Keys for cosign's key-based signatures: what is read, and what is refused with the reason."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from wasmflow.errors import ConfigError
from wasmflow.oci.reference import parse_reference
from wasmflow.oci.signatures import (
    Found,
    FoundSignature,
    SignatureInvalidError,
    load_private_key,
    load_public_key,
    signed_digest,
    simple_signing_payload,
    verify_found,
)
from wasmflow.operator.verification import PolicyError, load_key_bundle

DIGEST = "sha256:" + "a" * 64


def pem_public(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_a_pem_p256_public_key_gets_the_fingerprint_of_its_der_as_key_id() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    loaded = load_public_key(pem_public(key))
    assert loaded.key_id.startswith("sha256:")
    assert len(loaded.key_id) == len("sha256:") + 64
    assert loaded.short_id == loaded.key_id[:23]


def test_an_rsa_public_key_is_refused_naming_what_it_is() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(ConfigError, match="RSA key: cosign's key-based signatures verified here are ECDSA P-256"):
        load_public_key(pem_public(key), where="cosign.pub")


def test_a_password_protected_pem_private_key_opens_with_its_password_only() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    assert load_private_key(pem, b"secret").public.key_id == load_public_key(pem_public(key)).key_id
    with pytest.raises(ConfigError):
        load_private_key(pem, b"wrong")


def test_a_signature_of_the_right_digest_by_a_trusted_key_is_the_verdict() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    payload = simple_signing_payload(parse_reference("127.0.0.1:5000/ops/map:1.0"), DIGEST)
    assert signed_digest(payload) == DIGEST
    found = Found(subject=DIGEST, signatures=(_signature(key, payload),), referrers=None)
    verified = verify_found(found, (load_public_key(pem_public(key)),), reference="ref")
    assert verified.subject == DIGEST
    assert verified.signer.startswith("key sha256:")


def test_a_payload_of_another_type_is_refused_even_when_the_signature_verifies() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    payload = b'{"critical":{"image":{"docker-manifest-digest":"' + DIGEST.encode() + b'"},"type":"other"}}'
    found = Found(subject=DIGEST, signatures=(_signature(key, payload),), referrers=None)
    with pytest.raises(SignatureInvalidError, match="signs no digest"):
        verify_found(found, (load_public_key(pem_public(key)),), reference="ref")


def test_a_bundle_of_trusted_keys_reads_every_key_and_refuses_garbage(tmp_path: Path) -> None:
    first, second = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    bundle = tmp_path / "keys.pem"
    bundle.write_bytes(pem_public(first) + pem_public(second))
    assert len(load_key_bundle(bundle)) == 2
    bundle.write_bytes(pem_public(first) + b"-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
    with pytest.raises(PolicyError, match=r"verify\.publicKeys"):
        load_key_bundle(bundle)


def _signature(key: ec.EllipticCurvePrivateKey, payload: bytes) -> FoundSignature:
    return FoundSignature(
        payload=payload,
        payload_digest="sha256:" + "b" * 64,
        signature=base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode(),
        certificate=None,
        manifest_digest="sha256:" + "c" * 64,
        source="tag",
    )
