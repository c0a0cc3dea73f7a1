"""The generated CRDs are accepted by a real API server, which then applies their defaults and CEL rules."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient, ApiextensionsV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from wasmflow.api.crd import crds

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "manifests"


@pytest.fixture(scope="module")
def installed(kube_client: ApiClient) -> None:
    dynamic = DynamicClient(kube_client)
    resource = dynamic.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    for crd in crds().values():
        resource.server_side_apply(body=crd, field_manager="wasmflow-tests", force_conflicts=True)
    api = ApiextensionsV1Api(kube_client)
    deadline = time.monotonic() + 30
    for crd in crds().values():
        name = crd["metadata"]["name"]
        while not any(
            c.type == "Established" and c.status == "True"
            for c in (api.read_custom_resource_definition(name).status.conditions or [])
        ):
            assert time.monotonic() < deadline, f"{name} never became Established"
            time.sleep(0.1)


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]


def test_the_example_modules_are_accepted_with_defaults(
    installed: None, kube_client: ApiClient, namespace: str
) -> None:
    objects = CustomObjectsApi(kube_client)
    for doc in _docs("wasmmodules.yaml"):
        objects.create_namespaced_custom_object("wasmflow.io", "v1alpha1", namespace, "wasmmodules", doc)
    stored = objects.get_namespaced_custom_object("wasmflow.io", "v1alpha1", namespace, "wasmmodules", "enrich")
    assert stored["spec"]["interval"] == "10m"
    assert stored["spec"]["strict"] is False


def test_a_dataflow_with_an_edge_to_a_missing_node_is_refused_by_cel(
    installed: None, kube_client: ApiClient, namespace: str
) -> None:
    (doc,) = _docs("dataflow.yaml")
    doc["spec"]["edges"].append({"from": "averages", "to": "ghost"})
    with pytest.raises(ApiException) as refused:
        CustomObjectsApi(kube_client).create_namespaced_custom_object(
            "wasmflow.io", "v1alpha1", namespace, "dataflows", doc
        )
    assert refused.value.status == 422
    assert "every edge must name existing nodes in from and to" in json.loads(refused.value.body)["message"]


def test_a_branch_with_one_arm_is_refused_by_cel(installed: None, kube_client: ApiClient, namespace: str) -> None:
    (doc,) = _docs("dataflow.yaml")
    doc["spec"]["edges"] = [e for e in doc["spec"]["edges"] if e.get("arm") is not False]
    with pytest.raises(ApiException) as refused:
        CustomObjectsApi(kube_client).create_namespaced_custom_object(
            "wasmflow.io", "v1alpha1", namespace, "dataflows", doc
        )
    assert "a branch node needs an edge with arm: true and an edge with arm: false" in refused.value.body


def test_the_example_dataflow_is_accepted(installed: None, kube_client: ApiClient, namespace: str) -> None:
    (doc,) = _docs("dataflow.yaml")
    created = CustomObjectsApi(kube_client).create_namespaced_custom_object(
        "wasmflow.io", "v1alpha1", namespace, "dataflows", doc
    )
    assert created["spec"]["replicas"] == 1
    assert created["spec"]["errorPolicy"] == {"action": "drop"}
