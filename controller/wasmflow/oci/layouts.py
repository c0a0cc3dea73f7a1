"""Which layout an artifact uses, and which of its blobs holds the component (or the graph definition).

The artifact type (``artifactType``, else the config media type, as OCI 1.1 says) and the single layer's media
type decide. Accepted:

    layout        artifact type / config                               layer
    cncf-wasm     application/vnd.wasm.config.v0+json                  application/wasm
    aio-module    application/vnd.module.wasm.content.layer.v1+wasm    any wasm layer type
    wasm-to-oci   application/vnd.wasm.config.v1+json                  any wasm layer type
    oras          anything else (empty config, unknown config...)      any wasm layer type
    aio-graph     application/vnd.microsoft.aio.graph.v1+yaml          application/yaml

where the wasm layer types are ``application/wasm``, ``application/vnd.wasm.content.layer.v1+wasm``,
``application/vnd.module.wasm.content.layer.v1+wasm`` and runwasi's
``application/vnd.bytecodealliance.wasm.component.layer.v0+wasm``. Everything else (container images, Helm charts,
several layers, unknown layer types) is refused with the media types found, so the user sees what they pushed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from wasmflow.oci import mediatypes as mt
from wasmflow.oci.errors import UnsupportedArtifactError
from wasmflow.oci.manifest import Descriptor, Manifest

__all__ = ["ArtifactKind", "Classified", "Layout", "classify", "require_kind"]


class ArtifactKind(enum.StrEnum):
    COMPONENT = "component"
    GRAPH = "graph"


class Layout(enum.StrEnum):
    CNCF_WASM = "cncf-wasm"
    AIO_MODULE = "aio-module"
    WASM_TO_OCI = "wasm-to-oci"
    ORAS = "oras"
    AIO_GRAPH = "aio-graph"
    #: Fetched as a bare blob by its own digest (a pin to the component's content); no manifest was read.
    BLOB = "blob"


@dataclass(frozen=True)
class Classified:
    """What an artifact is: its kind, its layout, and the layer that holds the payload."""

    kind: ArtifactKind
    layout: Layout
    layer: Descriptor
    artifact_type: str


_KNOWN_OTHERS = {
    mt.OCI_IMAGE_CONFIG: "a container image",
    "application/vnd.docker.container.image.v1+json": "a container image",
    "application/vnd.cncf.helm.config.v1+json": "a Helm chart",
    "application/vnd.cncf.flux.config.v1+json": "a Flux artifact",
}


def classify(manifest: Manifest, *, reference: str | None = None) -> Classified:
    """Classify a manifest, or raise UnsupportedArtifactError naming what was found."""
    artifact_type = manifest.kind_of_artifact
    layers = manifest.layers
    layer_types = ", ".join(layer.media_type for layer in layers) or "no layers"
    if mt.AIO_GRAPH in (artifact_type, manifest.config.media_type):
        if len(layers) == 1 and layers[0].media_type in mt.GRAPH_LAYERS:
            return Classified(ArtifactKind.GRAPH, Layout.AIO_GRAPH, layers[0], artifact_type)
        raise UnsupportedArtifactError(
            f"an AIO graph definition must have one application/yaml layer, found: {layer_types}",
            reference=reference,
            found=layer_types,
        )
    wasm = [layer for layer in layers if layer.media_type in mt.WASM_LAYERS]
    if len(layers) == 1 and len(wasm) == 1:
        return Classified(ArtifactKind.COMPONENT, _component_layout(manifest), wasm[0], artifact_type)
    what = _KNOWN_OTHERS.get(artifact_type) or _KNOWN_OTHERS.get(manifest.config.media_type)
    if what is None and any(layer.media_type in mt.IMAGE_LAYERS for layer in layers):
        what = "a container image"
    if what is not None:
        raise UnsupportedArtifactError(
            f"this is {what} (artifact type {artifact_type}, layers: {layer_types}), not a Wasm component artifact",
            reference=reference,
            found=f"{artifact_type} with {layer_types}",
        )
    if not layers:
        raise UnsupportedArtifactError(
            f"the artifact (type {artifact_type}) has no layers", reference=reference, found=artifact_type
        )
    if len(layers) > 1:
        raise UnsupportedArtifactError(
            f"a Wasm component artifact has exactly one layer, found {len(layers)}: {layer_types}",
            reference=reference,
            found=layer_types,
        )
    raise UnsupportedArtifactError(
        f"layer media type {layers[0].media_type!r} is not a Wasm component layer (artifact type {artifact_type}); "
        f"expected one of: {', '.join(mt.WASM_LAYERS)}",
        reference=reference,
        found=layers[0].media_type,
    )


def require_kind(classified: Classified, kind: ArtifactKind, *, reference: str | None = None) -> Classified:
    """Refuse a graph where a component is wanted, and the other way round."""
    if classified.kind is not kind:
        names = {ArtifactKind.COMPONENT: "a Wasm component", ArtifactKind.GRAPH: "an AIO graph definition"}
        raise UnsupportedArtifactError(
            f"expected {names[kind]}, this is {names[classified.kind]} ({classified.layout.value}, "
            f"layer {classified.layer.media_type})",
            reference=reference,
            found=classified.artifact_type,
        )
    return classified


def _component_layout(manifest: Manifest) -> Layout:
    types = {manifest.kind_of_artifact, manifest.config.media_type}
    if mt.AIO_MODULE_ARTIFACT in types or manifest.layers[0].media_type == mt.AIO_MODULE_ARTIFACT:
        return Layout.AIO_MODULE
    if mt.WASM_CONFIG_V0 in types:
        return Layout.CNCF_WASM
    if mt.WASM_CONFIG_V1 in types:
        return Layout.WASM_TO_OCI
    return Layout.ORAS
