"""``wasmflow graph --from-cluster``: the live Dataflow read from the real API server and drawn, with the digests its
status says the workers run."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from kubernetes.client import ApiClient, CustomObjectsApi

from tests.services import KubeEnv
from tests.unit.cli.test_graph import AIO, DIGEST, PLANT, parse_mermaid
from wasmflow.cli.main import cli

GROUP, VERSION = "wasmflow.io", "v1alpha1"
pytestmark = pytest.mark.usefixtures("crds_installed")


def create(kube_client: ApiClient, namespace: str, body: dict[str, Any]) -> None:
    CustomObjectsApi(kube_client).create_namespaced_custom_object(GROUP, VERSION, namespace, "dataflows", body)


def draw(kube: KubeEnv, target: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["graph", "--from-cluster", target, "--kubeconfig", str(kube.kubeconfig)])
    return result.exit_code, result.output


def test_the_live_dataflow_is_drawn_with_the_digests_its_status_lists(
    kube: KubeEnv, kube_client: ApiClient, namespace: str
) -> None:
    body = yaml.safe_load(PLANT.read_text())
    create(kube_client, namespace, body)
    status = {"status": {"modules": [{"name": "to-celsius", "digest": DIGEST}]}}
    CustomObjectsApi(kube_client).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "dataflows", "plant-temperatures", status
    )
    code, output = draw(kube, f"{namespace}/plant-temperatures")
    assert code == 0, output
    assert output.splitlines()[0] == f"%% {namespace}/plant-temperatures"
    _shapes, nodes, edges = parse_mermaid(output)
    assert set(nodes) == {n["name"] for n in body["spec"]["nodes"]}
    assert set(edges) == {(e["from"], e["to"]) for e in body["spec"]["edges"]}
    assert nodes["to-celsius"][2] == "sha256:3f2a9c3f2a9c…"
    assert edges[("overheat", "alerts")] == "true"


def test_a_live_dataflow_running_an_aio_graph_is_drawn_with_its_sources_and_sinks_bound(
    kube: KubeEnv, kube_client: ApiClient, namespace: str
) -> None:
    ports = {
        "sources": {"source": {"endpoint": "broker", "topic": "plant/in"}},
        "sinks": {"sink": {"endpoint": "broker", "topic": "plant/out"}},
    }
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Dataflow",
        "metadata": {"name": "temps"},
        "spec": {
            "endpoints": {"broker": {"mqtt": {"url": "mqtt://broker:1883"}}},
            "graph": {"definition": AIO.read_text(), "registry": "registry.local/aio", **ports},
        },
    }
    create(kube_client, namespace, body)
    code, output = draw(kube, f"{namespace}/temps")
    assert code == 0, output
    _shapes, nodes, edges = parse_mermaid(output)
    assert nodes["source"][-1] == "broker: plant/in"
    assert nodes["sink"][-1] == "broker: plant/out"
    assert edges[("module-threshold/branch", "concatenate1")] == "true"


def test_a_dataflow_that_does_not_exist_is_named(kube: KubeEnv, namespace: str) -> None:
    code, output = draw(kube, f"{namespace}/nowhere")
    assert code == 1
    assert f"Dataflow {namespace}/nowhere not found" in output


def test_a_target_without_a_namespace_is_a_usage_error(kube: KubeEnv) -> None:
    code, output = draw(kube, "plant-temperatures")
    assert code == 2
    assert "NAMESPACE/DATAFLOW" in output
