"""Sigstore/cosign signatures on OCI artifacts: found, verified with a trusted key, made and pushed.

What cosign writes for ``cosign sign --key cosign.key REPO@sha256:D`` (its key-based "simple signing", without a
transparency log: a cluster at the edge may have no internet) and what this module reads and writes the same way:

    tag        sha256-<hex of D>.sig in the same repository (cosign's tag schema; a registry answering the OCI 1.1
               referrers API may also list signatures as referrers of D, which are read as well)
    manifest   an OCI image manifest; each layer is one signature:
    layer      application/vnd.dev.cosign.simplesigning.v1+json, the payload
               {"critical": {"identity": {"docker-reference": REPO}, "image": {"docker-manifest-digest": D},
                "type": "cosign container image signature"}, "optional": ...}
               annotation dev.cosignproject.cosign/signature: base64 of the ECDSA P-256 / SHA-256 signature (DER) of
               the payload bytes

A signature counts only when it verifies with a trusted key (``cryptography``) AND its payload names the digest
being verified: a valid signature of another artifact, copied next to this one, is refused. Everything read from the
registry is bounded (the signature manifest, each payload, the number of signatures looked at) and fetched through
the OCI client, which verifies every byte against its digest.

Keys: a public key as PEM (``cosign.pub``); a private key as PEM (PKCS#8 or SEC1, optionally password-protected) or
as cosign's own encrypted format (``cosign generate-key-pair``: scrypt + NaCl secretbox around a PKCS#8 key, the
password from ``COSIGN_PASSWORD``), opened with PyNaCl.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from wasmflow.errors import ConfigError
from wasmflow.oci import mediatypes as mt
from wasmflow.oci.digests import sha256_digest
from wasmflow.oci.errors import NotFoundError, OciError
from wasmflow.oci.manifest import Descriptor, Manifest, serialize_manifest
from wasmflow.oci.reference import Reference, parse_digest

if TYPE_CHECKING:
    from wasmflow.oci.client import RegistryClient
    from wasmflow.oci.pull import Access

__all__ = [
    "COSIGN_SIGNATURE_TYPE",
    "SIGNATURE_ANNOTATION",
    "SIMPLE_SIGNING",
    "Described",
    "Found",
    "FoundSignature",
    "PrivateKey",
    "PublicKey",
    "SignatureError",
    "SignatureInvalidError",
    "SignatureMissingError",
    "Verified",
    "describe_reference",
    "find_signatures",
    "load_private_key",
    "load_public_key",
    "resolved",
    "sign_artifact",
    "sign_reference",
    "signature_tag",
    "signed_digest",
    "simple_signing_payload",
    "verify_found",
    "verify_reference",
]

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
COSIGN_SIGNATURE_TYPE = "cosign container image signature"
#: Media types of referrers that carry a signature (cosign's simple signing, a Sigstore bundle).
SIGNATURE_ARTIFACT_TYPES = (SIMPLE_SIGNING, "application/vnd.dev.sigstore.bundle.v0.3+json")
#: A signature manifest lists one layer per signature: a few KiB. Far more is not a signature manifest.
MAX_SIGNATURE_MANIFEST_BYTES = 256 * 1024
#: A simple-signing payload is a few hundred bytes (more with cosign's -a annotations).
MAX_PAYLOAD_BYTES = 64 * 1024
#: Signatures looked at per artifact: a repository anyone can push to must not make us verify thousands.
MAX_SIGNATURES = 32
#: The referrers of one artifact listed (and shown): signatures, SBOMs, attestations.
MAX_REFERRERS_BYTES = 1024 * 1024
#: cosign's scrypt parameters are N=32768 r=8 p=1 (32 MiB); anything costlier is refused before it runs.
_MAX_SCRYPT_N = 2**20
_MAX_SCRYPT_MEMORY = 1100 * 2**20
_ENCRYPTED_PEM_TYPES = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")
_MAX_KEY_FILE_BYTES = 64 * 1024


class SignatureError(OciError):
    """Base of the verification verdicts; ``reason`` is the status condition reason."""


class SignatureMissingError(SignatureError):
    """No signature at all was found for the artifact (nothing at its ``.sig`` tag, no signature referrer)."""

    reason: ClassVar[str] = "SignatureMissing"


class SignatureInvalidError(SignatureError):
    """Signatures were found but none verifies with a trusted key for this digest; the message says what failed."""

    reason: ClassVar[str] = "SignatureInvalid"


@dataclass(frozen=True)
class PublicKey:
    """A trusted verification key; ``key_id`` is ``sha256:`` + the hex SHA-256 of its DER SubjectPublicKeyInfo."""

    key: ec.EllipticCurvePublicKey = field(repr=False)
    key_id: str

    @property
    def short_id(self) -> str:
        return self.key_id[: len("sha256:") + 16]


@dataclass(frozen=True)
class PrivateKey:
    """A signing key (ECDSA P-256, cosign's default) and its public half."""

    key: ec.EllipticCurvePrivateKey = field(repr=False)
    public: PublicKey


@dataclass(frozen=True)
class FoundSignature:
    """One signature layer as stored: the payload bytes (verified against ``payload_digest``) and the signature."""

    payload: bytes = field(repr=False)
    payload_digest: str
    signature: str
    """The base64 annotation, as stored (decoded at verification; a malformed one is a refusal there)."""
    certificate: str | None
    manifest_digest: str
    """The digest of the signature manifest that holds this layer."""
    source: Literal["tag", "referrer"]


@dataclass(frozen=True)
class Found:
    """What the registry holds about one artifact: its signatures and its referrers (SBOMs, attestations...).

    ``referrers`` is None when the registry does not answer the referrers API; ``skipped`` counts signature layers
    beyond MAX_SIGNATURES that were not looked at.
    """

    subject: str
    signatures: tuple[FoundSignature, ...]
    referrers: tuple[Descriptor, ...] | None
    skipped: int = 0


@dataclass(frozen=True)
class Verified:
    """The verdict for one artifact: who signed it (a key id) and which signature it was."""

    subject: str
    signer: str
    key_id: str
    signature_manifest: str
    payload_digest: str

    def status(self) -> dict[str, str]:
        """The WasmModule ``status.signature`` fields (camelCase, as written to the API server)."""
        return {
            "signer": self.signer,
            "keyId": self.key_id,
            "digest": self.signature_manifest,
            "payloadDigest": self.payload_digest,
            "signedDigest": self.subject,
        }


def signature_tag(digest: str) -> str:
    """cosign's tag for the signatures of manifest ``digest``: ``sha256-<hex>.sig``."""
    algorithm, hexdigest = parse_digest(digest)
    return f"{algorithm}-{hexdigest}.sig"


# ------------------------------------------------------------------------------------------------------- keys


def load_public_key(pem: bytes, *, where: str = "the public key") -> PublicKey:
    """An ECDSA P-256 public key from PEM (``cosign.pub``); any other key is a ConfigError naming what it is."""
    if len(pem) > _MAX_KEY_FILE_BYTES:
        raise ConfigError(f"is {len(pem)} bytes, not a PEM public key", where=where)
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"is not a PEM public key ({exc})", where=where) from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError(
            f"is a {_describe_key(key)} key: cosign's key-based signatures verified here are ECDSA P-256",
            where=where,
        )
    return _public(key)


def load_private_key(pem: bytes, password: bytes | None, *, where: str = "the private key") -> PrivateKey:
    """An ECDSA P-256 signing key: cosign's encrypted key (``cosign.key``) or a PEM private key.

    ``password`` opens cosign's format (COSIGN_PASSWORD; cosign allows an empty one) and an encrypted PEM.
    """
    if len(pem) > _MAX_KEY_FILE_BYTES:
        raise ConfigError(f"is {len(pem)} bytes, not a private key", where=where)
    text = pem.decode("ascii", errors="replace")
    pem_type = next((t for t in _ENCRYPTED_PEM_TYPES if f"-----BEGIN {t}-----" in text), None)
    try:
        if pem_type is not None:
            der = _open_cosign_key(text, pem_type, password or b"", where)
            key = serialization.load_der_private_key(der, password=None)
        else:
            key = serialization.load_pem_private_key(pem, password=password or None)
    except TypeError as exc:  # cryptography: a password given for a plain key, or none for an encrypted one
        raise ConfigError(f"cannot be opened: {exc}", where=where) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"is not a private key we read ({exc})", where=where) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError(f"is a {_describe_key(key)} key: signing here is ECDSA P-256 (cosign's default)", where=where)
    return PrivateKey(key=key, public=_public(key.public_key()))


def _open_cosign_key(text: str, pem_type: str, password: bytes, where: str) -> bytes:
    """The PKCS#8 DER inside cosign's encrypted key: JSON {kdf: scrypt, cipher: nacl/secretbox, ciphertext}."""
    from nacl.exceptions import CryptoError  # noqa: PLC0415 - only signing with cosign's own key file needs NaCl
    from nacl.secret import SecretBox  # noqa: PLC0415

    body = text.split(f"-----BEGIN {pem_type}-----", 1)[1].split(f"-----END {pem_type}-----", 1)[0]
    try:
        document = json.loads(base64.b64decode("".join(body.split()), validate=True))
        kdf, cipher = document["kdf"], document["cipher"]
        params = kdf["params"]
        n, r, p = int(params["N"]), int(params["r"]), int(params["p"])
        salt = base64.b64decode(kdf["salt"])
        nonce = base64.b64decode(cipher["nonce"])
        ciphertext = base64.b64decode(document["ciphertext"])
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"is a {pem_type} whose content does not parse ({exc.__class__.__name__})", where=where
        ) from exc
    if kdf.get("name") != "scrypt" or cipher.get("name") != "nacl/secretbox":
        raise ConfigError(
            f"uses kdf {kdf.get('name')!r} and cipher {cipher.get('name')!r}; cosign's keys use scrypt and "
            "nacl/secretbox",
            where=where,
        )
    if not (1 < n <= _MAX_SCRYPT_N and n & (n - 1) == 0 and 0 < r <= 32 and 0 < p <= 16) or 128 * n * r > 2**30:
        raise ConfigError(f"asks for scrypt N={n} r={r} p={p}, beyond what a cosign key uses: refused", where=where)
    secret = hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=32, maxmem=_MAX_SCRYPT_MEMORY)
    try:
        return SecretBox(secret).decrypt(ciphertext, nonce)
    except (CryptoError, ValueError) as exc:
        raise ConfigError("cannot be decrypted: wrong password (COSIGN_PASSWORD)", where=where) from exc


def _public(key: ec.EllipticCurvePublicKey) -> PublicKey:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return PublicKey(key=key, key_id="sha256:" + hashlib.sha256(der).hexdigest())


def _describe_key(key: object) -> str:
    curve = getattr(key, "curve", None)
    name = type(key).__name__.removeprefix("_").replace("PublicKey", "").replace("PrivateKey", "")
    return f"{name} ({curve.name})" if curve is not None else name


# ------------------------------------------------------------------------------------------------------- find


async def find_signatures(client: RegistryClient, ref: Reference) -> Found:
    """The signatures stored for ``ref``'s manifest digest (which it must carry) and its referrers.

    The ``.sig`` tag first (what cosign writes by default), then the referrers API when the registry answers it.
    Nothing here verifies a signature: ``verify_found`` does.
    """
    subject = ref.digest
    if subject is None:
        raise ConfigError("needs the artifact's manifest digest (resolve the tag first)", where=str(ref))
    signatures: list[FoundSignature] = []
    skipped = 0
    manifests: list[tuple[str, Literal["tag", "referrer"]]] = [(signature_tag(subject), "tag")]
    referrers = await client.referrers(ref, subject, max_bytes=MAX_REFERRERS_BYTES)
    for descriptor in referrers or ():
        if (descriptor.artifact_type or "") in SIGNATURE_ARTIFACT_TYPES:
            manifests.append((descriptor.digest, "referrer"))
    for identifier, source in manifests:
        target = (
            Reference(registry=ref.registry, repository=ref.repository, tag=identifier, digest=None)
            if source == "tag"
            else ref.with_digest(identifier)
        )
        try:
            fetched = await client.fetch_manifest(target, max_bytes=MAX_SIGNATURE_MANIFEST_BYTES)
        except NotFoundError:
            continue
        for layer in _signature_layers(fetched.manifest):
            if len(signatures) >= MAX_SIGNATURES:
                skipped += 1
                continue
            payload = await client.fetch_blob(target, layer.digest, size=layer.size, max_bytes=MAX_PAYLOAD_BYTES)
            annotations = layer.annotations or {}
            signatures.append(
                FoundSignature(
                    payload=payload,
                    payload_digest=layer.digest,
                    signature=annotations.get(SIGNATURE_ANNOTATION, ""),
                    certificate=annotations.get(CERTIFICATE_ANNOTATION),
                    manifest_digest=fetched.digest,
                    source=source,
                )
            )
    return Found(subject=subject, signatures=tuple(signatures), referrers=referrers, skipped=skipped)


def _signature_layers(manifest: Manifest) -> tuple[Descriptor, ...]:
    return tuple(layer for layer in manifest.layers if layer.media_type == SIMPLE_SIGNING)


# ------------------------------------------------------------------------------------------------------- verify


def verify_found(found: Found, keys: tuple[PublicKey, ...], *, reference: str) -> Verified:
    """The first signature that verifies with one of ``keys`` and names ``found.subject``; else the refusal.

    SignatureMissingError when there is no signature at all; SignatureInvalidError when there are some and none
    passes, saying for each what did not match (the key, the digest signed, a malformed signature).
    """
    if not keys:
        raise ConfigError("no trusted key to verify with", where=reference)
    if not found.signatures:
        raise SignatureMissingError(
            f"no signature found for {found.subject} (nothing at tag {signature_tag(found.subject)}"
            + (", no signature referrer" if found.referrers is not None else "")
            + "): sign it (cosign sign --key KEY REF@DIGEST, or wasmflow sign)",
            reference=reference,
        )
    problems: list[str] = []
    for signature in found.signatures:
        problem, verified = _check_one(signature, found.subject, keys)
        if verified is not None:
            return verified
        problems.append(problem)
    shown = "; ".join(dict.fromkeys(problems))
    trusted = ", ".join(k.short_id for k in keys)
    raise SignatureInvalidError(
        f"{len(found.signatures)} signature(s) found for {found.subject}, none valid for the trusted key(s) "
        f"{trusted}: {shown}",
        reference=reference,
    )


def _check_one(signature: FoundSignature, subject: str, keys: tuple[PublicKey, ...]) -> tuple[str, Verified | None]:
    where = f"signature {signature.payload_digest[:19]}..."
    try:
        raw = base64.b64decode(signature.signature, validate=True)
    except (binascii.Error, ValueError):
        return f"{where} has no valid base64 {SIGNATURE_ANNOTATION} annotation", None
    if not raw:
        return f"{where} has no {SIGNATURE_ANNOTATION} annotation", None
    key = next((k for k in keys if _verifies(k, raw, signature.payload)), None)
    if key is None:
        return f"{where} does not verify with any trusted key (made by another key, or altered)", None
    signed = signed_digest(signature.payload)
    if signed != subject:
        return f"{where} is by key {key.short_id} but signs {signed or 'no digest'}, not {subject}", None
    return "", Verified(
        subject=subject,
        signer=f"key {key.short_id}",
        key_id=key.key_id,
        signature_manifest=signature.manifest_digest,
        payload_digest=signature.payload_digest,
    )


def _verifies(key: PublicKey, signature: bytes, payload: bytes) -> bool:
    try:
        key.key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def signed_digest(payload: bytes) -> str | None:
    """The ``critical.image.docker-manifest-digest`` of a simple-signing payload of cosign's type, else None."""
    try:
        document: Any = json.loads(payload)
        critical = document["critical"]
        if critical.get("type") != COSIGN_SIGNATURE_TYPE:
            return None
        digest = critical["image"]["docker-manifest-digest"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None
    return digest if isinstance(digest, str) else None


# ------------------------------------------------------------------------------------------------------- sign


def simple_signing_payload(ref: Reference, digest: str, annotations: Mapping[str, str] | None = None) -> bytes:
    """The payload cosign signs for ``ref``'s repository at ``digest`` (compact JSON, as cosign marshals it)."""
    document = {
        "critical": {
            "identity": {"docker-reference": ref.name},
            "image": {"docker-manifest-digest": digest},
            "type": COSIGN_SIGNATURE_TYPE,
        },
        "optional": dict(annotations) if annotations else None,
    }
    return json.dumps(document, separators=(",", ":")).encode()


async def sign_artifact(client: RegistryClient, ref: Reference, key: PrivateKey) -> Verified:
    """Sign the manifest ``ref`` pins and store the signature as cosign does (a layer at the ``.sig`` tag).

    Signatures already at the tag are kept (cosign appends too); the same payload signed again is not duplicated.
    """
    subject = ref.digest
    if subject is None:
        raise ConfigError("needs the artifact's manifest digest (resolve the tag first)", where=str(ref))
    payload = simple_signing_payload(ref, subject)
    signature = base64.b64encode(key.key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    tag = Reference(registry=ref.registry, repository=ref.repository, tag=signature_tag(subject), digest=None)
    layers: list[Descriptor] = []
    try:
        existing = await client.fetch_manifest(tag, max_bytes=MAX_SIGNATURE_MANIFEST_BYTES)
        layers = [layer for layer in _signature_layers(existing.manifest) if layer.digest != sha256_digest(payload)]
    except NotFoundError:
        pass
    payload_digest = await client.upload_blob(tag, payload)
    layers.append(
        Descriptor(
            media_type=SIMPLE_SIGNING,
            digest=payload_digest,
            size=len(payload),
            annotations={SIGNATURE_ANNOTATION: signature},
        )
    )
    config = _signature_config(layers)
    config_digest = await client.upload_blob(tag, config)
    manifest = Manifest(
        schema_version=2,
        media_type=mt.OCI_MANIFEST,
        config=Descriptor(media_type=mt.OCI_IMAGE_CONFIG, digest=config_digest, size=len(config)),
        layers=tuple(layers),
    )
    manifest_digest = await client.put_manifest(tag, serialize_manifest(manifest), mt.OCI_MANIFEST)
    return Verified(
        subject=subject,
        signer=f"key {key.public.short_id}",
        key_id=key.public.key_id,
        signature_manifest=manifest_digest,
        payload_digest=payload_digest,
    )


def _signature_config(layers: list[Descriptor]) -> bytes:
    """The image config cosign writes for a signature manifest: its layers as the rootfs."""
    document = {
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"} for _ in layers],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in layers]},
        "config": {},
    }
    return json.dumps(document, separators=(",", ":")).encode()


# ------------------------------------------------------------------------------------------------------- by reference


@dataclass(frozen=True)
class Described:
    """What ``wasmflow inspect`` shows of an artifact's provenance: its manifest annotations and what was found."""

    reference: Reference
    annotations: Mapping[str, str]
    found: Found


async def resolved(client: RegistryClient, ref: Reference) -> Reference:
    """``ref`` pinned to its manifest digest (a tag resolved with one HEAD; a digest kept as given)."""
    if ref.digest is not None:
        return ref
    return ref.with_digest((await client.resolve(ref)).digest)


async def verify_reference(ref: Reference, *, access: Access, keys: tuple[PublicKey, ...]) -> Verified:
    """Resolve ``ref``, find its signatures and verify them with ``keys`` (raises the verdict when none passes)."""
    async with access.client(ref.registry) as client:
        pinned = await resolved(client, ref)
        found = await find_signatures(client, pinned)
    return verify_found(found, keys, reference=str(pinned))


async def sign_reference(ref: Reference, *, access: Access, key: PrivateKey) -> Verified:
    """Resolve ``ref`` and store a signature of its manifest digest with ``key``, as cosign does."""
    async with access.client(ref.registry) as client:
        pinned = await resolved(client, ref)
        return await sign_artifact(client, pinned, key)


async def describe_reference(ref: Reference, *, access: Access) -> Described:
    """The artifact's manifest annotations, signatures (unverified) and referrers, for display."""
    async with access.client(ref.registry) as client:
        pinned = await resolved(client, ref)
        manifest = await client.fetch_manifest(pinned)
        found = await find_signatures(client, pinned)
    return Described(reference=pinned, annotations=dict(manifest.manifest.annotations or {}), found=found)
