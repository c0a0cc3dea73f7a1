"""OCI image manifests and descriptors: parsed from registry bytes, and built for push.

Parsing refuses what we do not pull by name (an index, a schema 1 manifest, something that is not JSON) with an
UnsupportedArtifactError; fields we do not use are ignored, so newer manifests still parse.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from wasmflow.oci import mediatypes as mt
from wasmflow.oci.errors import UnsupportedArtifactError
from wasmflow.oci.reference import parse_digest

__all__ = ["Descriptor", "Manifest", "parse_manifest", "serialize_manifest"]


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, frozen=True, extra="ignore"
    )


class Descriptor(_Model):
    """A content descriptor: what a manifest says about one blob."""

    media_type: str = Field(min_length=1)
    digest: str
    size: int = Field(ge=0)
    annotations: dict[str, str] | None = None
    artifact_type: str | None = None
    data: str | None = None
    """Embedded base64 content (oras writes it for the empty config)."""

    @property
    def title(self) -> str | None:
        return (self.annotations or {}).get("org.opencontainers.image.title")


class Manifest(_Model):
    """An OCI image manifest (also the Docker schema 2 manifest, which has the same shape)."""

    schema_version: int = 2
    media_type: str | None = None
    artifact_type: str | None = None
    config: Descriptor
    layers: tuple[Descriptor, ...] = ()
    annotations: dict[str, str] | None = None

    @property
    def kind_of_artifact(self) -> str:
        """The artifact type as OCI 1.1 defines it: ``artifactType``, else the config's media type."""
        return self.artifact_type or self.config.media_type


def parse_manifest(raw: bytes, content_type: str | None = None, *, reference: str | None = None) -> Manifest:
    """Parse registry bytes into a Manifest; an index, schema 1 or garbage is an UnsupportedArtifactError."""
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnsupportedArtifactError(
            f"the manifest is not JSON ({exc.__class__.__name__} at byte {getattr(exc, 'pos', 0)})",
            reference=reference,
            found="non-JSON manifest",
        ) from exc
    if not isinstance(document, dict):
        raise UnsupportedArtifactError(
            "the manifest is not a JSON object", reference=reference, found=type(document).__name__
        )
    media_type = document.get("mediaType") or _base_type(content_type)
    if media_type in mt.INDEXES or "manifests" in document:
        platforms = _platforms(document)
        raise UnsupportedArtifactError(
            f"this is an image index ({media_type or 'manifests list'}{platforms}), not a single artifact: "
            "reference one manifest of it by digest",
            reference=reference,
            found=media_type or mt.OCI_INDEX,
        )
    if document.get("schemaVersion") == 1 or media_type in (mt.DOCKER_SCHEMA1, mt.DOCKER_SCHEMA1_SIGNED):
        raise UnsupportedArtifactError(
            "this is a Docker schema 1 manifest (a legacy container image), not a Wasm artifact",
            reference=reference,
            found=mt.DOCKER_SCHEMA1,
        )
    if media_type and media_type not in mt.MANIFESTS:
        raise UnsupportedArtifactError(
            f"manifest media type {media_type!r} is not an image manifest ({' or '.join(mt.MANIFESTS)})",
            reference=reference,
            found=media_type,
        )
    try:
        manifest = Manifest.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UnsupportedArtifactError(
            f"the manifest is malformed at {where}: {first['msg']}", reference=reference, found="malformed manifest"
        ) from exc
    for descriptor in (manifest.config, *manifest.layers):
        parse_digest(descriptor.digest, reference=reference)
    return manifest


def serialize_manifest(manifest: Manifest) -> bytes:
    """Canonical-enough bytes for push: compact JSON, no null fields, keys in declaration order."""
    return json.dumps(manifest.model_dump(by_alias=True, exclude_none=True), separators=(",", ":")).encode()


def _base_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    base = content_type.split(";", 1)[0].strip()
    return base if base not in ("application/json", "application/octet-stream", "text/plain") else None


def _platforms(document: Mapping[str, Any]) -> str:
    entries = document.get("manifests")
    if not isinstance(entries, list):
        return ""
    found = sorted(
        {
            f"{p.get('os')}/{p.get('architecture')}"
            for e in entries
            if isinstance(e, dict) and isinstance(p := e.get("platform"), dict)
        }
    )
    return f" for {', '.join(found)}" if found else ""
