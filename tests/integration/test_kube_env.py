"""The API server in the tests is a real kube-apiserver + etcd: pinned release, storage, CRDs with CEL, RBAC."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import config
from kubernetes.client import (
    ApiClient,
    ApiextensionsV1Api,
    AuthenticationV1Api,
    CoreV1Api,
    CustomObjectsApi,
    V1ConfigMap,
    V1ObjectMeta,
    V1SelfSubjectReview,
    VersionApi,
)
from kubernetes.client.exceptions import ApiException

from tests.kube_env import KubeEnv, pinned_kube_version

pytestmark = pytest.mark.integration


def test_server_reports_the_pinned_kubernetes_release(kube_client: ApiClient) -> None:
    info = VersionApi(kube_client).get_code()
    assert info.git_version == pinned_kube_version()
    assert (info.major, info.minor) == ("1", pinned_kube_version().split(".")[1])


def test_a_created_namespace_reads_back_active(kube_client: ApiClient, namespace: str) -> None:
    read = CoreV1Api(kube_client).read_namespace(namespace)
    assert read.metadata.name == namespace
    assert read.status.phase == "Active"


def test_a_configmap_round_trips_through_etcd(kube_client: ApiClient, namespace: str) -> None:
    core = CoreV1Api(kube_client)
    core.create_namespaced_config_map(
        namespace, V1ConfigMap(metadata=V1ObjectMeta(name="settings"), data={"threshold": "42"})
    )
    read = core.read_namespaced_config_map("settings", namespace)
    assert read.data == {"threshold": "42"}
    assert read.metadata.uid
    assert read.metadata.resource_version


# A CRD whose only rule is a CEL cross-field check, in a group of its own so parallel sessions never collide.
WIDGET_GROUP = f"t{uuid.uuid4().hex[:8]}.wasmflow.test"
WIDGET_RULE_MESSAGE = "min must not exceed max"


def _widget_crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{WIDGET_GROUP}"},
        "spec": {
            "group": WIDGET_GROUP,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
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
                                    "required": ["min", "max"],
                                    "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}},
                                    "x-kubernetes-validations": [
                                        {"rule": "self.min <= self.max", "message": WIDGET_RULE_MESSAGE}
                                    ],
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


def _widget(name: str, low: int, high: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{WIDGET_GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"min": low, "max": high},
    }


@pytest.fixture(scope="module")
def widget_crd(kube_client: ApiClient) -> Iterator[str]:
    """The Widget CRD, Established (served); deleted afterwards. Yields its group."""
    extensions = ApiextensionsV1Api(kube_client)
    name = f"widgets.{WIDGET_GROUP}"
    extensions.create_custom_resource_definition(_widget_crd())
    try:
        deadline = time.monotonic() + 30
        while not any(
            c.type == "Established" and c.status == "True"
            for c in (extensions.read_custom_resource_definition(name).status.conditions or [])
        ):
            if time.monotonic() > deadline:
                pytest.fail(f"CRD {name} never became Established")
            time.sleep(0.1)
        yield WIDGET_GROUP
    finally:
        extensions.delete_custom_resource_definition(name)


def test_a_custom_resource_passing_the_cel_rule_is_stored(
    kube_client: ApiClient, namespace: str, widget_crd: str
) -> None:
    objects = CustomObjectsApi(kube_client)
    objects.create_namespaced_custom_object(widget_crd, "v1", namespace, "widgets", _widget("ok", 1, 2))
    read = objects.get_namespaced_custom_object(widget_crd, "v1", namespace, "widgets", "ok")
    assert read["spec"] == {"min": 1, "max": 2}


def test_a_custom_resource_breaking_the_cel_rule_is_refused_with_its_message(
    kube_client: ApiClient, namespace: str, widget_crd: str
) -> None:
    objects = CustomObjectsApi(kube_client)
    with pytest.raises(ApiException) as refused:
        objects.create_namespaced_custom_object(widget_crd, "v1", namespace, "widgets", _widget("bad", 3, 2))
    assert refused.value.status == 422
    status = json.loads(refused.value.body)
    assert status["reason"] == "Invalid"
    # One cause, on the field the rule sits on, carrying the rule's own message.
    [cause] = status["details"]["causes"]
    assert cause["field"] == "spec"
    assert cause["message"].endswith(WIDGET_RULE_MESSAGE)


@pytest.fixture
def limited_client(kube: KubeEnv) -> Iterator[ApiClient]:
    """An API client for the ``limited`` identity (authenticated, no RBAC grants)."""
    client = config.new_client_from_config(config_file=str(kube.kubeconfig_limited))
    try:
        yield client
    finally:
        client.close()


def test_the_limited_identity_is_authenticated_as_limited_without_groups(limited_client: ApiClient) -> None:
    review = AuthenticationV1Api(limited_client).create_self_subject_review(V1SelfSubjectReview())
    assert review.status.user_info.username == "limited"
    assert review.status.user_info.groups == ["system:authenticated"]


def test_the_limited_identity_is_refused_listing_secrets(limited_client: ApiClient, namespace: str) -> None:
    with pytest.raises(ApiException) as refused:
        CoreV1Api(limited_client).list_namespaced_secret(namespace)
    assert refused.value.status == 403
    message = json.loads(refused.value.body)["message"]
    assert message == (
        'secrets is forbidden: User "limited" cannot list resource "secrets" in API group ""'
        f' in the namespace "{namespace}"'
    )
