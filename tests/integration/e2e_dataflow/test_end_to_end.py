"""Acceptance of the Dataflow controller and the worker, end to end on the real services.

Operators are pushed with ``wasmflow push`` to the real registry, WasmModules and a Dataflow are applied with
``kubectl apply`` while the controller runs, and the worker Deployment the controller writes is run as a process
with exactly its ConfigMap, its volumes and its env (``pod.WorkerPod``; there is no kubelet here). Messages go
through the real mosquitto. Errors are read the way a user reads them: ``kubectl wait`` and ``kubectl get``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import queue
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import paho.mqtt.client as mqtt
import pytest
import yaml
from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api, CustomObjectsApi
from paho.mqtt.enums import CallbackAPIVersion

from tests.components.build import cache_dir
from tests.integration.conftest import wait_until
from tests.integration.e2e_dataflow.pod import WASMFLOW, WorkerPod
from tests.integration.operator.test_aio_dataflow import GRAPH_MODULES
from tests.integration.worker.test_aio_worker import GRAPH, MODULES
from tests.registry_env import TlsRegistry
from tests.services import HACK, BrokerEnv, KubeEnv, Registry
from wasmflow.oci import Access, push_component
from wasmflow.operator.config import OperatorConfig

GROUP, VERSION = "wasmflow.io", "v1alpha1"
DATAFLOW = "temperatures"
CONFIG_HASH = "wasmflow.io/config-hash"


@pytest.fixture(scope="session")
def kubectl_path() -> str:
    """The kubectl built with the API server (hack/build-kube.sh, cached per user)."""
    result = subprocess.run(
        [str(HACK / "build-kube.sh"), "--print-path", "kubectl"], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


@dataclass(frozen=True)
class Kubectl:
    path: str
    kubeconfig: Path
    namespace: str

    def __call__(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [self.path, "--kubeconfig", str(self.kubeconfig), "--namespace", self.namespace, *args]
        result = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def apply(self, *documents: dict[str, Any]) -> None:
        self("apply", "-f", "-", stdin=yaml.safe_dump_all(documents))


@pytest.fixture
def kubectl(kubectl_path: str, kube: KubeEnv, namespace: str) -> Kubectl:
    return Kubectl(kubectl_path, kube.kubeconfig, namespace)


def push(path: Path, reference: str) -> str:
    """``wasmflow push`` as an author runs it; the manifest digest it prints."""
    result = subprocess.run(
        [WASMFLOW, "push", str(path), reference, "--insecure"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def wasm_module(name: str, reference: str, operator: str, digest: str | None = None) -> dict[str, Any]:
    oci: dict[str, Any] = {"reference": reference, "insecure": True}
    if digest:
        oci["digest"] = digest
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "WasmModule",
        "metadata": {"name": name},
        "spec": {"source": {"oci": oci}, "operator": operator, "limits": {"memory": "64Mi", "timeoutPerMessage": "1s"}},
    }


def dataflow(broker: BrokerEnv, prefix: str, *, high: str = "125") -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Dataflow",
        "metadata": {"name": DATAFLOW},
        "spec": {
            "endpoints": {"broker": {"mqtt": {"url": broker.url, "qos": 1, "sharedSubscriptionGroup": prefix}}},
            "nodes": [
                {"name": "sensors", "type": "source", "endpoint": "broker", "topic": f"{prefix}/sensors/+"},
                {"name": "to-celsius", "type": "map", "module": "f2c", "configuration": {"precision": "1"}},
                {"name": "in-range", "type": "filter", "module": "range", "configuration": {"min": "-40", "max": high}},
                {"name": "out", "type": "sink", "endpoint": "broker", "topic": f"{prefix}/celsius"},
            ],
            "edges": [
                {"from": "sensors", "to": "to-celsius"},
                {"from": "to-celsius", "to": "in-range"},
                {"from": "in-range", "to": "out"},
            ],
        },
    }


@dataclass(frozen=True)
class Pushed:
    """The two operators, in the registry and as WasmModules in the test's namespace."""

    prefix: str
    component_digests: dict[str, str]
    registry: Registry


@pytest.fixture
def modules(
    controller: OperatorConfig,
    kubectl: Kubectl,
    registry: Registry,
    component: Callable[[str], Path],
    kube_client: ApiClient,
) -> Pushed:
    """f2c (map) and range (filter) pushed with ``wasmflow push``, applied with kubectl, and Ready."""
    prefix = f"e2e{uuid.uuid4().hex[:8]}"
    documents, digests = [], {}
    for name, built, operator in (("f2c", "f2c_map", "map"), ("range", "range_filter", "filter")):
        path = component(built)
        reference = f"{registry.host}/{prefix}/{name}:1.0.0"
        manifest_digest = push(path, reference)
        digests[name] = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
        # One pinned to what `wasmflow push` printed, one following its tag: both ways a user writes it.
        documents.append(wasm_module(name, reference, operator, manifest_digest if name == "range" else None))
    kubectl.apply(*documents)
    kubectl("wait", "--for=condition=Ready", "wasmmodules/f2c", "wasmmodules/range", "--timeout=180s")
    return Pushed(prefix, digests, registry)


def get_dataflow(kube_client: ApiClient, namespace: str) -> dict[str, Any]:
    result = CustomObjectsApi(kube_client).get_namespaced_custom_object(
        GROUP, VERSION, namespace, "dataflows", DATAFLOW
    )
    return cast(dict[str, Any], result)


def worker_deployment(kube_client: ApiClient, namespace: str) -> dict[str, Any] | None:
    items = AppsV1Api(kube_client).list_namespaced_deployment(namespace).items
    if not items:
        return None
    return cast(dict[str, Any], kube_client.sanitize_for_serialization(items[0]))  # type: ignore[no-untyped-call]


def applied(
    kube_client: ApiClient, namespace: str, after: str | None = None, *, timeout: float = 90.0
) -> dict[str, Any]:
    """The worker Deployment once the Dataflow's status reports its config (a new one, if ``after`` is given)."""

    def check() -> dict[str, Any] | None:
        deployment = worker_deployment(kube_client, namespace)
        status = get_dataflow(kube_client, namespace).get("status") or {}
        if deployment is None or status.get("configHash") in (None, after):
            return None
        template_hash = deployment["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH]
        return deployment if template_hash == status["configHash"] else None

    result: dict[str, Any] = wait_until(check, what="the worker Deployment of the Dataflow's config", timeout=timeout)
    return result


class Subscriber:
    """A client on the output topic, subscribed before anything is published."""

    def __init__(self, broker: BrokerEnv, topic: str) -> None:
        self.received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        subscribed: queue.Queue[bool] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = lambda _c, _u, message: self.received.put(message)
        self.client.on_subscribe = lambda *_: subscribed.put(True)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe(topic, qos=1)
        subscribed.get(timeout=10)

    def take(self, count: int) -> list[Any]:
        return [json.loads(self.received.get(timeout=30).payload) for _ in range(count)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def publish(broker: BrokerEnv, prefix: str, readings: list[tuple[str, float]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        for sensor, fahrenheit in readings:
            body = json.dumps({"sensor": sensor, "value": fahrenheit})
            client.publish(f"{prefix}/sensors/{sensor}", body, qos=1).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


@pytest.fixture
def pods(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], WorkerPod]]:
    started: list[WorkerPod] = []

    def run(deployment: dict[str, Any]) -> WorkerPod:
        pod = WorkerPod(deployment, tmp_path / f"pod-{len(started)}")
        started.append(pod)
        return pod

    yield run
    for pod in started:
        pod.kill()


def start_pod(
    kube_client: ApiClient, deployment: dict[str, Any], pods: Callable[[dict[str, Any]], WorkerPod]
) -> WorkerPod:
    pod = pods(deployment)
    pod.mount(kube_client)
    pod.start()
    wait_until(pod.ready, what="the worker's readiness probe", timeout=180)
    return pod


def test_messages_published_on_the_input_topic_arrive_transformed_on_the_output(
    modules: Pushed,
    kubectl: Kubectl,
    kube_client: ApiClient,
    namespace: str,
    mqtt_broker: BrokerEnv,
    pods: Callable[[dict[str, Any]], WorkerPod],
) -> None:
    kubectl.apply(dataflow(mqtt_broker, modules.prefix))
    deployment = applied(kube_client, namespace)
    status = get_dataflow(kube_client, namespace)["status"]
    assert {m["name"]: m["digest"] for m in status["modules"]} == modules.component_digests
    config_map = CoreV1Api(kube_client).read_namespaced_config_map(f"{DATAFLOW}-worker", namespace)
    assert config_map.data is not None
    pinned = json.loads(config_map.data["config.json"])["modules"]
    assert {name: module["digest"] for name, module in pinned.items()} == modules.component_digests
    CoreV1Api(kube_client).read_namespaced_service(f"{DATAFLOW}-worker", namespace)

    pod = start_pod(kube_client, deployment, pods)
    output = Subscriber(mqtt_broker, f"{modules.prefix}/celsius")
    try:
        publish(mqtt_broker, modules.prefix, [("a", 212), ("b", 9999), ("c", 32)])
        assert output.take(2) == [
            {"sensor": "a", "value": 100.0, "unit": "C"},
            {"sensor": "c", "value": 0.0, "unit": "C"},
        ]
    finally:
        output.close()
    assert pod.terminate() == 0


def test_editing_the_dataflow_rolls_a_new_config_that_the_workers_follow(
    modules: Pushed,
    kubectl: Kubectl,
    kube_client: ApiClient,
    namespace: str,
    mqtt_broker: BrokerEnv,
    pods: Callable[[dict[str, Any]], WorkerPod],
) -> None:
    kubectl.apply(dataflow(mqtt_broker, modules.prefix))
    first = applied(kube_client, namespace)
    first_hash = first["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH]

    kubectl.apply(dataflow(mqtt_broker, modules.prefix, high="50"))  # 100 °C is out of range now
    second = applied(kube_client, namespace, after=first_hash)
    assert second["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH] != first_hash
    assert second["metadata"]["generation"] > first["metadata"]["generation"]

    pod = start_pod(kube_client, second, pods)  # a pod of the new ReplicaSet mounts the new ConfigMap
    output = Subscriber(mqtt_broker, f"{modules.prefix}/celsius")
    try:
        publish(mqtt_broker, modules.prefix, [("a", 212), ("c", 32)])
        assert output.take(1) == [{"sensor": "c", "value": 0.0, "unit": "C"}]
        assert output.received.empty()
    finally:
        output.close()
    assert pod.terminate() == 0


def test_a_module_that_changes_digest_rolls_the_workers_of_the_dataflows_using_it(
    modules: Pushed,
    kubectl: Kubectl,
    kube_client: ApiClient,
    namespace: str,
    mqtt_broker: BrokerEnv,
    component: Callable[[str], Path],
) -> None:
    kubectl.apply(dataflow(mqtt_broker, modules.prefix))
    first = applied(kube_client, namespace)["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH]
    identity = component("identity_map")
    reference = f"{modules.registry.host}/{modules.prefix}/identity:1.0.0"
    push(identity, reference)

    kubectl.apply(wasm_module("f2c", reference, "map"))  # the module now resolves to other bytes

    applied(kube_client, namespace, after=first)
    status = get_dataflow(kube_client, namespace)["status"]
    digests = {m["name"]: m["digest"] for m in status["modules"]}
    assert digests["f2c"] == "sha256:" + hashlib.sha256(identity.read_bytes()).hexdigest()
    assert digests["range"] == modules.component_digests["range"]


def test_deleting_a_module_stalls_the_dataflows_using_it(
    modules: Pushed, kubectl: Kubectl, kube_client: ApiClient, namespace: str, mqtt_broker: BrokerEnv
) -> None:
    kubectl.apply(dataflow(mqtt_broker, modules.prefix))
    applied(kube_client, namespace)

    kubectl("delete", "wasmmodule", "range", "--wait=true", "--timeout=60s")

    row = stalled_row(kubectl)
    assert f"WasmModule range (used by node in-range) does not exist in namespace {namespace}" in row
    assert worker_deployment(kube_client, namespace) is not None  # the workers of the last good config stay


def stalled_row(kubectl: Kubectl) -> str:
    """Wait as kstatus users do, then read what ``kubectl get dataflows`` shows."""
    kubectl("wait", "--for=condition=Stalled", f"dataflows/{DATAFLOW}", "--timeout=60s")
    table = kubectl("get", "dataflows").stdout.splitlines()
    assert table[0].split()[:5] == ["NAME", "READY", "WORKERS", "DESIRED", "AGE"]
    assert table[0].split()[5] == "STATUS"
    (row,) = table[1:]
    assert row.split()[:2] == [DATAFLOW, "False"]
    return row


def test_a_graph_error_is_stalled_and_kubectl_get_shows_where(
    controller: OperatorConfig, kubectl: Kubectl, mqtt_broker: BrokerEnv
) -> None:
    doc = dataflow(mqtt_broker, "cycle")
    doc["spec"]["edges"].append({"from": "in-range", "to": "to-celsius"})
    kubectl.apply(doc)
    row = stalled_row(kubectl)
    assert "spec.nodes[1] (to-celsius): is on a cycle: to-celsius -> in-range -> to-celsius" in row


def test_a_missing_module_is_stalled_until_it_is_created(
    controller: OperatorConfig, kubectl: Kubectl, kube_client: ApiClient, namespace: str, mqtt_broker: BrokerEnv
) -> None:
    kubectl.apply(dataflow(mqtt_broker, "missing"))
    row = stalled_row(kubectl)
    assert f"WasmModule f2c (used by node to-celsius) does not exist in namespace {namespace}" in row
    assert "create it, or fix the node's module" in row

    kubectl.apply(
        wasm_module("f2c", "registry.invalid/ops/f2c:1.0.0", "map"),
        wasm_module("range", "registry.invalid/ops/range:1.0.0", "filter"),
    )

    def ready_after_the_modules_appeared() -> dict[str, Any] | None:
        conditions = (get_dataflow(kube_client, namespace).get("status") or {}).get("conditions", [])
        ready = next(c for c in conditions if c["type"] == "Ready")
        return None if ready["reason"] == "ModuleNotFound" else ready

    # What the modules become next (pulling, failing) is their controller's news; it is no longer "missing".
    ready = wait_until(ready_after_the_modules_appeared, what="the Dataflow to see its modules without an edit")
    assert "does not exist" not in ready["message"]


def test_a_module_of_the_wrong_kind_is_stalled_naming_the_node(
    controller: OperatorConfig, kubectl: Kubectl, mqtt_broker: BrokerEnv
) -> None:
    kubectl.apply(
        wasm_module("f2c", "registry.invalid/ops/f2c:1.0.0", "map"),
        wasm_module("range", "registry.invalid/ops/range:1.0.0", "map"),
    )
    kubectl.apply(dataflow(mqtt_broker, "kinds"))
    row = stalled_row(kubectl)
    assert "spec.nodes[2] (in-range): is a filter node, but WasmModule range is a map operator" in row


class TestWorkersOfAControllerWithTheRegistryCaSetting:
    """The controller started with WASMFLOW_REGISTRY_CA_FILE naming the CA of the TLS test registry (a private CA
    that neither the controller's nor the worker's system trust store knows)."""

    @pytest.fixture
    def controller_config(self, controller_config: OperatorConfig, registry_tls: TlsRegistry) -> OperatorConfig:
        return dataclasses.replace(controller_config, registry_ca_file=registry_tls.ca_file)

    def test_a_worker_pulls_its_modules_from_the_private_ca_registry_and_becomes_ready(
        self,
        controller: OperatorConfig,
        kubectl: Kubectl,
        kube_client: ApiClient,
        namespace: str,
        registry_tls: TlsRegistry,
        mqtt_broker: BrokerEnv,
        component: Callable[[str], Path],
        pods: Callable[[dict[str, Any]], WorkerPod],
    ) -> None:
        prefix = f"tls{uuid.uuid4().hex[:8]}"
        documents, digests = [], {}
        for name, built, operator in (("f2c", "f2c_map", "map"), ("range", "range_filter", "filter")):
            data = component(built).read_bytes()
            reference = f"{registry_tls.host}/{prefix}/{name}:1.0.0"
            asyncio.run(push_component(reference, data, access=Access(ca_file=registry_tls.ca_file)))
            digests[name] = "sha256:" + hashlib.sha256(data).hexdigest()
            module = wasm_module(name, reference, operator)
            del module["spec"]["source"]["oci"]["insecure"]  # HTTPS, verified against the CA
            documents.append(module)
        kubectl.apply(*documents)
        kubectl("wait", "--for=condition=Ready", "wasmmodules/f2c", "wasmmodules/range", "--timeout=180s")
        kubectl.apply(dataflow(mqtt_broker, prefix))
        deployment = applied(kube_client, namespace)
        config_map = CoreV1Api(kube_client).read_namespaced_config_map(f"{DATAFLOW}-worker", namespace)
        assert config_map.data is not None
        assert config_map.data["registry-ca.crt"] == registry_tls.ca_file.read_text()
        pinned = json.loads(config_map.data["config.json"])["modules"]
        assert {n: (m["digest"], m["caFile"]) for n, m in pinned.items()} == {
            n: (d, "/etc/wasmflow/registry-ca.crt") for n, d in digests.items()
        }

        pod = start_pod(kube_client, deployment, pods)  # ready: both modules pulled over TLS and verified
        assert (pod.root / "etc/wasmflow/registry-ca.crt").read_bytes() == registry_tls.ca_file.read_bytes()
        assert pod.terminate() == 0

    @pytest.mark.timeout(1200)  # five modules contract-checked by the controller, then pulled by the worker
    def test_a_worker_pulls_the_modules_of_an_aio_graph_from_the_private_ca_registry_and_becomes_ready(
        self,
        controller: OperatorConfig,
        kubectl: Kubectl,
        kube_client: ApiClient,
        namespace: str,
        registry_tls: TlsRegistry,
        mqtt_broker: BrokerEnv,
        component: Callable[[str], Path],
        pods: Callable[[dict[str, Any]], WorkerPod],
    ) -> None:
        base = f"{registry_tls.host}/tls{uuid.uuid4().hex[:8]}"
        digests = {}
        for reference in sorted(GRAPH_MODULES):
            data = component(MODULES[reference]).read_bytes()
            asyncio.run(push_component(f"{base}/{reference}", data, access=Access(ca_file=registry_tls.ca_file)))
            digests[reference] = "sha256:" + hashlib.sha256(data).hexdigest()
        graph = {
            "definition": GRAPH.read_text(),
            "registry": base,
            "sources": {"source": {"endpoint": "broker", "topic": "tls/in"}},
            "sinks": {"sink": {"endpoint": "broker", "topic": "tls/out"}},
        }
        doc = dataflow(mqtt_broker, "tls")
        doc["spec"] = {"endpoints": doc["spec"]["endpoints"], "graph": graph}
        kubectl.apply(doc)
        # The controller contract-checks each module (~20 s for a componentize-py one while the check compiles).
        deployment = applied(kube_client, namespace, timeout=600)
        status = get_dataflow(kube_client, namespace)["status"]
        assert {m["name"]: m["digest"] for m in status["modules"]} == digests

        pod = pods(deployment)
        pod.mount(kube_client)
        # The session's compiled code in the pod's cache volume: this test is about pulling, not compiling.
        (pod.root / "var/cache/wasmflow/compiled").symlink_to(cache_dir().parent / "compiled")
        pod.start()
        wait_until(pod.ready, what="the worker's readiness probe", timeout=300)  # every module pulled and verified
        assert pod.terminate() == 0
