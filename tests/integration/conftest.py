"""Fixtures shared by integration tests: our CRDs on the real API server, and a controller running against it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient, ApiextensionsV1Api
from kubernetes.dynamic import DynamicClient
from prometheus_client import CollectorRegistry

from tests.services import KubeEnv
from wasmflow.api.crd import crds
from wasmflow.operator import runner
from wasmflow.operator.config import OperatorConfig


@pytest.fixture(scope="session")
def crds_installed(kube_client: ApiClient) -> None:
    """The generated CRDs, server-side applied and Established."""
    resource = DynamicClient(kube_client).resources.get(
        api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
    )
    for crd in crds().values():
        resource.server_side_apply(body=crd, field_manager="wasmflow-tests", force_conflicts=True)
    api = ApiextensionsV1Api(kube_client)
    for crd in crds().values():
        wait_until(
            lambda name=crd["metadata"]["name"]: any(
                c.type == "Established" and c.status == "True"
                for c in (api.read_custom_resource_definition(name).status.conditions or [])
            ),
            what=f"CRD {crd['metadata']['name']} Established",
        )


def wait_until(check: Callable[[], Any], *, what: str, timeout: float = 60.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def controller_config(tmp_path: Path) -> OperatorConfig:
    """The settings of the test's controller (a module may override this fixture to test other settings)."""
    return OperatorConfig(
        worker_image="registry.test/wasmflow:test", metrics_port=0, cache_dir=tmp_path / "controller-cache"
    )


@pytest.fixture
def controller_metrics() -> CollectorRegistry:
    """The registry the test's controller creates its metrics in (read it with ``get_sample_value``)."""
    return CollectorRegistry()


@pytest.fixture
def controller(
    kube: KubeEnv,
    crds_installed: None,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
    controller_config: OperatorConfig,
    controller_metrics: CollectorRegistry,
) -> Iterator[OperatorConfig]:
    """The real controller (Kopf) in a thread, watching only the test's namespace."""
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    config = controller_config
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(
        target=runner.run,
        args=(config, runner.Scope(clusterwide=False, namespaces=(namespace,))),
        kwargs={
            "stop_flag": stop,
            "ready_flag": ready,
            "liveness_endpoint": None,
            "metrics_registry": controller_metrics,
        },
        daemon=True,
    )
    thread.start()
    assert ready.wait(60), "the controller did not start"
    try:
        yield config
    finally:
        stop.set()
        thread.join(30)
