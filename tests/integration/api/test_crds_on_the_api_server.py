"""The generated CRDs on a real API server: it judges manifests as the models do, fills in the same defaults, and
serves the names, printer columns and status subresource that kubectl, kstatus and Flux rely on.

The CRDs are installed by the session fixture ``crds_installed`` (server-side apply, then Established).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

import pytest
from kubernetes.client import ApiClient, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from tests.unit.api.cases import INVALID, VALID, Case, Doc, example_dataflow, example_module, valid_manifest
from wasmflow.api import status
from wasmflow.api.dataflow import Dataflow
from wasmflow.api.wasmmodule import WasmModule

GROUP, VERSION = "wasmflow.io", "v1alpha1"
PLURALS = {"Dataflow": "dataflows", "WasmModule": "wasmmodules"}
pytestmark = pytest.mark.usefixtures("crds_installed")


def create(kube_client: ApiClient, namespace: str, doc: Doc) -> dict[str, Any]:
    objects = CustomObjectsApi(kube_client)
    return cast(
        dict[str, Any], objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[doc["kind"]], doc)
    )


def patch(kube_client: ApiClient, namespace: str, plural: str, name: str, body: Doc, *, status: bool) -> dict[str, Any]:
    objects = CustomObjectsApi(kube_client)
    call = objects.patch_namespaced_custom_object_status if status else objects.patch_namespaced_custom_object
    return cast(dict[str, Any], call(GROUP, VERSION, namespace, plural, name, body))


def message_of(refused: ApiException) -> str:
    return cast(str, json.loads(refused.body or "{}")["message"])


def refusal(kube_client: ApiClient, namespace: str, doc: Doc) -> str:
    with pytest.raises(ApiException) as refused:
        create(kube_client, namespace, doc)
    assert refused.value.status == 422, refused.value.body
    return message_of(refused.value)


@pytest.mark.parametrize("case", INVALID, ids=[c.id for c in INVALID])
def test_the_api_server_refuses_what_the_models_refuse(kube_client: ApiClient, namespace: str, case: Case) -> None:
    assert case.server_message in refusal(kube_client, namespace, case.manifest())


def test_a_cel_refusal_names_the_edge_and_the_field(kube_client: ApiClient, namespace: str) -> None:
    doc = example_dataflow()
    doc["spec"]["edges"].append({"from": "averages", "to": "ghost"})
    message = refusal(kube_client, namespace, doc)
    assert "spec.edges: Invalid value" in message
    assert "edge averages -> ghost names a node that does not exist" in message


@pytest.mark.parametrize(("name", "kind", "change"), VALID, ids=[v[0] for v in VALID])
def test_the_api_server_accepts_what_the_models_accept(
    kube_client: ApiClient, namespace: str, name: str, kind: str, change: Callable[[Doc], object]
) -> None:
    created = create(kube_client, namespace, valid_manifest(kind, change))
    assert created["metadata"]["generation"] == 1


def test_module_defaults_are_filled_in_as_the_models_fill_them(kube_client: ApiClient, namespace: str) -> None:
    doc = example_module()
    del doc["spec"]["limits"]
    doc["spec"]["source"] = {"configMapRef": {"name": "enrich-wasm"}}
    stored = create(kube_client, namespace, doc)
    assert stored["spec"]["limits"] == {"memory": "64Mi", "timeoutPerMessage": "100ms"}
    assert stored["spec"]["source"]["configMapRef"]["key"] == "module.wasm"
    assert (stored["spec"]["interval"], stored["spec"]["strict"]) == ("10m", False)
    assert WasmModule.model_validate(stored).spec == WasmModule.model_validate(doc).spec


def test_dataflow_defaults_are_filled_in_as_the_models_fill_them(kube_client: ApiClient, namespace: str) -> None:
    doc = example_dataflow()
    del doc["spec"]["errorPolicy"]
    del doc["spec"]["endpoints"]["plant"]["mqtt"]["qos"]
    stored = create(kube_client, namespace, doc)
    assert stored["spec"]["errorPolicy"] == {"action": "drop"}
    assert stored["spec"]["replicas"] == 1
    assert stored["spec"]["endpoints"]["plant"]["mqtt"]["qos"] == 1
    assert Dataflow.model_validate(stored).spec == Dataflow.model_validate(doc).spec


def _get(kube_client: ApiClient, path: str, accept: str = "application/json") -> dict[str, Any]:
    method, url, headers, _, _ = kube_client.param_serialize(
        "GET", path, header_params={"Accept": accept}, auth_settings=["BearerToken"]
    )
    response = kube_client.call_api(method, url, header_params=headers)
    response.read()  # type: ignore[no-untyped-call]
    return cast(dict[str, Any], json.loads(response.data or b"{}"))


def _table(kube_client: ApiClient, namespace: str, plural: str) -> dict[str, Any]:
    """What ``kubectl get`` shows: the server renders the printer columns into a Table."""
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}"
    return _get(kube_client, path, accept="application/json;as=Table;v=v1;g=meta.k8s.io")


def _columns(table: dict[str, Any]) -> dict[str, Any]:
    (row,) = table["rows"]
    return {c["name"]: cell for c, cell in zip(table["columnDefinitions"], row["cells"], strict=True)}


def test_dataflow_printer_columns_show_ready_and_workers_from_the_status(
    kube_client: ApiClient, namespace: str
) -> None:
    created = create(kube_client, namespace, example_dataflow())
    conditions = status.ready([], "1/1 worker(s) ready", created["metadata"]["generation"])
    observed = {"observedGeneration": 1, "conditions": conditions, "workers": {"desired": 1, "ready": 1}}
    patch(kube_client, namespace, "dataflows", "plant-temperatures", {"status": observed}, status=True)
    table = _table(kube_client, namespace, "dataflows")
    assert [(c["name"], c["priority"]) for c in table["columnDefinitions"]] == [
        ("Name", 0),
        ("Ready", 0),
        ("Workers", 0),
        ("Desired", 0),
        ("Age", 0),
        ("Status", 0),
        ("Config", 1),
    ]
    cells = _columns(table)
    assert (cells["Ready"], cells["Workers"], cells["Desired"], cells["Status"]) == (
        "True",
        1,
        1,
        "1/1 worker(s) ready",
    )


def test_module_printer_columns_show_the_digest(kube_client: ApiClient, namespace: str) -> None:
    create(kube_client, namespace, example_module())
    digest = "sha256:" + "ab" * 32
    artifact = {"digest": digest, "size": 18000, "mediaType": "application/wasm", "fetchedAt": "2026-01-01T00:00:00Z"}
    patch(kube_client, namespace, "wasmmodules", "enrich", {"status": {"artifact": artifact}}, status=True)
    table = _table(kube_client, namespace, "wasmmodules")
    assert [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0] == [
        "Name",
        "Ready",
        "Operator",
        "Digest",
        "Signer",
        "Age",
        "Status",
    ]
    assert (_columns(table)["Operator"], _columns(table)["Digest"]) == ("map", digest)


def test_status_sent_to_the_main_resource_is_ignored(kube_client: ApiClient, namespace: str) -> None:
    doc = example_module()
    doc["status"] = {"world": "forged"}
    assert "status" not in create(kube_client, namespace, doc)
    patched = patch(kube_client, namespace, "wasmmodules", "enrich", {"status": {"world": "forged"}}, status=False)
    assert "status" not in patched
    assert patched["metadata"]["generation"] == 1


def test_the_condition_lifecycle_writes_conditions_the_schema_accepts(kube_client: ApiClient, namespace: str) -> None:
    create(kube_client, namespace, example_module())
    conditions = status.stalled(status.reconciling([], "pulling", 1), "DigestMismatch", "pin differs", 1)
    observed = {"observedGeneration": 1, "conditions": conditions}
    patched = patch(kube_client, namespace, "wasmmodules", "enrich", {"status": observed}, status=True)
    assert {c["type"]: c["status"] for c in patched["status"]["conditions"]} == {"Ready": "False", "Stalled": "True"}
    parsed = WasmModule.model_validate(patched)
    assert parsed.status is not None
    assert parsed.status.observed_generation == 1


def test_a_condition_with_a_bad_status_is_refused_by_the_schema(kube_client: ApiClient, namespace: str) -> None:
    create(kube_client, namespace, example_module())
    bad = {"type": "Ready", "status": "Yes", "reason": "Succeeded", "message": "", "lastTransitionTime": status.now()}
    with pytest.raises(ApiException) as refused:
        patch(kube_client, namespace, "wasmmodules", "enrich", {"status": {"conditions": [bad]}}, status=True)
    assert 'Unsupported value: "Yes"' in message_of(refused.value)


def test_short_names_and_the_wasmflow_category_are_served(kube_client: ApiClient) -> None:
    resources = {r["name"]: r for r in _get(kube_client, f"/apis/{GROUP}/{VERSION}")["resources"]}
    assert resources["dataflows"]["shortNames"] == ["df"]
    assert resources["wasmmodules"]["shortNames"] == ["wm"]
    assert resources["dataflows"]["categories"] == resources["wasmmodules"]["categories"] == ["wasmflow"]
    assert "dataflows/status" in resources
