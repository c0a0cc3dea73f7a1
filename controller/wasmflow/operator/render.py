"""Render a Dataflow's children as plain manifests: pure functions, golden-file tested.

ConfigMap (the worker config: graph + modules pinned by digest), Deployment (the workers, restricted security
context, read-only root, probes, a config-hash annotation so any change rolls them) and Service (metrics). All are
owned by the Dataflow, so deleting it deletes them.
"""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass
from typing import Any

import yaml

from wasmflow.api.dataflow import Dataflow
from wasmflow.api.wasmmodule import Limits, WasmModule
from wasmflow.api.workerconfig import (
    CACHE_DIR,
    CONFIG_DIR,
    CONFIG_KEY,
    REGISTRY_CA_FILE,
    REGISTRY_CA_KEY,
    SECRETS_DIR,
    EndpointFiles,
    PinnedGraph,
    PinnedModule,
    WorkerConfig,
)
from wasmflow.operator.config import OperatorConfig

HTTP_PORT = 8080
#: Where ConfigMap-held modules (``spec.source.configMapRef``) are mounted in the worker, one folder per module.
MODULES_DIR = "/var/run/wasmflow/modules"
#: Mounted secrets are readable by the worker's group only (files are root-owned, fsGroup gives the group).
SECRET_MODE = 0o440
CONFIG_HASH = "wasmflow.io/config-hash"
MANAGED_BY = "wasmflow"


@dataclass(frozen=True)
class Children:
    config_map: dict[str, Any]
    deployment: dict[str, Any]
    service: dict[str, Any]
    config_hash: str


def used_modules(dataflow: Dataflow) -> list[str]:
    """The WasmModules the graph runs, each once, in a stable order."""
    return sorted({n.module for n in dataflow.spec.nodes if n.module})


def child_name(dataflow: str) -> str:
    return f"{dataflow}-worker"[:63].rstrip("-")


def labels(dataflow: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "wasmflow-worker",
        "app.kubernetes.io/instance": dataflow,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "wasmflow.io/dataflow": dataflow,
    }


def owner_reference(dataflow: Dataflow) -> dict[str, Any]:
    return {
        "apiVersion": dataflow.api_version,
        "kind": "Dataflow",
        "name": dataflow.metadata.name,
        "uid": dataflow.metadata.uid or "",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _trusting(graph: PinnedGraph, ca_file: str | None, artifact_insecure: bool, insecure: bool) -> PinnedGraph:
    """The resolved graph with the registry CA named on every pull that uses TLS."""
    if ca_file is None:
        return graph
    modules = {
        name: module.model_copy(update={"ca_file": None if insecure else ca_file})
        for name, module in graph.modules.items()
    }
    artifact_ca = ca_file if graph.artifact and not artifact_insecure else None
    return graph.model_copy(update={"modules": modules, "ca_file": artifact_ca})


def default_shared_group(dataflow: Dataflow) -> str:
    """The shared-subscription group of a Dataflow whose endpoint names none: one per Dataflow (namespace and name,
    hashed: group names are short and broker-wide, and two namespaces may hold Dataflows of one name).

    Why a group by default: worker client ids (and so their broker sessions) are named after pods, which a Deployment
    replaces with new names. Without a group, a replaced pod's session keeps its plain subscription, and QoS 1
    messages queue for a session nobody resumes while the new pod's session starts empty (a rollout loses them);
    replicas each receive every message. With a group the replicas split the messages and a draining worker
    unsubscribes before it disconnects, so a rollout hands over with no loss. The cost: MQTT v5 sends no retained
    messages on a shared subscription (set ``sharedSubscriptionGroup`` to choose a group; there is no opting out).
    """
    key = f"{dataflow.metadata.namespace or 'default'}/{dataflow.metadata.name}".encode()
    return f"wasmflow-{hashlib.sha256(key).hexdigest()[:16]}"


def _with_default_groups(dataflow: Dataflow) -> Dataflow:
    group = default_shared_group(dataflow)
    endpoints = {
        name: endpoint
        if endpoint.mqtt.shared_subscription_group
        else endpoint.model_copy(update={"mqtt": endpoint.mqtt.model_copy(update={"shared_subscription_group": group})})
        for name, endpoint in dataflow.spec.endpoints.items()
    }
    return dataflow.model_copy(update={"spec": dataflow.spec.model_copy(update={"endpoints": endpoints})})


def worker_config(
    dataflow: Dataflow,
    modules: dict[str, WasmModule],
    digests: dict[str, str],
    *,
    registry_ca: bool = False,
    graph: PinnedGraph | None = None,
) -> WorkerConfig:
    """The worker's config: every module pinned to the digest its WasmModule (or the graph's resolution) gave.

    With ``registry_ca`` the ConfigMap carries the controller's registry CA, and every TLS pull names it.
    """
    ca_file = REGISTRY_CA_FILE if registry_ca else None
    dataflow = _with_default_groups(dataflow)
    pinned = {}
    for name in used_modules(dataflow):
        module = modules[name]
        oci = module.spec.source.oci
        local = module.spec.source.config_map_ref
        secret = oci.secret_ref.name if oci and oci.secret_ref else None
        pinned[name] = PinnedModule(
            reference=oci.reference if oci else "",
            digest=digests[name],
            insecure=bool(oci and oci.insecure),
            pull_secret_file=f"{SECRETS_DIR}/registry/{secret}/.dockerconfigjson" if secret else None,
            ca_file=ca_file if oci and not oci.insecure else None,
            path=f"{MODULES_DIR}/{name}/{local.key}" if local else None,
            operator=module.spec.operator,
            capabilities=list(module.spec.capabilities),
            limits=module.spec.limits,
            strict=module.spec.strict,
        )
    files = {}
    for name, endpoint in sorted(dataflow.spec.endpoints.items()):
        mqtt = endpoint.mqtt
        base = f"{SECRETS_DIR}/endpoints/{name}"
        files[name] = EndpointFiles(
            username_file=f"{base}/credentials/username" if mqtt.credentials_secret_ref else None,
            password_file=f"{base}/credentials/password" if mqtt.credentials_secret_ref else None,
            ca_file=f"{base}/ca/{mqtt.tls.ca_secret_ref.key}" if mqtt.tls and mqtt.tls.ca_secret_ref else None,
            cert_file=f"{base}/client/tls.crt" if mqtt.tls and mqtt.tls.client_cert_secret_ref else None,
            key_file=f"{base}/client/tls.key" if mqtt.tls and mqtt.tls.client_cert_secret_ref else None,
        )
    return WorkerConfig(
        namespace=dataflow.metadata.namespace or "default",
        dataflow=dataflow.metadata.name,
        spec=dataflow.spec,
        modules=pinned,
        graph=_graph_pins(dataflow, graph, ca_file),
        endpoint_files=files,
        http_port=HTTP_PORT,
        cache_dir=CACHE_DIR,
    )


def _graph_pins(dataflow: Dataflow, graph: PinnedGraph | None, ca_file: str | None) -> PinnedGraph | None:
    spec = dataflow.spec.graph
    if spec is None or graph is None:
        return None
    return _trusting(graph, ca_file, bool(spec.artifact and spec.artifact.insecure), spec.insecure)


def _volumes(dataflow: Dataflow, modules: dict[str, WasmModule]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": child_name(dataflow.metadata.name)}},
        {"name": "tmp", "emptyDir": {}},
        {"name": "cache", "emptyDir": {"sizeLimit": "1Gi"}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir: the root file system is read-only
        {"name": "cache", "mountPath": CACHE_DIR},
    ]
    for index, name in enumerate(used_modules(dataflow)):
        local = modules[name].spec.source.config_map_ref
        if local:  # air-gapped: the component is a binaryData key, mounted as a file (its digest is still checked)
            volume = f"module-{index}"
            volumes.append(
                {"name": volume, "configMap": {"name": local.name, "items": [{"key": local.key, "path": local.key}]}}
            )
            mounts.append({"name": volume, "mountPath": f"{MODULES_DIR}/{name}", "readOnly": True})
    secrets: set[str] = set()
    for name in used_modules(dataflow):
        oci = modules[name].spec.source.oci
        if oci and oci.secret_ref and oci.secret_ref.name not in secrets:
            secrets.add(oci.secret_ref.name)
            volume = f"registry-{len(secrets)}"
            volumes.append(
                {
                    "name": volume,
                    "secret": {
                        "secretName": oci.secret_ref.name,
                        "items": [{"key": ".dockerconfigjson", "path": ".dockerconfigjson"}],
                        "defaultMode": SECRET_MODE,
                    },
                }
            )
            mounts.append(
                {"name": volume, "mountPath": f"{SECRETS_DIR}/registry/{oci.secret_ref.name}", "readOnly": True}
            )
    for index, (name, endpoint) in enumerate(sorted(dataflow.spec.endpoints.items())):
        mqtt = endpoint.mqtt
        base = f"{SECRETS_DIR}/endpoints/{name}"
        refs = [
            ("credentials", mqtt.credentials_secret_ref.name if mqtt.credentials_secret_ref else None),
            ("ca", mqtt.tls.ca_secret_ref.name if mqtt.tls and mqtt.tls.ca_secret_ref else None),
            ("client", mqtt.tls.client_cert_secret_ref.name if mqtt.tls and mqtt.tls.client_cert_secret_ref else None),
        ]
        for kind, secret in refs:
            if secret:
                volume = f"ep{index}-{kind}"
                volumes.append({"name": volume, "secret": {"secretName": secret, "defaultMode": SECRET_MODE}})
                mounts.append({"name": volume, "mountPath": f"{base}/{kind}", "readOnly": True})
    return volumes, mounts


def probe_timing(modules: dict[str, WasmModule], period: int) -> dict[str, int]:
    """Probe timing that a slow message cannot fail: operator calls run on the worker's event loop, so /healthz may
    wait for the longest ``timeoutPerMessage`` (at most 30 s, by the API) before it answers. The probe waits that
    long plus a second, and never probes more often than it waits."""
    longest = max((m.spec.limits.timeout_seconds for m in modules.values()), default=Limits().timeout_seconds)
    timeout = math.ceil(longest) + 1
    return {"timeoutSeconds": timeout, "periodSeconds": max(period, timeout)}


def render(
    dataflow: Dataflow,
    modules: dict[str, WasmModule],
    digests: dict[str, str],
    config: OperatorConfig,
    *,
    registry_ca: bytes | None = None,
    graph: PinnedGraph | None = None,
) -> Children:
    """The ConfigMap, Deployment and Service of ``dataflow`` (modules and digests by WasmModule name).

    ``registry_ca`` is the content of ``config.registry_ca_file`` (read by the caller: rendering does no I/O). It is
    copied into the ConfigMap because the controller's Secret cannot be mounted in the Dataflow's namespace, and
    it is public. ``graph`` is what the reconcile resolved of ``spec.graph``.
    """
    name = child_name(dataflow.metadata.name)
    namespace = dataflow.metadata.namespace or "default"
    pinned = worker_config(dataflow, modules, digests, registry_ca=registry_ca is not None, graph=graph)
    body = pinned.model_dump_json(by_alias=True, exclude_none=True, indent=2)
    digest = hashlib.sha256(body.encode())
    if registry_ca is not None:
        digest.update(b"\0" + registry_ca)  # a rotated CA rolls the workers
    config_hash = "sha256:" + digest.hexdigest()
    volumes, mounts = _volumes(dataflow, modules)
    worker = dataflow.spec.worker
    resources = worker.resources.model_dump(by_alias=True, exclude_none=True)
    resources = {k: v for k, v in resources.items() if v} or {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"memory": "512Mi"},
    }
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,  # the worker never talks to the Kubernetes API
        "enableServiceLinks": False,  # no *_SERVICE_HOST variables: the worker's env is exactly the one below
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "fsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "worker",
                "image": config.worker_image,
                "imagePullPolicy": config.worker_image_pull_policy,
                "args": ["worker", "--config", f"{CONFIG_DIR}/{CONFIG_KEY}"],
                "ports": [{"name": "http", "containerPort": HTTP_PORT}],
                "env": [{"name": "PYTHONUNBUFFERED", "value": "1"}],
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, **probe_timing(modules, 10)},
                "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, **probe_timing(modules, 5)},
                "resources": resources,
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": mounts,
            }
        ],
        "volumes": volumes,
        "terminationGracePeriodSeconds": 30,
    }
    if config.worker_image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": s} for s in config.worker_image_pull_secrets]
    if worker.node_selector:
        pod_spec["nodeSelector"] = dict(worker.node_selector)
    if worker.tolerations:
        pod_spec["tolerations"] = [t.model_dump(by_alias=True, exclude_none=True) for t in worker.tolerations]
    config_map: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels(dataflow.metadata.name),
            "ownerReferences": [owner_reference(dataflow)],
        },
        "data": {CONFIG_KEY: body},
    }
    if registry_ca is not None:
        try:
            config_map["data"][REGISTRY_CA_KEY] = registry_ca.decode("utf-8")  # PEM
        except UnicodeDecodeError:
            config_map["binaryData"] = {REGISTRY_CA_KEY: base64.b64encode(registry_ca).decode("ascii")}  # DER
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels(dataflow.metadata.name),
            "annotations": {CONFIG_HASH: config_hash},
            "ownerReferences": [owner_reference(dataflow)],
        },
        "spec": {
            "replicas": dataflow.spec.replicas,
            "selector": {"matchLabels": {"wasmflow.io/dataflow": dataflow.metadata.name}},
            "template": {
                "metadata": {
                    "labels": labels(dataflow.metadata.name),
                    "annotations": {
                        CONFIG_HASH: config_hash,
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(HTTP_PORT),
                    },
                },
                "spec": pod_spec,
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels(dataflow.metadata.name),
            "ownerReferences": [owner_reference(dataflow)],
        },
        "spec": {
            "selector": {"wasmflow.io/dataflow": dataflow.metadata.name},
            "ports": [{"name": "http", "port": HTTP_PORT, "targetPort": "http"}],
        },
    }
    return Children(config_map=config_map, deployment=deployment, service=service, config_hash=config_hash)


class _ReviewDumper(yaml.SafeDumper):
    """YAML for people: no anchors, and multi-line strings (the worker config) as literal blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_ReviewDumper.add_representer(str, _text)


def render_yaml(children: Children) -> str:
    """The three children as one YAML stream (ConfigMap, Service, Deployment): the golden files' form."""
    documents = (children.config_map, children.service, children.deployment)
    return "---\n".join(yaml.dump(d, Dumper=_ReviewDumper, sort_keys=True, width=120) for d in documents)
