"""What a worker pod is given: the rendered graph, every module pinned by digest, and where secrets are mounted.

The controller renders it into the Dataflow's ConfigMap (``config.json``); the worker reads nothing else, and never
talks to the Kubernetes API. Secret *values* are never in it, only the paths where Kubernetes mounts them.
"""

from __future__ import annotations

from pydantic import Field

from wasmflow.api.common import Model
from wasmflow.api.dataflow import DataflowSpec
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
