"""OCI distribution client: resolve, pull, verify digest, cache, push.

The controller and the worker call (all async; ``pull_component_sync`` for the command line):

* ``pull_artifact(reference, access=, kind=, expected_digest=, cache_dir=, max_bytes=) -> PulledArtifact``
* ``pull_component(reference, insecure=, docker_config=, cache_dir=, ...) -> bytes``
* ``pull_graph(reference, ...) -> PulledArtifact`` (an AIO graph definition, YAML)
* ``resolve_digest(reference, access=) -> str`` (a tag's manifest digest, one HEAD)
* ``push_component(reference, data, access=, component=, annotations=, ...) -> PushResult`` (CNCF layout)

Failures are ``OciError`` subclasses (``wasmflow.errors.RegistryError``) with a ``reason`` for status conditions.
``wasmflow.oci.client.RegistryClient`` is the lower level (one registry, manifests and blobs). It is not imported
here: a pull answered from the cache must not pay for importing the HTTP stack (``oci/transfer.py``).
"""

from wasmflow.oci.auth import Credentials, credentials_from_docker_config, load_docker_config
from wasmflow.oci.cache import BlobCache, default_cache_dir
from wasmflow.oci.errors import (
    CorruptContentError,
    DigestMismatchError,
    InsecureCredentialsError,
    InvalidReferenceError,
    NotFoundError,
    OciError,
    PinMismatchError,
    ServerError,
    TooLargeError,
    UnauthorizedError,
    UnreachableError,
    UnsafeRedirectError,
    UnsupportedArtifactError,
)
from wasmflow.oci.layouts import ArtifactKind, Layout
from wasmflow.oci.pull import (
    Access,
    PulledArtifact,
    pull_artifact,
    pull_component,
    pull_component_sync,
    pull_graph,
    resolve_digest,
)
from wasmflow.oci.push import ComponentInfo, PushResult, push_component
from wasmflow.oci.reference import Reference, parse_reference
from wasmflow.oci.transfer import RetryPolicy

__all__ = [
    "Access",
    "ArtifactKind",
    "BlobCache",
    "ComponentInfo",
    "CorruptContentError",
    "Credentials",
    "DigestMismatchError",
    "InsecureCredentialsError",
    "InvalidReferenceError",
    "Layout",
    "NotFoundError",
    "OciError",
    "PinMismatchError",
    "PulledArtifact",
    "PushResult",
    "Reference",
    "RetryPolicy",
    "ServerError",
    "TooLargeError",
    "UnauthorizedError",
    "UnreachableError",
    "UnsafeRedirectError",
    "UnsupportedArtifactError",
    "credentials_from_docker_config",
    "default_cache_dir",
    "load_docker_config",
    "parse_reference",
    "pull_artifact",
    "pull_component",
    "pull_component_sync",
    "pull_graph",
    "push_component",
    "resolve_digest",
]
