"""``wasmflow sign REF --key KEY`` and ``wasmflow verify REF --key PUB``: cosign's key-based signatures.

``sign`` stores a signature of REF's manifest digest where cosign stores its own (the ``sha256-<hex>.sig`` tag), so
``cosign verify --key cosign.pub`` accepts it; ``verify`` accepts cosign's. The key is cosign's encrypted
``cosign.key`` (password from ``COSIGN_PASSWORD``, as cosign reads it) or a PEM ECDSA P-256 private key.

On success ``sign`` and ``verify`` print the signed manifest digest on stdout and who signed on stderr. Exit 1 when
a verification fails (missing or invalid signature: the reason on stderr) or the registry refuses; 2 on usage errors.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import click

from wasmflow.cli.sources import read_file
from wasmflow.errors import ConfigError, RegistryError
from wasmflow.oci import Access, Reference, parse_reference
from wasmflow.oci.signatures import (
    PrivateKey,
    PublicKey,
    SignatureError,
    describe_reference,
    load_private_key,
    load_public_key,
    sign_reference,
    signed_digest,
    verify_reference,
)

__all__ = ["provenance", "read_signing_key", "render_provenance", "sign_command", "sign_pushed", "verify_command"]

PASSWORD_ENV = "COSIGN_PASSWORD"  # noqa: S105 - the name of the variable, not a password


def read_signing_key(path: Path) -> PrivateKey:
    """The private key at ``path``, opened with COSIGN_PASSWORD when it is encrypted (a usage error otherwise)."""
    password = os.environ.get(PASSWORD_ENV)
    try:
        return load_private_key(read_file(path), password.encode() if password is not None else None, where=str(path))
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--key") from exc


def _public_keys(paths: tuple[Path, ...]) -> tuple[PublicKey, ...]:
    try:
        return tuple(load_public_key(read_file(p), where=str(p)) for p in paths)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--key") from exc


def _reference(ref: str) -> Reference:
    try:
        return parse_reference(ref)
    except RegistryError as exc:
        raise click.BadParameter(str(exc), param_hint="REF") from exc


def sign_pushed(reference: Reference, key: PrivateKey, access: Access) -> None:
    """Sign what was just pushed (``wasmflow push --sign``); says who signed on stderr."""
    try:
        signed = asyncio.run(sign_reference(reference, access=access, key=key))
    except RegistryError as exc:
        raise click.ClickException(f"signing failed: {exc}") from exc
    click.echo(f"signed {signed.subject} with {signed.signer} (signature {signed.signature_manifest})", err=True)


_insecure = click.option("--insecure", is_flag=True, help="Plain HTTP to the registry (a local or test registry).")
_ca_file = click.option(
    "--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Trust this CA bundle."
)


@click.command("sign")
@click.argument("ref")
@click.option(
    "--key",
    "key_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=f"cosign.key (password from ${PASSWORD_ENV}) or a PEM ECDSA P-256 private key.",
)
@_insecure
@_ca_file
def sign_command(ref: str, key_path: Path, insecure: bool, ca_file: Path | None) -> None:
    """Sign the artifact REF (its manifest digest) and store the signature as cosign does."""
    reference = _reference(ref)
    key = read_signing_key(key_path)
    access = Access(insecure=insecure, ca_file=ca_file)
    try:
        signed = asyncio.run(sign_reference(reference, access=access, key=key))
    except RegistryError as exc:
        raise click.ClickException(f"signing failed: {exc}") from exc
    click.echo(f"signed {reference} with {signed.signer} (signature {signed.signature_manifest})", err=True)
    click.echo(signed.subject)


@click.command("verify")
@click.argument("ref")
@click.option(
    "--key",
    "key_paths",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A trusted public key, PEM (cosign.pub); repeatable: any one of them will do.",
)
@_insecure
@_ca_file
def verify_command(ref: str, key_paths: tuple[Path, ...], insecure: bool, ca_file: Path | None) -> None:
    """Verify that REF carries a cosign signature made by a trusted key for its very digest."""
    reference = _reference(ref)
    keys = _public_keys(key_paths)
    access = Access(insecure=insecure, ca_file=ca_file)
    try:
        verified = asyncio.run(verify_reference(reference, access=access, keys=keys))
    except SignatureError as exc:
        click.echo(f"error: {exc.reason}: {exc}", err=True)
        raise SystemExit(1) from exc
    except RegistryError as exc:
        raise click.ClickException(f"verification failed: {exc}") from exc
    click.echo(
        f"verified {reference}: signed by {verified.signer} ({verified.key_id}), "
        f"signature {verified.signature_manifest}",
        err=True,
    )
    click.echo(verified.subject)


def provenance(source: str, *, insecure: bool) -> dict[str, object]:
    """What ``wasmflow inspect`` adds for an OCI reference: the manifest digest and annotations (an SBOM's among
    them), the signatures found (not verified: ``wasmflow verify`` does that) and the referrers."""
    try:
        described = asyncio.run(describe_reference(_reference(source), access=Access(insecure=insecure)))
    except RegistryError as exc:
        raise click.ClickException(f"cannot read the signatures of {source}: {exc}") from exc
    found = described.found
    return {
        "digest": found.subject,
        "annotations": dict(described.annotations),
        "signatures": [
            {
                "payloadDigest": s.payload_digest,
                "signedDigest": signed_digest(s.payload),
                "in": s.manifest_digest,
                "source": s.source,
                "keyless": s.certificate is not None,
            }
            for s in found.signatures
        ],
        "referrers": None
        if found.referrers is None
        else [
            {"digest": d.digest, "artifactType": d.artifact_type, "annotations": d.annotations} for d in found.referrers
        ],
    }


def render_provenance(described: dict[str, object]) -> str:
    """``inspect``'s provenance lines, after the contract table."""
    lines = [f"digest     {described['digest']}"]
    annotations = described["annotations"]
    assert isinstance(annotations, dict)
    lines += [f"annotation {key}={value}" for key, value in sorted(annotations.items())]
    signatures = described["signatures"]
    assert isinstance(signatures, list)
    if not signatures:
        lines.append("signatures none")
    for entry in signatures:
        lines.append(
            f"signature  {entry['payloadDigest']} in {entry['in']} ({entry['source']}), signs {entry['signedDigest']}"
            + (" (keyless certificate)" if entry["keyless"] else "")
        )
    referrers = described["referrers"]
    if referrers is None:
        lines.append("referrers  the registry does not answer the OCI 1.1 referrers API")
    else:
        assert isinstance(referrers, list)
        lines += [f"referrer   {r['digest']} {r['artifactType'] or '-'}" for r in referrers] or ["referrers  none"]
    return "\n".join(lines)
