"""A Dataflow never takes over an object it did not create (issue 16, case 11).

Its children are named ``<dataflow>-worker`` and server-side applied with force. Before, a Dataflow ``foo`` applied
over an existing ``foo-worker`` ConfigMap, Service or Deployment of someone else: its data or selector replaced, our
owner reference added (so it was later garbage-collected with the Dataflow). Now the Dataflow is Stalled naming the
object, the object is left exactly as it was, and once it is gone the Dataflow heals without an edit.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes.client import (
    ApiClient,
    AppsV1Api,
    CoreV1Api,
    CustomObjectsApi,
    V1ConfigMap,
    V1Container,
    V1Deployment,
    V1DeploymentSpec,
    V1LabelSelector,
    V1ObjectMeta,
    V1PodSpec,
    V1PodTemplateSpec,
    V1Service,
    V1ServicePort,
    V1ServiceSpec,
)

from tests.fault_report import Report
from tests.integration.conftest import wait_until
from tests.integration.faults.test_controller_faults import (
    GROUP,
    KINDS,
    VERSION,
    converged,
    create,
    dataflow,
    ready_module,
    status_of,
)
from tests.services import Registry
from wasmflow.operator.config import OperatorConfig

THEIRS = {"app": "theirs"}


def foreign(kind: str, name: str) -> Any:
    meta = V1ObjectMeta(name=name, labels=THEIRS)
    if kind == "ConfigMap":
        return V1ConfigMap(metadata=meta, data={"theirs": "yes"})
    if kind == "Service":
        return V1Service(metadata=meta, spec=V1ServiceSpec(selector=THEIRS, ports=[V1ServicePort(port=80)]))
    template = V1PodTemplateSpec(
        metadata=V1ObjectMeta(labels=THEIRS), spec=V1PodSpec(containers=[V1Container(name="app", image="theirs:1")])
    )
    return V1Deployment(
        metadata=meta, spec=V1DeploymentSpec(selector=V1LabelSelector(match_labels=THEIRS), template=template)
    )


def create_foreign(kube_client: ApiClient, namespace: str, kind: str, name: str) -> Any:
    core, apps = CoreV1Api(kube_client), AppsV1Api(kube_client)
    calls = {
        "ConfigMap": core.create_namespaced_config_map,
        "Service": core.create_namespaced_service,
        "Deployment": apps.create_namespaced_deployment,
    }
    return calls[kind](namespace, foreign(kind, name))


def read(kube_client: ApiClient, namespace: str, kind: str, name: str) -> Any:
    core, apps = CoreV1Api(kube_client), AppsV1Api(kube_client)
    calls = {
        "ConfigMap": core.read_namespaced_config_map,
        "Service": core.read_namespaced_service,
        "Deployment": apps.read_namespaced_deployment,
    }
    return calls[kind](name, namespace)


def delete(kube_client: ApiClient, namespace: str, kind: str, name: str) -> None:
    core, apps = CoreV1Api(kube_client), AppsV1Api(kube_client)
    calls = {
        "ConfigMap": core.delete_namespaced_config_map,
        "Service": core.delete_namespaced_service,
        "Deployment": apps.delete_namespaced_deployment,
    }
    calls[kind](name, namespace)


def stalled(kube_client: ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    conditions = status_of(kube_client, namespace, name).get("conditions") or []
    return next((c for c in conditions if c["type"] == "Stalled" and c["status"] == "True"), None)


@pytest.mark.parametrize("kind", KINDS)
def test_a_dataflow_does_not_take_over_an_object_of_its_childs_name_and_updates_its_own(
    kind: str, controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry: Registry, report: Report
) -> None:
    before = create_foreign(kube_client, namespace, kind, "foo-worker")
    ready_module(kube_client, namespace, registry)
    create(kube_client, namespace, dataflow("foo"))
    create(kube_client, namespace, dataflow("bar"))

    found = wait_until(lambda: stalled(kube_client, namespace, "foo"), what="foo Stalled", timeout=60)
    assert found["reason"] == "ChildNotOwned"
    assert found["message"].startswith(f"{kind} foo-worker already exists and was not created by this Dataflow")
    after = read(kube_client, namespace, kind, "foo-worker")
    assert after.metadata.resource_version == before.metadata.resource_version  # not written at all
    assert after.metadata.owner_references is None
    assert after.metadata.labels == THEIRS
    assert (
        not CoreV1Api(kube_client)
        .list_namespaced_config_map(namespace, label_selector="wasmflow.io/dataflow=foo")
        .items
    )

    # Our own children are applied and updated as before.
    wait_until(lambda: converged(kube_client, namespace, "bar"), what="bar applied", timeout=60)
    CustomObjectsApi(kube_client).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "dataflows", "bar", {"spec": {"replicas": 2}}
    )
    wait_until(lambda: converged(kube_client, namespace, "bar", 2), what="bar updated", timeout=60)

    # Once the foreign object is gone, foo heals by itself (its reconcile is retried).
    delete(kube_client, namespace, kind, "foo-worker")
    deleted = time.monotonic()
    wait_until(lambda: converged(kube_client, namespace, "foo"), what="foo applied after the deletion", timeout=90)
    report(kind=kind, foreign_untouched=True, healed_after_deletion_s=time.monotonic() - deleted)
