"""The controller's own Kubernetes calls (Kopf talks to the API for watching; these are our reads and applies).

The official client is synchronous, so every call runs in a thread. API errors are translated here, once.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from wasmflow.errors import WasmflowError

GROUP = "wasmflow.io"
VERSION = "v1alpha1"
FIELD_MANAGER = "wasmflow"
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105 - a path

_T = TypeVar("_T")


def api_client() -> client.ApiClient:
    """KUBECONFIG / ~/.kube/config when present, else the pod's service account."""
    if os.path.exists(SERVICE_ACCOUNT_TOKEN):  # noqa: PTH110 - the same check as Kopf's login
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        return client.ApiClient()
    # Read $KUBECONFIG now: the client library reads it only once, when first imported.
    return config.new_client_from_config(config_file=os.environ.get("KUBECONFIG"))  # type: ignore[no-untyped-call,no-any-return]


async def get_custom(api: client.ApiClient, namespace: str, plural: str, name: str) -> dict[str, Any] | None:
    def call() -> dict[str, Any] | None:
        try:
            result = cast(
                dict[str, Any],
                client.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name),
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return result

    return await asyncio.to_thread(call)


async def list_custom(api: client.ApiClient, namespace: str, plural: str) -> list[dict[str, Any]]:
    def call() -> list[dict[str, Any]]:
        result = cast(
            dict[str, Any],
            client.CustomObjectsApi(api).list_namespaced_custom_object(GROUP, VERSION, namespace, plural),
        )
        return list(result.get("items", []))

    return await asyncio.to_thread(call)


async def patch_custom(api: client.ApiClient, namespace: str, plural: str, name: str, body: dict[str, Any]) -> None:
    def call() -> None:
        client.CustomObjectsApi(api).patch_namespaced_custom_object(GROUP, VERSION, namespace, plural, name, body)

    await asyncio.to_thread(call)


async def patch_custom_status(
    api: client.ApiClient, namespace: str, plural: str, name: str, body: dict[str, Any]
) -> None:
    def call() -> None:
        client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, plural, name, body
        )

    await asyncio.to_thread(call)


async def apply(api: client.ApiClient, manifest: dict[str, Any]) -> dict[str, Any]:
    """Server-side apply under our field manager (idempotent: re-applying the same manifest changes nothing)."""

    def call() -> dict[str, Any]:
        dynamic = DynamicClient(api)  # type: ignore[no-untyped-call]
        resource = dynamic.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
        result = resource.server_side_apply(
            body=manifest,
            name=manifest["metadata"]["name"],
            namespace=manifest["metadata"].get("namespace"),
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
        )
        applied: dict[str, Any] = result.to_dict()
        return applied

    return await asyncio.to_thread(call)


async def patch_custom_status_at(
    api: client.ApiClient, namespace: str, plural: str, name: str, status: dict[str, Any], resource_version: str
) -> bool:
    """Merge-patch ``status`` only if the object is still at ``resource_version``; False when it moved on (409).

    Two writers share a Dataflow's status (its reconcile and the worker follower): each reads, computes and writes
    under this precondition, and recomputes from a fresh read when it loses, so neither overwrites newer news.
    """

    def call() -> bool:
        body = {"metadata": {"resourceVersion": resource_version}, "status": status}
        try:
            client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, plural, name, body
            )
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    return await asyncio.to_thread(call)


async def get_deployment(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    """The Deployment as the API serves it (camelCase keys), or None when it does not exist."""

    def call() -> dict[str, Any] | None:
        try:
            deployment = client.AppsV1Api(api).read_namespaced_deployment(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return cast(dict[str, Any], api.sanitize_for_serialization(deployment))  # type: ignore[no-untyped-call]

    return await asyncio.to_thread(call)


class AccessDenied(WasmflowError):  # noqa: N818 - a refusal by the API server, named as kubectl says it
    """The API server refused one of our reads: 403 (the identity lacks an RBAC permission) or 401 (its token).

    ``verb`` on ``resource`` ``name`` in ``namespace`` is what was refused; ``server_message`` is the API server's
    own sentence, which names the identity (``User "system:serviceaccount:NS:SA" cannot get resource ...``).
    """

    def __init__(self, status: int, verb: str, resource: str, namespace: str, name: str, server_message: str) -> None:
        self.status = status
        self.verb = verb
        self.resource = resource
        self.namespace = namespace
        self.name = name
        self.server_message = server_message
        super().__init__(f"{status} {verb} {resource} {namespace}/{name}: {server_message}")


def _get_or_none(read: Callable[[], _T], resource: str, namespace: str, name: str) -> _T | None:
    """``read()``, or None when the object does not exist (404); AccessDenied when the get is refused (401/403)."""
    try:
        return read()
    except ApiException as exc:
        if exc.status == 404:
            return None
        if exc.status not in (401, 403):
            raise
        try:
            message = str(json.loads(exc.body or "{}").get("message") or exc.reason)
        except (ValueError, AttributeError):
            message = str(exc.reason)
        raise AccessDenied(int(exc.status), "get", resource, namespace, name, message) from exc


@dataclass(frozen=True)
class SecretData:
    """A Secret's type and decoded data; the values never appear in a repr (nor, by our rules, anywhere else).

    ``annotations`` carry the owner's opt-ins (e.g. the brokers MQTT credentials may be sent to).
    """

    type: str
    data: Mapping[str, bytes] = field(repr=False)
    annotations: Mapping[str, str] = field(default_factory=dict)


async def get_secret(api: client.ApiClient, namespace: str, name: str) -> SecretData | None:
    """The Secret ``name`` (type and base64-decoded data), or None when it does not exist; AccessDenied on 401/403."""

    def call() -> SecretData | None:
        read = client.CoreV1Api(api).read_namespaced_secret
        secret = _get_or_none(lambda: read(name, namespace), "secrets", namespace, name)
        if secret is None:
            return None
        data = {key: base64.b64decode(value) for key, value in (secret.data or {}).items()}
        annotations = dict(secret.metadata.annotations or {}) if secret.metadata else {}
        return SecretData(type=str(secret.type or "Opaque"), data=data, annotations=annotations)

    return await asyncio.to_thread(call)


@dataclass(frozen=True)
class ConfigMapData:
    """A ConfigMap's ``binaryData`` (decoded) and the keys of its text ``data``."""

    binary: Mapping[str, bytes]
    text_keys: tuple[str, ...]
    #: The text ``data`` itself (a PEM public key, for signature verification).
    text: Mapping[str, str] = field(default_factory=dict)


async def get_config_map(api: client.ApiClient, namespace: str, name: str) -> ConfigMapData | None:
    """The ConfigMap ``name``, or None when it does not exist; AccessDenied on 401/403."""

    def call() -> ConfigMapData | None:
        read = client.CoreV1Api(api).read_namespaced_config_map
        config_map = _get_or_none(lambda: read(name, namespace), "configmaps", namespace, name)
        if config_map is None:
            return None
        binary = {key: base64.b64decode(value) for key, value in (config_map.binary_data or {}).items()}
        text = dict(config_map.data or {})
        return ConfigMapData(binary=binary, text_keys=tuple(sorted(text)), text=text)

    return await asyncio.to_thread(call)


async def get_owner_references(
    api: client.ApiClient, kind: str, namespace: str, name: str
) -> list[dict[str, Any]] | None:
    """The ownerReferences of the ConfigMap, Service or Deployment ``name`` (camelCase keys), None when it does not
    exist: what the Dataflow controller looks at before it applies a child over an existing object."""
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    reads: dict[str, Callable[[str, str], Any]] = {
        "ConfigMap": core.read_namespaced_config_map,
        "Service": core.read_namespaced_service,
        "Deployment": apps.read_namespaced_deployment,
    }
    read = reads[kind]

    def call() -> list[dict[str, Any]] | None:
        found = _get_or_none(lambda: read(name, namespace), kind.lower() + "s", namespace, name)
        if found is None:
            return None
        references = found.metadata.owner_references or []
        return [cast(dict[str, Any], api.sanitize_for_serialization(r)) for r in references]  # type: ignore[no-untyped-call]

    return await asyncio.to_thread(call)
