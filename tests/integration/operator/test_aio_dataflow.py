"""A Dataflow referencing an Azure IoT Operations graph definition, on the real API server with the controller,
then run by a worker process with exactly the config its pod would mount."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient, CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from tests.components.build import cache_dir
from tests.integration.conftest import wait_until
from tests.integration.oci.test_registry import push_raw
from tests.integration.operator.test_dataflow_controller import condition, get_dataflow
from tests.integration.worker.test_aio_worker import GRAPH, MODULES, assert_worker_runs_the_graph
from tests.integration.worker.test_worker_process import free_port
from tests.services import BrokerEnv, Registry
from wasmflow.api.frontends.aio import definition_graph, parse_graph
from wasmflow.oci import mediatypes as mt
from wasmflow.operator.config import OperatorConfig

GRAPH_TAG = "graphs/temperatures:1.0.0"


def graph_dataflow(name: str, broker: BrokerEnv, graph: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "wasmflow.io/v1alpha1",
        "kind": "Dataflow",
        "metadata": {"name": name},
        "spec": {"endpoints": {"broker": {"mqtt": {"url": broker.url, "qos": 1}}}, "graph": graph},
    }


def create(kube_client: ApiClient, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    result = CustomObjectsApi(kube_client).create_namespaced_custom_object(
        "wasmflow.io", "v1alpha1", namespace, "dataflows", body
    )
    assert isinstance(result, dict)
    return result


def push_module(reference: str, data: bytes) -> str:
    """A module pushed as AIO pushes it (an oras layout); the digest of its content."""
    push_raw(reference, mt.OCI_EMPTY, [(mt.WASM_LAYER_CONTENT, data)], artifact_type=mt.AIO_MODULE_ARTIFACT)
    return "sha256:" + hashlib.sha256(data).hexdigest()


_GRAPH = definition_graph(parse_graph(GRAPH.read_text()))
#: The modules the graph definition names (MODULES also has those of other graphs).
GRAPH_MODULES = {module for node in _GRAPH.nodes.values() if (module := node.module)}


def push_graph(base: str, component: Callable[[str], Path]) -> tuple[str, dict[str, str]]:
    """The graph artifact and its modules under ``base``: the artifact's manifest digest, each module's digest."""
    digests = {
        reference: push_module(f"{base}/{reference}", component(built).read_bytes())
        for reference, built in MODULES.items()
        if reference in GRAPH_MODULES
    }
    manifest = push_raw(f"{base}/{GRAPH_TAG}", mt.AIO_GRAPH, [("application/yaml", GRAPH.read_bytes())])
    return manifest, digests


def artifact_graph(base: str, topics: str = "t") -> dict[str, Any]:
    return {
        "artifact": {"reference": f"{base}/{GRAPH_TAG}", "insecure": True},
        "registry": base,
        "insecure": True,
        "sources": {"source": {"endpoint": "broker", "topic": f"{topics}/in"}},
        "sinks": {"sink": {"endpoint": "broker", "topic": f"{topics}/out"}},
        "eventTime": True,
    }


def worker_config(kube_client: ApiClient, namespace: str, name: str) -> dict[str, Any]:
    config_map = CoreV1Api(kube_client).read_namespaced_config_map(f"{name}-worker", namespace)
    assert config_map.data is not None
    result: dict[str, Any] = json.loads(config_map.data["config.json"])
    return result


def status_modules(kube_client: ApiClient, namespace: str, name: str) -> dict[str, str] | None:
    modules = (get_dataflow(kube_client, namespace, name).get("status") or {}).get("modules")
    return {m["name"]: m["digest"] for m in modules} if modules else None


def test_the_api_server_refuses_nodes_and_a_graph_together(
    crds_installed: None, kube_client: ApiClient, namespace: str, mqtt_broker: BrokerEnv
) -> None:
    body = graph_dataflow("both", mqtt_broker, {"definition": GRAPH.read_text()})
    body["spec"]["nodes"] = [
        {"name": "in", "type": "source", "endpoint": "broker", "topic": "t"},
        {"name": "out", "type": "sink", "endpoint": "broker", "topic": "u"},
    ]
    body["spec"]["edges"] = [{"from": "in", "to": "out"}]
    with pytest.raises(ApiException) as caught:
        create(kube_client, namespace, body)
    assert caught.value.status == 422
    assert "give nodes (a source and a sink at least) and edges, or a graph, not both" in str(caught.value.body)


def test_a_graph_with_an_unbound_sink_is_stalled_naming_it(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, mqtt_broker: BrokerEnv
) -> None:
    graph = {"definition": GRAPH.read_text(), "sources": {"source": {"endpoint": "broker", "topic": "in"}}}
    create(kube_client, namespace, graph_dataflow("unbound", mqtt_broker, graph))
    stalled = wait_until(
        lambda: condition(get_dataflow(kube_client, namespace, "unbound"), "Stalled"), what="Stalled condition"
    )
    assert (stalled["status"], stalled["reason"]) == ("True", "InvalidGraph")
    assert "sink operation sink is not bound to an endpoint" in stalled["message"]


@pytest.mark.timeout(900)
def test_a_dataflow_with_an_aio_graph_artifact_runs_on_its_worker(
    controller: OperatorConfig,
    kube_client: ApiClient,
    namespace: str,
    registry: Registry,
    mqtt_broker: BrokerEnv,
    component: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    base = f"{registry.host}/{namespace}"
    push_graph(base, component)
    topics = f"k{uuid.uuid4().hex[:8]}"
    graph = artifact_graph(base, topics)
    create(kube_client, namespace, graph_dataflow("temps", mqtt_broker, graph))
    config_map = wait_until(
        lambda: next(iter(CoreV1Api(kube_client).list_namespaced_config_map(namespace).items), None),
        what="the worker ConfigMap",
    )
    (tmp_path / "config.json").write_text(config_map.data["config.json"])
    assert json.loads(config_map.data["config.json"])["spec"]["graph"]["registry"] == base
    # The pod's cache volume, laid out under --root; its compiled code is the session's (no recompiling here).
    volume = tmp_path / "root" / "var" / "cache" / "wasmflow"
    volume.mkdir(parents=True)
    (volume / "compiled").symlink_to(cache_dir().parent / "compiled")
    args = ["--config", str(tmp_path / "config.json"), "--root", str(tmp_path / "root")]
    assert_worker_runs_the_graph(args, free_port(), mqtt_broker, topics)


def test_the_status_lists_the_digest_each_graph_module_tag_resolved_to(
    controller: OperatorConfig,
    kube_client: ApiClient,
    namespace: str,
    registry: Registry,
    mqtt_broker: BrokerEnv,
    component: Callable[[str], Path],
) -> None:
    base = f"{registry.host}/{namespace}"
    _, digests = push_graph(base, component)
    create(kube_client, namespace, graph_dataflow("temps", mqtt_broker, artifact_graph(base)))
    listed = wait_until(lambda: status_modules(kube_client, namespace, "temps"), what="status.modules")
    assert listed == digests


def test_the_config_map_pins_the_graph_artifact_and_every_module_by_digest(
    controller: OperatorConfig,
    kube_client: ApiClient,
    namespace: str,
    registry: Registry,
    mqtt_broker: BrokerEnv,
    component: Callable[[str], Path],
) -> None:
    base = f"{registry.host}/{namespace}"
    manifest, digests = push_graph(base, component)
    create(kube_client, namespace, graph_dataflow("temps", mqtt_broker, artifact_graph(base)))
    wait_until(lambda: status_modules(kube_client, namespace, "temps"), what="status.modules")
    pinned = worker_config(kube_client, namespace, "temps")["graph"]
    assert pinned["artifact"] == f"{base}/graphs/temperatures@{manifest}"
    assert {name: (m["reference"], m["digest"]) for name, m in pinned["modules"].items()} == {
        reference: (f"{base}/{reference}", digest) for reference, digest in digests.items()
    }


def test_a_moved_tag_changes_the_rendered_digest_only_when_the_controller_reconciles_again(
    controller: OperatorConfig,
    kube_client: ApiClient,
    namespace: str,
    registry: Registry,
    mqtt_broker: BrokerEnv,
    component: Callable[[str], Path],
) -> None:
    base = f"{registry.host}/{namespace}"
    _, digests = push_graph(base, component)
    graph = {
        "definition": GRAPH.read_text(),
        "registry": base,
        "insecure": True,
        "sources": {"source": {"endpoint": "broker", "topic": "t/in"}},
        "sinks": {"sink": {"endpoint": "broker", "topic": "t/out"}},
    }
    create(kube_client, namespace, graph_dataflow("temps", mqtt_broker, graph))
    wait_until(lambda: status_modules(kube_client, namespace, "temps"), what="status.modules")
    f2c = "wasmflow-tests/f2c:1.0.0"
    first_hash = get_dataflow(kube_client, namespace, "temps")["status"]["configHash"]

    # The tag now names other bytes (another component: the controller checks only that it is one).
    moved = push_module(f"{base}/{f2c}", component("aio_range_filter").read_bytes())
    assert moved != digests[f2c]
    assert worker_config(kube_client, namespace, "temps")["graph"]["modules"][f2c]["digest"] == digests[f2c]

    CustomObjectsApi(kube_client).patch_namespaced_custom_object(
        "wasmflow.io",
        "v1alpha1",
        namespace,
        "dataflows",
        "temps",
        {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "after-the-tag-moved"}}},
    )
    wait_until(
        lambda: get_dataflow(kube_client, namespace, "temps")["status"]["configHash"] != first_hash,
        what="a new config rendered after the re-reconcile",
    )
    assert worker_config(kube_client, namespace, "temps")["graph"]["modules"][f2c]["digest"] == moved
    assert (status_modules(kube_client, namespace, "temps") or {})[f2c] == moved
