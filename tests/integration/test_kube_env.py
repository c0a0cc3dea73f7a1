"""The API server in the tests is a real kube-apiserver + etcd, with RBAC and CEL validation working."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from kubernetes import config
from kubernetes.client import (
    ApiClient,
    ApiextensionsV1Api,
    CoreV1Api,
    CustomObjectsApi,
    V1ConfigMap,
    V1ObjectMeta,
    VersionApi,
)
from kubernetes.client.exceptions import ApiException

from tests.services import KubeEnv

PINNED_VERSION = "v1.34.4"


def test_server_reports_the_pinned_kubernetes_version(kube_client: ApiClient) -> None:
    info = VersionApi(kube_client).get_code()
    assert info.git_version == PINNED_VERSION
    assert info.major == "1"


def test_a_configmap_round_trips_through_etcd(kube_client: ApiClient, namespace: str) -> None:
    core = CoreV1Api(kube_client)
    core.create_namespaced_config_map(
        namespace, V1ConfigMap(metadata=V1ObjectMeta(name="settings"), data={"threshold": "42"})
    )
    read = core.read_namespaced_config_map("settings", namespace)
    assert read.data == {"threshold": "42"}
    assert read.metadata.uid


def _crd(group: str) -> dict[str, object]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}},
                                    "x-kubernetes-validations": [
                                        {"rule": "self.min <= self.max", "message": "min must not exceed max"}
                                    ],
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


def _wait_established(api: ApiextensionsV1Api, name: str) -> None:
    for _ in range(100):
        conditions = api.read_custom_resource_definition(name).status.conditions or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return
        time.sleep(0.1)
    pytest.fail(f"CRD {name} never became Established")


def test_a_crd_is_served_and_its_cel_rule_refuses_invalid_objects(kube_client: ApiClient, namespace: str) -> None:
    group = f"t{uuid.uuid4().hex[:8]}.wasmflow.test"
    extensions = ApiextensionsV1Api(kube_client)
    extensions.create_custom_resource_definition(_crd(group))
    try:
        _wait_established(extensions, f"widgets.{group}")
        objects = CustomObjectsApi(kube_client)
        good = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "ok"}, "spec": {"min": 1, "max": 2}}
        objects.create_namespaced_custom_object(group, "v1", namespace, "widgets", good)
        bad = {**good, "metadata": {"name": "bad"}, "spec": {"min": 3, "max": 2}}
        with pytest.raises(ApiException) as refused:
            objects.create_namespaced_custom_object(group, "v1", namespace, "widgets", bad)
        assert refused.value.status == 422
        assert "min must not exceed max" in str(refused.value.body)
    finally:
        extensions.delete_custom_resource_definition(f"widgets.{group}")


def test_the_limited_identity_is_refused_by_rbac(kube: KubeEnv, namespace: str) -> None:
    limited = config.new_client_from_config(config_file=str(kube.kubeconfig_limited))
    try:
        with pytest.raises(ApiException) as refused:
            CoreV1Api(limited).list_namespaced_secret(namespace)
        assert refused.value.status == 403
        message = json.loads(refused.value.body)["message"]
        assert 'User "limited" cannot list resource "secrets"' in message
    finally:
        limited.close()
