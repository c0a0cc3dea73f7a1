"""Control-plane faults injected for real: the API server restarted under a running controller, and the controller
process SIGKILLed in the middle of its reconciles and started again.

Children have fixed names and are server-side applied, so "no duplicates" is checked the way a user would notice
them: by label, every Dataflow has exactly one ConfigMap, Service and Deployment, owned by it and carrying the
config hash its status reports. Idempotency is checked by resourceVersion: a controller started on a converged
namespace re-reconciles everything (Kopf's resume) and changes nothing.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api, CustomObjectsApi

from tests.components.engine import wat
from tests.fault_report import Report
from tests.integration.conftest import wait_until
from tests.kube_env import restart_apiserver
from tests.services import KubeEnv, Registry
from wasmflow.oci import Access, push_component
from wasmflow.oci.digests import sha256_digest
from wasmflow.operator.config import OperatorConfig
from wasmflow.operator.render import CONFIG_HASH

WASMFLOW = str(Path(sys.executable).parent / "wasmflow")
GROUP, VERSION = "wasmflow.io", "v1alpha1"
ECHO = wat.operator("map", "(nop)")
KINDS = ("ConfigMap", "Service", "Deployment")


def ready_module(kube_client: ApiClient, namespace: str, registry: Registry, name: str = "echo") -> str:
    """A WasmModule of a component really pushed to the registry, Ready with its digest (as the module controller
    leaves it; written here too, so these tests do not depend on that controller's timing)."""
    ref = f"{registry.host}/faults/{uuid.uuid4().hex[:10]}:1.0"
    asyncio.run(push_component(ref, ECHO, access=Access(insecure=True)))
    digest = sha256_digest(ECHO)
    objects = CustomObjectsApi(kube_client)
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "WasmModule",
        "metadata": {"name": name},
        "spec": {"source": {"oci": {"reference": ref, "insecure": True}}, "operator": "map"},
    }
    created = cast(
        dict[str, Any], objects.create_namespaced_custom_object(GROUP, VERSION, namespace, "wasmmodules", body)
    )
    status = {
        "observedGeneration": created["metadata"]["generation"],
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Succeeded",
                "message": f"{digest} pushed by the test",
                "lastTransitionTime": "2026-12-01T00:00:00Z",
                "observedGeneration": created["metadata"]["generation"],
            }
        ],
        "artifact": {
            "digest": digest,
            "size": len(ECHO),
            "mediaType": "application/wasm",
            "fetchedAt": "2026-12-01T00:00:00Z",
        },
    }
    objects.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, "wasmmodules", name, {"status": status})
    return digest


def dataflow(name: str, module: str = "echo", replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Dataflow",
        "metadata": {"name": name},
        "spec": {
            "endpoints": {"plant": {"mqtt": {"url": "mqtt://mosquitto.plant:1883", "qos": 1}}},
            "nodes": [
                {"name": "in", "type": "source", "endpoint": "plant", "topic": "sensors/+"},
                {"name": "op", "type": "map", "module": module},
                {"name": "out", "type": "sink", "endpoint": "plant", "topic": "out"},
            ],
            "edges": [{"from": "in", "to": "op"}, {"from": "op", "to": "out"}],
            "replicas": replicas,
        },
    }


def create(kube_client: ApiClient, namespace: str, doc: dict[str, Any]) -> None:
    CustomObjectsApi(kube_client).create_namespaced_custom_object(GROUP, VERSION, namespace, "dataflows", doc)


def status_of(kube_client: ApiClient, namespace: str, name: str) -> dict[str, Any]:
    body = cast(
        dict[str, Any],
        CustomObjectsApi(kube_client).get_namespaced_custom_object(GROUP, VERSION, namespace, "dataflows", name),
    )
    return dict(body.get("status") or {})


def children(kube_client: ApiClient, namespace: str, name: str) -> dict[str, list[Any]]:
    """The objects labelled as ``name``'s children, by kind."""
    selector = f"wasmflow.io/dataflow={name}"
    core, apps = CoreV1Api(kube_client), AppsV1Api(kube_client)
    return {
        "ConfigMap": core.list_namespaced_config_map(namespace, label_selector=selector).items,
        "Service": core.list_namespaced_service(namespace, label_selector=selector).items,
        "Deployment": apps.list_namespaced_deployment(namespace, label_selector=selector).items,
    }


def converged(kube_client: ApiClient, namespace: str, name: str, replicas: int = 1) -> bool:
    """One child of each kind, the Deployment as the spec says and carrying the hash the status reports."""
    status = status_of(kube_client, namespace, name)
    found = children(kube_client, namespace, name)
    if not status.get("configHash") or any(len(found[kind]) != 1 for kind in KINDS):
        return False
    (deployment,) = found["Deployment"]
    return bool(
        deployment.spec.replicas == replicas
        and deployment.metadata.annotations.get(CONFIG_HASH) == status["configHash"]
        and deployment.spec.template.metadata.annotations.get(CONFIG_HASH) == status["configHash"]
    )


def no_duplicates(kube_client: ApiClient, namespace: str, names: list[str]) -> None:
    """Exactly one child of each kind per Dataflow, and nothing else of those kinds in the namespace."""
    core, apps = CoreV1Api(kube_client), AppsV1Api(kube_client)
    for name in names:
        found = children(kube_client, namespace, name)
        assert {kind: len(found[kind]) for kind in KINDS} == dict.fromkeys(KINDS, 1), name
        for kind in KINDS:
            (owner,) = found[kind][0].metadata.owner_references
            assert (owner.kind, owner.name) == ("Dataflow", name)
    managed = "app.kubernetes.io/managed-by=wasmflow"
    total = {
        "ConfigMap": len(core.list_namespaced_config_map(namespace, label_selector=managed).items),
        "Service": len(core.list_namespaced_service(namespace, label_selector=managed).items),
        "Deployment": len(apps.list_namespaced_deployment(namespace, label_selector=managed).items),
    }
    assert total == dict.fromkeys(KINDS, len(names))


def versions(kube_client: ApiClient, namespace: str, names: list[str]) -> dict[str, str]:
    """resourceVersion of every child (and of each Dataflow's status), to see whether anything was written."""
    found: dict[str, str] = {}
    for name in names:
        for kind, items in children(kube_client, namespace, name).items():
            for item in items:
                found[f"{kind}/{item.metadata.name}"] = item.metadata.resource_version
        found[f"Dataflow/{name}"] = repr(sorted(status_of(kube_client, namespace, name).items()))
    return found


# ------------------------------------------------------------------------------------------- API server restart


def test_the_controller_rides_out_an_api_server_restart_and_converges_without_duplicates(
    controller: OperatorConfig,
    kube: KubeEnv,
    kube_client: ApiClient,
    namespace: str,
    registry: Registry,
    report: Report,
) -> None:
    ready_module(kube_client, namespace, registry)
    create(kube_client, namespace, dataflow("before"))
    wait_until(lambda: converged(kube_client, namespace, "before"), what="'before' applied", timeout=60)

    down = time.monotonic()
    restart_apiserver(kube.state_dir)
    back = time.monotonic()
    # Changes made after the restart reach the controller only through the watches it had to re-establish.
    create(kube_client, namespace, dataflow("after"))
    CustomObjectsApi(kube_client).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "dataflows", "before", {"spec": {"replicas": 2}}
    )
    wait_until(
        lambda: converged(kube_client, namespace, "after") and converged(kube_client, namespace, "before", 2),
        what="both Dataflows converged after the restart",
        timeout=120,
    )
    recovered = time.monotonic()
    no_duplicates(kube_client, namespace, ["before", "after"])
    report(apiserver_restart_s=back - down, converged_after_apiserver_back_s=recovered - back)


# ------------------------------------------------------------------------------------------- controller SIGKILL


@pytest.fixture
def controller_process(
    kube: KubeEnv, crds_installed: None, namespace: str, tmp_path: Path
) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """``start()`` runs ``wasmflow operator -n <namespace>`` as its own process (log: tmp_path/operator.log)."""
    started: list[subprocess.Popen[bytes]] = []
    env = {
        **os.environ,
        "KUBECONFIG": str(kube.kubeconfig),
        "WASMFLOW_METRICS_PORT": "0",
        "WASMFLOW_WORKER_IMAGE": "registry.test/wasmflow:test",
        "WASMFLOW_CACHE_DIR": str(tmp_path / "controller-cache"),
    }

    def start() -> subprocess.Popen[bytes]:
        with (tmp_path / "operator.log").open("ab") as log:
            started.append(
                subprocess.Popen(
                    [WASMFLOW, "operator", "-n", namespace, "--liveness", ""],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
            )
        return started[-1]

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def test_a_controller_killed_mid_reconcile_converges_to_the_same_objects_when_started_again(
    controller_process: Callable[[], subprocess.Popen[bytes]],
    kube_client: ApiClient,
    namespace: str,
    registry: Registry,
    tmp_path: Path,
    report: Report,
) -> None:
    ready_module(kube_client, namespace, registry)
    names = [f"df-{i}" for i in range(8)]
    for name in names:
        create(kube_client, namespace, dataflow(name))

    first = controller_process()
    core = CoreV1Api(kube_client)
    # SIGKILL the moment the first child exists: that reconcile is half done, the others not begun or partial.
    wait_until(
        lambda: (
            core.list_namespaced_config_map(namespace, label_selector="app.kubernetes.io/managed-by=wasmflow").items
            or first.poll() is not None
        ),
        what="the first child",
        timeout=120,
    )
    first.send_signal(signal.SIGKILL)
    assert first.wait(30) == -signal.SIGKILL, (tmp_path / "operator.log").read_text()
    partial = sum(converged(kube_client, namespace, name) for name in names)
    left = sum(len(items) for name in names for items in children(kube_client, namespace, name).values())
    assert partial < len(names), "the controller finished before it was killed: the test proves nothing"

    restarted = time.monotonic()
    second = controller_process()
    wait_until(lambda: all(converged(kube_client, namespace, n) for n in names), what="every Dataflow", timeout=180)
    recovered = time.monotonic() - restarted
    no_duplicates(kube_client, namespace, names)
    # Every Dataflow of the same spec gets the same children, whether or not its reconcile was cut short.
    hashes = {status_of(kube_client, namespace, n)["configHash"] for n in names}
    assert len(hashes) == len(names)  # the config names its Dataflow, so each hash is its own ...
    configs = {n: children(kube_client, namespace, n)["ConfigMap"][0].data["config.json"] for n in names}
    # ... and otherwise they are identical (each also has its own default shared-subscription group, a hash of it)
    assert len({re.sub(r"wasmflow-[0-9a-f]{16}", "GROUP", c.replace(n, "NAME")) for n, c in configs.items()}) == 1

    # Idempotent: a controller started on converged objects (Kopf resumes every Dataflow) writes nothing.
    second.send_signal(signal.SIGTERM)
    second.wait(60)
    before = versions(kube_client, namespace, names)
    log = tmp_path / "operator.log"
    resumed_from = len(log.read_text())
    controller_process()
    wait_until(
        lambda: log.read_text()[resumed_from:].count("Dataflow ") >= len(names),
        what="every Dataflow resumed",
        timeout=120,
    )
    assert versions(kube_client, namespace, names) == before
    report(dataflows=len(names), children_at_kill=left, converged_at_kill=partial, restart_to_converged_s=recovered)
