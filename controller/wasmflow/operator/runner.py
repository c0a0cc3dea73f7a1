"""Start the controller: Kopf settings chosen once (STYLE.md 1.5), shared state in the memo, metrics server.

Kopf's own bookkeeping lives in annotations under our prefix, the finalizer is ours, and handlers return None, so
``status`` holds only schema-declared fields (STYLE.md 1.8, 2.7).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path

import kopf
from prometheus_client import CollectorRegistry, start_http_server

from wasmflow.operator import handlers
from wasmflow.operator.config import OperatorConfig
from wasmflow.operator.metrics import ControllerMetrics

GROUP = "wasmflow.io"
FINALIZER = f"{GROUP}/finalizer"
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105 - a path


@dataclass(frozen=True)
class Scope:
    """Which namespaces the controller watches: all of them, or the listed ones."""

    clusterwide: bool
    namespaces: tuple[str, ...] = ()


def configure(settings: kopf.OperatorSettings, config: OperatorConfig) -> None:
    """Apply our choices to Kopf's settings (chosen before the first release: changing storage later re-handles all)."""
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP, v1=False)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration", v1=False
    )
    settings.posting.level = logging.getLevelName(config.events_level)
    settings.queueing.worker_limit = config.worker_limit
    settings.networking.request_timeout = config.request_timeout
    settings.execution.max_workers = 4
    # Our CRDs are installed with the chart: no need to discover them (or namespaces) at run time, so the RBAC
    # needs no cluster-wide list/watch on CRDs and namespaces (STYLE.md 3.4).
    settings.scanning.disabled = True


def build_registry(config: OperatorConfig, metrics: ControllerMetrics | None = None) -> kopf.OperatorRegistry:
    """A registry with a login handler (kubeconfig, or the in-cluster service account) and our handlers."""
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(_login)
    handlers.register(registry, config, metrics)
    return registry


def _login(*, logger: kopf.Logger, settings: kopf.OperatorSettings, **_: object) -> kopf.ConnectionInfo | None:
    """The pod's service account in a cluster; otherwise $KUBECONFIG or ~/.kube/config (read at login time).

    In a pod, the API server is where KUBERNETES_SERVICE_HOST/PORT say (as for our own client, ``kube.api_client``):
    Kopf's helper assumes https://kubernetes.default.svc, which needs cluster DNS (not there with hostNetwork pods).
    """
    if Path(SERVICE_ACCOUNT_TOKEN).exists():
        info = kopf.login_with_service_account(logger=logger, settings=settings)
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
        if info is None or not host or not port:
            return info
        return replace(info, server=f"https://{f'[{host}]' if ':' in host else host}:{port}")
    return kopf.login_with_kubeconfig(logger=logger, settings=settings)


def run(
    config: OperatorConfig,
    scope: Scope,
    *,
    liveness_endpoint: str | None = None,
    metrics_registry: CollectorRegistry | None = None,
    stop_flag: threading.Event | asyncio.Event | None = None,
    ready_flag: threading.Event | asyncio.Event | None = None,
) -> None:
    """Run the controller until stopped (SIGTERM/SIGINT, or ``stop_flag``)."""
    registry = metrics_registry or CollectorRegistry()
    metrics = ControllerMetrics.create(registry)
    if config.metrics_port:
        start_http_server(config.metrics_port, registry=registry)
    settings = kopf.OperatorSettings()
    configure(settings, config)
    namespaces: Collection[str] = () if scope.clusterwide else scope.namespaces
    kopf.run(
        registry=build_registry(config, metrics),
        settings=settings,
        clusterwide=scope.clusterwide,
        namespaces=namespaces,
        standalone=True,
        liveness_endpoint=liveness_endpoint,
        memo=kopf.Memo(config=config, metrics=metrics),
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )
