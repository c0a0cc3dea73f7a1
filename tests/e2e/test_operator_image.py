"""The image runs the operator as the chart's pod would, and reconciles with nothing but the pod's credentials.

`helm install` puts the chart on the real API server; the image then runs `wasmflow operator` with the installed
Deployment's arguments and environment, on a read-only root as UID 65532, with the chart's emptyDirs as tmpfs and the
ServiceAccount token, CA and namespace mounted where the kubelet mounts them (in-cluster configuration, as in a
pod). A WasmModule from a ConfigMap becomes Ready and a Dataflow gets its worker Deployment with the chart's image.
"""

from __future__ import annotations

import base64
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api, CustomObjectsApi, V1ConfigMap, V1ObjectMeta

from tests.chart_env import (
    Helm,
    Release,
    container_env,
    deployed_operator,
    install,
    service_account_token,
    uninstall,
)
from tests.components.engine.wat import operator as wat_operator
from tests.conftest import fresh_namespace
from tests.e2e.conftest import Image
from tests.integration.conftest import wait_until
from tests.services import KubeEnv
from wasmflow.oci.digests import sha256_digest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

GROUP, VERSION = "wasmflow.io", "v1alpha1"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def watched(kube_client: ApiClient) -> Iterator[str]:
    with fresh_namespace(kube_client, "w") as name:
        yield name


@pytest.fixture
def release(helm: Helm, kube: KubeEnv, namespace: str, watched: str) -> Iterator[Release]:
    install(helm, kube, "wf", namespace, "watch.allNamespaces=false", f"watch.namespaces={{{watched}}}")
    try:
        yield Release("wf", namespace, watched, service_account="wf-wasmflow", fullname="wf-wasmflow")
    finally:
        uninstall(helm, kube, "wf", namespace)


def _mounted_service_account(kube: KubeEnv, kube_client: ApiClient, release: Release, directory: Path) -> Path:
    """What the kubelet projects into the pod: token, ca.crt, namespace (readable by the pod's user)."""
    directory.mkdir(parents=True)
    (directory / "token").write_text(service_account_token(kube_client, release), encoding="utf-8")
    (directory / "ca.crt").write_bytes(kube.ca_file.read_bytes())
    (directory / "namespace").write_text(release.namespace, encoding="utf-8")
    for path in [directory, *directory.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return directory


@pytest.fixture
def operator_pod(
    image: Image, kube: KubeEnv, kube_client: ApiClient, release: Release, tmp_path: Path
) -> Iterator[dict[str, Any]]:
    """The operator container of the installed Deployment, run from the image; its liveness and metrics ports."""
    deployment = deployed_operator(kube_client, release)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    liveness, metrics = _free_port(), _free_port()
    args = [a for a in container["args"] if not a.startswith("--liveness=")]
    args.append(f"--liveness=http://127.0.0.1:{liveness}/healthz")
    env = {**container_env(deployment), "WASMFLOW_METRICS_PORT": str(metrics)}
    host, port = kube.server.removeprefix("https://").rsplit(":", 1)
    env |= {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}
    emptydirs = [m["mountPath"] for m in container["volumeMounts"] if m["mountPath"] != "/tmp"]
    service_account = _mounted_service_account(kube, kube_client, release, tmp_path / "pod" / "serviceaccount")
    command = image.command(*args, volumes=[(service_account, SERVICE_ACCOUNT_DIR)], tmpfs=emptydirs, env=env)
    log = (tmp_path / "operator.log").open("w+", encoding="utf-8")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=False)
    try:
        wait_until(
            lambda: _answers(f"http://127.0.0.1:{liveness}/healthz") or process.poll() is not None,
            what="the operator's /healthz",
            timeout=120,
        )
        assert process.poll() is None, _read(log)
        yield {"env": env, "metrics": metrics, "log": log, "process": process}
    finally:
        process.terminate()
        process.wait(60)
        log.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _read(log: Any) -> str:
    log.flush()
    log.seek(0)
    text: str = log.read()
    return text


def _ready(kube_client: ApiClient, namespace: str, name: str) -> bool:
    body = CustomObjectsApi(kube_client).get_namespaced_custom_object(GROUP, VERSION, namespace, "wasmmodules", name)
    assert isinstance(body, dict)
    status = body.get("status") or {}
    ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)
    return bool(
        ready and ready["status"] == "True" and status.get("observedGeneration") == body["metadata"]["generation"]
    )


def test_the_operator_image_reconciles_with_the_pods_service_account(
    kube_client: ApiClient, release: Release, operator_pod: dict[str, Any]
) -> None:
    ns = release.watched
    component = wat_operator("map")
    CoreV1Api(kube_client).create_namespaced_config_map(
        ns,
        V1ConfigMap(
            metadata=V1ObjectMeta(name="to-celsius-wasm"),
            binary_data={"module.wasm": base64.b64encode(component).decode()},
        ),
    )
    objects = CustomObjectsApi(kube_client)
    module = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "WasmModule",
        "metadata": {"name": "to-celsius"},
        "spec": {"source": {"configMapRef": {"name": "to-celsius-wasm"}}, "operator": "map"},
    }
    objects.create_namespaced_custom_object(GROUP, VERSION, ns, "wasmmodules", module)

    wait_until(lambda: _ready(kube_client, ns, "to-celsius"), what="WasmModule Ready", timeout=120)
    body = objects.get_namespaced_custom_object(GROUP, VERSION, ns, "wasmmodules", "to-celsius")
    assert isinstance(body, dict)
    assert body["status"]["artifact"]["digest"] == sha256_digest(component)

    dataflow = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Dataflow",
        "metadata": {"name": "plant"},
        "spec": {
            "endpoints": {"plant": {"mqtt": {"url": "mqtt://mosquitto.plant:1883"}}},
            "nodes": [
                {"name": "in", "type": "source", "endpoint": "plant", "topic": "sensors/#"},
                {"name": "to-celsius", "type": "map", "module": "to-celsius"},
                {"name": "out", "type": "sink", "endpoint": "plant", "topic": "celsius"},
            ],
            "edges": [{"from": "in", "to": "to-celsius"}, {"from": "to-celsius", "to": "out"}],
        },
    }
    objects.create_namespaced_custom_object(GROUP, VERSION, ns, "dataflows", dataflow)
    deployment = wait_until(
        lambda: next(iter(AppsV1Api(kube_client).list_namespaced_deployment(ns).items), None),
        what="the worker Deployment",
        timeout=120,
    )
    assert deployment.spec.template.spec.containers[0].image == operator_pod["env"]["WASMFLOW_WORKER_IMAGE"]
    metrics = httpx.get(f"http://127.0.0.1:{operator_pod['metrics']}/metrics", timeout=5).text
    assert "wasmflow_" in metrics
    log = _read(operator_pod["log"])
    assert "Forbidden" not in log and "forbidden" not in log, log[-4000:]
