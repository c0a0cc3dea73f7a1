"""What a worker pod is given: the rendered graph, every module pinned by digest, and where secrets are mounted.

The controller renders it into the Dataflow's ConfigMap (``config.json``); the worker reads nothing else, and never
talks to the Kubernetes API. Secret *values* are never in it, only the paths where Kubernetes mounts them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from wasmflow.api.common import Model
from wasmflow.api.dataflow import DataflowLimits, DataflowSpec, Endpoint, ErrorPolicy
from wasmflow.api.dataflow_graph import GraphPort, SharedStateStore, StateStoreLimits
from wasmflow.api.kinds import Capability, OperatorKind
from wasmflow.api.wasmmodule import DIGEST_PATTERN, Limits

CONFIG_KEY = "config.json"
CONFIG_DIR = "/etc/wasmflow"
SECRETS_DIR = "/var/run/secrets/wasmflow"
CACHE_DIR = "/var/cache/wasmflow"
#: The controller's registry CA (``WASMFLOW_REGISTRY_CA_FILE``), copied into the worker ConfigMap under this key.
REGISTRY_CA_KEY = "registry-ca.crt"
REGISTRY_CA_FILE = f"{CONFIG_DIR}/{REGISTRY_CA_KEY}"


class PinnedModule(Model):
    """A module as the worker must load it: exactly these bytes (``digest``), with these limits and grants."""

    reference: str = ""
    digest: str = Field(pattern=DIGEST_PATTERN)
    insecure: bool = False
    #: A mounted ``.dockerconfigjson`` file with the registry credentials.
    pull_secret_file: str | None = None
    #: A mounted CA bundle that the registry's TLS certificate must chain to (a private CA).
    ca_file: str | None = None
    #: A local file instead of a registry (development and tests; the digest is still verified).
    path: str | None = None
    operator: OperatorKind
    capabilities: list[Capability] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    strict: bool = False


class EndpointFiles(Model):
    """Mounted secret files for one MQTT endpoint."""

    username_file: str | None = None
    password_file: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


class PinnedGraphModule(Model):
    """A module of an AIO graph (``spec.graph``) as the controller resolved its tag: the worker pulls this digest."""

    #: ``<spec.graph.registry>/<repository:tag>``.
    reference: str
    digest: str = Field(pattern=DIGEST_PATTERN)
    insecure: bool = False
    ca_file: str | None = None


class PinnedGraph(Model):
    """What the controller resolved of ``spec.graph``, so that every replica runs the same versions."""

    #: The graph artifact pinned by digest (``registry/repository@sha256:...``); None for an inline definition.
    artifact: str | None = None
    #: The CA bundle for the artifact's registry.
    ca_file: str | None = None
    #: Every module the definition names, by its reference in the definition (``repository:tag``).
    modules: dict[str, PinnedGraphModule] = Field(default_factory=dict)


class WorkerConfig(Model):
    """The whole input of a worker."""

    namespace: str
    dataflow: str
    spec: DataflowSpec
    modules: dict[str, PinnedModule]
    #: Set when ``spec.graph`` is: its artifact and modules pinned by digest.
    graph: PinnedGraph | None = None
    endpoint_files: dict[str, EndpointFiles] = Field(default_factory=dict)
    http_port: int = Field(default=8080, ge=1, le=65535)
    cache_dir: str = CACHE_DIR


# -- running an AIO graph definition on a worker (replaced by the one worker config soon) -------------------------


class AioModule(Model):
    """One module reference of the graph, pinned: exactly these bytes run (``digest``), from a registry or a file."""

    reference: str = ""
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    insecure: bool = False
    pull_secret_file: str | None = None
    #: A CA bundle that the registry's TLS certificate must chain to (a private CA).
    ca_file: str | None = None
    #: A local file instead of a registry (development and tests; the digest is still verified).
    path: str | None = None
    limits: Limits = Field(default_factory=Limits)


class AioWorkerConfig(Model):
    """What a worker is given to run an AIO graph definition: the definition, its modules pinned by their
    ``repository:tag`` reference, and the endpoints its sources and sinks are bound to."""

    kind: Literal["aio-graph"] = "aio-graph"
    namespace: str
    dataflow: str
    definition: str
    """The graph definition, as AIO's YAML."""
    endpoints: dict[str, Endpoint]
    modules: dict[str, AioModule]
    sources: dict[str, GraphPort]
    sinks: dict[str, GraphPort]
    parameters: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Per operation: values for the parameters its moduleConfiguration declares (overriding their defaults)."""
    event_time: bool = False
    """Stamp items by their source time (the ``timestamp-ms`` user property) instead of their arrival: replays give
    the same windows. Off, the worker's clock enters the HLC as AIO's ingestion does."""
    state_store: SharedStateStore | None = None
    """Where the graph's state store lives when replicas share it; in process when unset."""
    state_limits: StateStoreLimits | None = None
    """Bounds of the state store (keys, key and value size, total bytes); the defaults when unset."""
    limits: DataflowLimits = Field(default_factory=DataflowLimits)
    """The Dataflow's ``spec.limits``: the largest message the sources accept."""
    error_policy: ErrorPolicy | None = None
    """The Dataflow's ``spec.errorPolicy``: an item an operation fails on is dropped or dead-lettered."""
    endpoint_files: dict[str, EndpointFiles] = Field(default_factory=dict)
    http_port: int = Field(default=8080, ge=1, le=65535)
    cache_dir: str = CACHE_DIR
