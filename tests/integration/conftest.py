"""Fixtures shared by integration tests: our CRDs on the real API server, and a controller running against it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes.client import ApiClient, ApiextensionsV1Api
from kubernetes.dynamic import DynamicClient

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
def controller(
    kube: KubeEnv, crds_installed: None, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[OperatorConfig]:
    """The real controller (Kopf) in a thread, watching only the test's namespace."""
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    config = OperatorConfig(worker_image="registry.test/wasmflow:test", metrics_port=0)
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(
        target=runner.run,
        args=(config, runner.Scope(clusterwide=False, namespaces=(namespace,))),
        kwargs={"stop_flag": stop, "ready_flag": ready, "liveness_endpoint": None},
        daemon=True,
    )
    thread.start()
    assert ready.wait(60), "the controller did not start"
    try:
        yield config
    finally:
        stop.set()
        thread.join(30)
