"""The Dataflow controller against a real API server: children, owner references, config hash, status."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api, CustomObjectsApi

from tests.components.engine import wat
from tests.integration.conftest import wait_until
from tests.services import Registry
from wasmflow.oci import Access, push_component
from wasmflow.operator.config import OperatorConfig

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "manifests"
#: The digest of the WAT map component the map modules are pushed with.
MAP_DIGEST = wat.digest(wat.operator("map"))


def _objects(kube_client: ApiClient) -> CustomObjectsApi:
    return CustomObjectsApi(kube_client)


def create_ready_modules(kube_client: ApiClient, namespace: str, registry: Registry, *, ready: bool = True) -> None:
    """The example WasmModules, made Ready by the WasmModule controller from real components in ``registry``.

    Each module's reference is moved to the test registry (under the namespace, so tests do not share tags) and a
    small WAT component of its operator kind is pushed there; with ``ready=False`` nothing is pushed yet, so the
    modules stall (NotFound) until ``push_example_components`` pushes them (they re-check every 2 s).
    """
    objects = _objects(kube_client)
    for doc in example_modules(registry, namespace):
        objects.create_namespaced_custom_object("wasmflow.io", "v1alpha1", namespace, "wasmmodules", doc)
    if ready:
        push_example_components(registry, namespace)
        for doc in example_modules(registry, namespace):
            wait_until(
                lambda name=doc["metadata"]["name"]: module_ready(kube_client, namespace, name),
                what=f"WasmModule {doc['metadata']['name']} Ready",
            )


def example_modules(registry: Registry, namespace: str) -> list[dict[str, Any]]:
    docs = []
    for doc in yaml.safe_load_all((EXAMPLES / "wasmmodules.yaml").read_text()):
        oci = doc["spec"]["source"]["oci"]
        oci["reference"] = oci["reference"].replace("registry.local:5000", f"{registry.host}/{namespace}")
        doc["spec"]["interval"] = "2s"
        docs.append(doc)
    return docs


def push_example_components(registry: Registry, namespace: str) -> None:
    for doc in example_modules(registry, namespace):
        component = wat.operator(doc["spec"]["operator"])
        asyncio.run(push_component(doc["spec"]["source"]["oci"]["reference"], component, access=Access(insecure=True)))


def module_ready(kube_client: ApiClient, namespace: str, name: str) -> bool:
    body = _objects(kube_client).get_namespaced_custom_object("wasmflow.io", "v1alpha1", namespace, "wasmmodules", name)
    ready = condition(body, "Ready")
    return bool(
        ready and ready["status"] == "True" and body["status"]["observedGeneration"] == body["metadata"]["generation"]
    )


def dataflow_doc() -> dict[str, Any]:
    (doc,) = list(yaml.safe_load_all((EXAMPLES / "dataflow.yaml").read_text()))
    return dict(doc)


def apply_example_dataflow(kube_client: ApiClient, namespace: str, registry: Registry) -> dict[str, Any]:
    """The example modules made Ready, then the example Dataflow created; returns the created Dataflow."""
    create_ready_modules(kube_client, namespace, registry)
    created: dict[str, Any] = _objects(kube_client).create_namespaced_custom_object(
        "wasmflow.io", "v1alpha1", namespace, "dataflows", dataflow_doc()
    )
    return created


def get_dataflow(kube_client: ApiClient, namespace: str, name: str = "plant-temperatures") -> dict[str, Any]:
    result: dict[str, Any] = _objects(kube_client).get_namespaced_custom_object(
        "wasmflow.io", "v1alpha1", namespace, "dataflows", name
    )
    return result


def condition(body: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in (body.get("status") or {}).get("conditions", []) if c["type"] == type_), None)


def test_a_dataflow_gets_its_configmap_deployment_and_service(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry: Registry
) -> None:
    created = apply_example_dataflow(kube_client, namespace, registry)
    apps, core = AppsV1Api(kube_client), CoreV1Api(kube_client)
    name = "plant-temperatures-worker"
    deployment = wait_until(
        lambda: next(iter(apps.list_namespaced_deployment(namespace).items), None), what="the worker Deployment"
    )
    config_map = core.read_namespaced_config_map(name, namespace)
    service = core.read_namespaced_service(name, namespace)
    for child in (deployment, config_map, service):
        (owner,) = child.metadata.owner_references
        assert (owner.kind, owner.name, owner.uid, owner.controller) == (
            "Dataflow",
            "plant-temperatures",
            created["metadata"]["uid"],
            True,
        )
    config = json.loads(config_map.data["config.json"])
    assert config["modules"]["to-celsius"]["digest"] == MAP_DIGEST
    assert config["modules"]["to-celsius"]["reference"].endswith("/wasmflow-examples/to-celsius:0.1.0")
    container = deployment.spec.template.spec.containers[0]
    assert container.image == controller.worker_image
    assert container.args == ["worker", "--config", "/etc/wasmflow/config.json"]
    assert container.security_context.read_only_root_filesystem is True
    assert deployment.spec.template.spec.security_context.run_as_non_root is True
    status = wait_until(
        lambda: (
            (get_dataflow(kube_client, namespace).get("status") or {}).get("configHash")
            and get_dataflow(kube_client, namespace)["status"]
        ),
        what="Dataflow status",
    )
    assert status["configHash"] == deployment.spec.template.metadata.annotations["wasmflow.io/config-hash"]
    assert {m["name"] for m in status["modules"]} == {"enrich", "to-celsius", "in-range", "overheat", "window-average"}
    assert status["workers"] == {"desired": 1, "ready": 0}
    ready = condition(get_dataflow(kube_client, namespace), "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "WorkersNotReady")  # no kubelet runs pods here


def test_editing_the_dataflow_changes_the_config_hash_and_the_deployment(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry: Registry
) -> None:
    apply_example_dataflow(kube_client, namespace, registry)
    apps = AppsV1Api(kube_client)

    def pod_hash() -> str | None:
        items = apps.list_namespaced_deployment(namespace).items
        return items[0].spec.template.metadata.annotations["wasmflow.io/config-hash"] if items else None

    first = wait_until(pod_hash, what="the first config hash")
    patch = {"spec": {"nodes": copy.deepcopy(dataflow_doc()["spec"]["nodes"])}}
    patch["spec"]["nodes"][4]["configuration"] = {"threshold": "95"}
    _objects(kube_client).patch_namespaced_custom_object(
        "wasmflow.io", "v1alpha1", namespace, "dataflows", "plant-temperatures", patch
    )
    second = wait_until(lambda: (h := pod_hash()) != first and h, what="a new config hash")
    assert second != first
    assert get_dataflow(kube_client, namespace)["status"]["configHash"] == second or wait_until(
        lambda: get_dataflow(kube_client, namespace)["status"]["configHash"] == second, what="status configHash"
    )


def test_a_cycle_is_stalled_with_the_node_named(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry: Registry
) -> None:
    create_ready_modules(kube_client, namespace, registry)
    doc = dataflow_doc()
    doc["spec"]["edges"].append({"from": "in-range", "to": "enrich"})
    _objects(kube_client).create_namespaced_custom_object("wasmflow.io", "v1alpha1", namespace, "dataflows", doc)
    stalled = wait_until(lambda: condition(get_dataflow(kube_client, namespace), "Stalled"), what="Stalled")
    assert stalled["reason"] == "InvalidGraph"
    assert "is on a cycle" in stalled["message"]
    assert "enrich" in stalled["message"]
    ready = condition(get_dataflow(kube_client, namespace), "Ready")
    assert ready is not None and ready["status"] == "False"
    assert not AppsV1Api(kube_client).list_namespaced_deployment(namespace).items


def test_a_module_that_is_not_ready_holds_the_dataflow_back_until_it_is(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry: Registry
) -> None:
    create_ready_modules(kube_client, namespace, registry, ready=False)
    _objects(kube_client).create_namespaced_custom_object(
        "wasmflow.io", "v1alpha1", namespace, "dataflows", dataflow_doc()
    )
    # Nothing is pushed yet: the WasmModule controller stalls the modules (NotFound), the Dataflow says which.
    # The modules stall one by one; each one re-reconciles the Dataflow, whose message then names it too.
    ready = wait_until(
        lambda: (
            (c := condition(get_dataflow(kube_client, namespace), "Ready"))
            and c["reason"] == "ModuleFailed"
            and "WasmModule enrich is Stalled" in c["message"]
            and c
        ),
        what="the Dataflow held back by its failed modules, enrich among them",
    )
    assert "WasmModule enrich is Stalled: NotFound" in ready["message"]
    assert "manifest 0.1.0 not found" in ready["message"]
    assert not AppsV1Api(kube_client).list_namespaced_deployment(namespace).items
    # The components are pushed: the modules heal on their interval and the Dataflow follows, with no edit of its own.
    push_example_components(registry, namespace)
    wait_until(
        lambda: AppsV1Api(kube_client).list_namespaced_deployment(namespace).items, what="the Deployment", timeout=90
    )


def test_the_dataflow_turns_ready_when_the_rollout_of_its_config_is_done(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry: Registry
) -> None:
    apply_example_dataflow(kube_client, namespace, registry)
    apps = AppsV1Api(kube_client)
    name = "plant-temperatures-worker"
    wait_until(lambda: (get_dataflow(kube_client, namespace).get("status") or {}).get("configHash"), what="applied")
    deployment = apps.read_namespaced_deployment(name, namespace)
    # What the Deployment controller writes once every pod of the current template is ready (no kubelet here).
    done = {"observedGeneration": deployment.metadata.generation, "replicas": 1, "updatedReplicas": 1}
    apps.patch_namespaced_deployment_status(name, namespace, {"status": {**done, "readyReplicas": 1}})
    ready = wait_until(
        lambda: (c := condition(get_dataflow(kube_client, namespace), "Ready")) and c["status"] == "True" and c,
        what="the Dataflow Ready",
    )
    assert (ready["reason"], ready["message"]) == ("Succeeded", "1/1 worker(s) ready")
    body = get_dataflow(kube_client, namespace)
    assert body["status"]["workers"] == {"desired": 1, "ready": 1}
    assert condition(body, "Reconciling") is None


def test_a_worker_deployment_deleted_by_hand_is_recreated(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry: Registry
) -> None:
    apply_example_dataflow(kube_client, namespace, registry)
    apps = AppsV1Api(kube_client)
    name = "plant-temperatures-worker"
    first = wait_until(
        lambda: next(iter(apps.list_namespaced_deployment(namespace).items), None), what="the worker Deployment"
    )
    apps.delete_namespaced_deployment(name, namespace)
    second = wait_until(
        lambda: next(
            (d for d in apps.list_namespaced_deployment(namespace).items if d.metadata.uid != first.metadata.uid), None
        ),
        what="the worker Deployment recreated",
    )
    assert second.metadata.name == name
    assert second.spec.template.metadata.annotations == first.spec.template.metadata.annotations
    assert second.metadata.owner_references[0].uid == first.metadata.owner_references[0].uid
