"""The operator's own settings, read once from the environment at start-up.

The Helm chart sets these variables (every image is a chart value, so Arc/Marketplace can retag it); the CLI flags of
``wasmflow operator`` override the scope-related ones. Invalid values stop the start with a ConfigError naming the
variable, never a half-configured controller.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from wasmflow.errors import ConfigError

ENV_PREFIX = "WASMFLOW_"
PULL_POLICIES = ("Always", "IfNotPresent", "Never")


@dataclass(frozen=True)
class OperatorConfig:
    """Everything the controller needs besides the cluster connection."""

    #: Image of the worker pods (one image runs both ``wasmflow operator`` and ``wasmflow worker``).
    worker_image: str = "ghcr.io/wasmflow/wasmflow:0.1.0"
    #: imagePullPolicy of the worker containers.
    worker_image_pull_policy: str = "IfNotPresent"
    #: Image pull secrets given to worker pods (names of Secrets in the Dataflow's namespace).
    worker_image_pull_secrets: tuple[str, ...] = ()
    #: Where pulled and verified module blobs are cached (content-addressed).
    cache_dir: Path = field(default_factory=lambda: Path("/tmp/wasmflow-cache"))  # noqa: S108 - emptyDir in the pod
    #: Size budget of that cache, in bytes: after a pull, the least recently used entries are deleted until the
    #: cache fits (keep it under the cache volume's size, with room for one pull in progress).
    cache_max_bytes: int = 512 * 2**20
    #: Port of the controller's Prometheus endpoint (0 disables it).
    metrics_port: int = 8081
    #: Largest module the controller accepts, in bytes.
    max_module_bytes: int = 64 * 2**20
    #: Contract checks compiling at once. A compile of an 18 MB componentize-py component peaks at ~400 MiB, so
    #: each slot needs that much room under the controller's memory limit; each component is compiled only once.
    max_concurrent_checks: int = 1
    #: How many objects Kopf reconciles at once (STYLE.md 1.5: unbounded by default, which swamps the API server).
    worker_limit: int = 8
    #: Timeout of one API request, in seconds.
    request_timeout: float = 30.0
    #: Kubernetes Event level: records at or above it become Events.
    events_level: str = "INFO"
    #: A PEM bundle of CAs trusted for registries served over TLS, in addition to the system's (a private
    #: registry's CA, mounted from a Secret or ConfigMap); None: the system's only.
    registry_ca_file: Path | None = None
    #: Registry hosts (``host`` or ``host:port``) to which a module's credentials may go over plain HTTP
    #: (``insecure: true``), besides loopback ones; to any other they are refused and the module is Stalled.
    registry_plain_http_credential_hosts: tuple[str, ...] = ()
    #: Controller-wide signature policy (chart ``verify.required``): every OCI module must carry a cosign signature
    #: by a trusted key (its ``spec.verify`` keys, else ``verify_keys_file``); unsigned ones are Stalled.
    verify_required: bool = False
    #: A PEM bundle of public keys trusted for modules without ``spec.verify`` (chart ``verify.publicKeys``).
    verify_keys_file: Path | None = None


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(ENV_PREFIX + name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"must be an integer, got {raw!r}", where=ENV_PREFIX + name) from None
    if value < minimum:
        raise ConfigError(f"must be at least {minimum}, got {value}", where=ENV_PREFIX + name)
    return value


def _existing_file(env: Mapping[str, str], name: str) -> Path | None:
    """A path that must name a readable file now: a missing mount stops the start instead of every pull."""
    raw = env.get(ENV_PREFIX + name)
    if raw is None or raw == "":
        return None
    path = Path(raw)
    if not path.is_file() or not os.access(path, os.R_OK):
        raise ConfigError(f"must name a readable file, got {raw!r}", where=ENV_PREFIX + name)
    return path


def load_config(env: Mapping[str, str] | None = None) -> OperatorConfig:
    """Build the configuration from ``WASMFLOW_*`` variables, with defaults for the rest."""
    env = os.environ if env is None else env
    defaults = OperatorConfig()
    pull_policy = env.get(ENV_PREFIX + "WORKER_IMAGE_PULL_POLICY") or defaults.worker_image_pull_policy
    if pull_policy not in PULL_POLICIES:
        raise ConfigError(
            f"must be one of {', '.join(PULL_POLICIES)}, got {pull_policy!r}",
            where=ENV_PREFIX + "WORKER_IMAGE_PULL_POLICY",
        )
    timeout_raw = env.get(ENV_PREFIX + "REQUEST_TIMEOUT") or str(defaults.request_timeout)
    try:
        timeout = float(timeout_raw)
    except ValueError:
        raise ConfigError(
            f"must be a number of seconds, got {timeout_raw!r}", where="WASMFLOW_REQUEST_TIMEOUT"
        ) from None
    registry_ca_file = _existing_file(env, "REGISTRY_CA_FILE")
    secrets = tuple(s.strip() for s in env.get(ENV_PREFIX + "WORKER_IMAGE_PULL_SECRETS", "").split(",") if s.strip())
    plain_http_hosts = tuple(
        h.strip() for h in env.get(ENV_PREFIX + "REGISTRY_PLAIN_HTTP_CREDENTIAL_HOSTS", "").split(",") if h.strip()
    )
    return OperatorConfig(
        worker_image=env.get(ENV_PREFIX + "WORKER_IMAGE") or defaults.worker_image,
        worker_image_pull_policy=pull_policy,
        worker_image_pull_secrets=secrets,
        cache_dir=Path(env.get(ENV_PREFIX + "CACHE_DIR") or defaults.cache_dir),
        cache_max_bytes=_int(env, "CACHE_MAX_BYTES", defaults.cache_max_bytes, minimum=1),
        metrics_port=_int(env, "METRICS_PORT", defaults.metrics_port),
        max_module_bytes=_int(env, "MAX_MODULE_BYTES", defaults.max_module_bytes, minimum=1),
        max_concurrent_checks=_int(env, "MAX_CONCURRENT_CHECKS", defaults.max_concurrent_checks, minimum=1),
        worker_limit=_int(env, "WORKER_LIMIT", defaults.worker_limit, minimum=1),
        request_timeout=timeout,
        events_level=env.get(ENV_PREFIX + "EVENTS_LEVEL") or defaults.events_level,
        registry_ca_file=registry_ca_file,
        registry_plain_http_credential_hosts=plain_http_hosts,
        verify_required=_bool(env, "VERIFY_REQUIRED"),
        verify_keys_file=_existing_file(env, "VERIFY_KEYS_FILE"),
    )


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(ENV_PREFIX + name) or "false").strip().lower()
    if raw not in ("true", "false"):
        raise ConfigError(f"must be true or false, got {raw!r}", where=ENV_PREFIX + name)
    return raw == "true"
