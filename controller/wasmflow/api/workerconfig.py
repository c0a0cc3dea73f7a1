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


class PinnedModule(Model):
    """A module as the worker must load it: exactly these bytes (``digest``), with these limits and grants."""

    reference: str = ""
    digest: str = Field(pattern=DIGEST_PATTERN)
    insecure: bool = False
    #: A mounted ``.dockerconfigjson`` file with the registry credentials.
    pull_secret_file: str | None = None
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


class WorkerConfig(Model):
    """The whole input of a worker."""

    namespace: str
    dataflow: str
    spec: DataflowSpec
    modules: dict[str, PinnedModule]
    endpoint_files: dict[str, EndpointFiles] = Field(default_factory=dict)
    http_port: int = Field(default=8080, ge=1, le=65535)
    cache_dir: str = CACHE_DIR
