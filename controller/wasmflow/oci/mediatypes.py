"""The media types wasmflow reads and writes, and which tool produces which (DESIGN.md section 5)."""

from __future__ import annotations

__all__ = [
    "ACCEPT_MANIFESTS",
    "AIO_GRAPH",
    "AIO_MODULE_ARTIFACT",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "DOCKER_SCHEMA1",
    "DOCKER_SCHEMA1_SIGNED",
    "GRAPH_LAYERS",
    "IMAGE_LAYERS",
    "INDEXES",
    "MANIFESTS",
    "OCI_EMPTY",
    "OCI_IMAGE_CONFIG",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "ORAS_UNKNOWN_CONFIG",
    "WASM_CONFIG_V0",
    "WASM_CONFIG_V1",
    "WASM_LAYER",
    "WASM_LAYERS",
    "WASM_LAYER_BYTECODEALLIANCE",
    "WASM_LAYER_CONTENT",
]

# Manifests.
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEXES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
#: Sent as Accept: the ones we read first, the indexes so the registry answers with what it has (and we can name it).
ACCEPT_MANIFESTS = ", ".join((*MANIFESTS, *INDEXES))

# Configs / artifact types.
#: CNCF TAG Runtime Wasm OCI artifact layout (wkg, oci-wasm, wasmflow push).
WASM_CONFIG_V0 = "application/vnd.wasm.config.v0+json"
#: wasm-to-oci (engineerd) and early Krustlet tooling.
WASM_CONFIG_V1 = "application/vnd.wasm.config.v1+json"
#: Azure IoT Operations modules, as ``oras push --artifact-type`` (or the config media type with older oras).
AIO_MODULE_ARTIFACT = "application/vnd.module.wasm.content.layer.v1+wasm"
#: Azure IoT Operations graph definitions.
AIO_GRAPH = "application/vnd.microsoft.aio.graph.v1+yaml"
#: oras 1.x with --artifact-type: an empty config, the type in ``artifactType``.
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
#: oras 0.x without a config.
ORAS_UNKNOWN_CONFIG = "application/vnd.unknown.config.v1+json"
OCI_IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"

# Layers.
#: CNCF layout, and what ``oras push module.wasm:application/wasm`` writes.
WASM_LAYER = "application/wasm"
#: wasm-to-oci, Azure IoT Operations modules.
WASM_LAYER_CONTENT = "application/vnd.wasm.content.layer.v1+wasm"
#: containerd runwasi's OCI tar builder.
WASM_LAYER_BYTECODEALLIANCE = "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm"
WASM_LAYERS = (WASM_LAYER, WASM_LAYER_CONTENT, AIO_MODULE_ARTIFACT, WASM_LAYER_BYTECODEALLIANCE)
GRAPH_LAYERS = ("application/yaml", "application/x-yaml", "text/yaml")
#: Container filesystem layers: a container image (perhaps with a .wasm inside), not a component artifact.
IMAGE_LAYERS = (
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
)
