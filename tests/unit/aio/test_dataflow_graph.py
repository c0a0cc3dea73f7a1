"""A Dataflow that references an AIO graph definition instead of spec.nodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from wasmflow.api.dataflow import DataflowSpec
from wasmflow.api.frontends import spec_graph
from wasmflow.api.graph import GraphError
from wasmflow.api.workerconfig import PinnedGraph, PinnedGraphModule, WorkerConfig
from wasmflow.operator.config import OperatorConfig
from wasmflow.operator.dataflows import Apply, Stalled, plan

GRAPH = (Path(__file__).resolve().parents[2] / "integration" / "run" / "aio" / "graph.yaml").read_text()
ENDPOINTS = {"broker": {"mqtt": {"url": "mqtt://broker:1883"}}}
PORTS = {
    "sources": {"source": {"endpoint": "broker", "topic": "in"}},
    "sinks": {"sink": {"endpoint": "broker", "topic": "out"}},
}


def spec(**fields: Any) -> DataflowSpec:
    return DataflowSpec.model_validate({"endpoints": ENDPOINTS, **fields})


def test_an_inline_graph_with_bound_sources_and_sinks_is_valid() -> None:
    dataflow = spec(graph={"definition": GRAPH, "registry": "registry.local/aio", **PORTS})
    assert dataflow.nodes == [] and dataflow.graph is not None
    graph = spec_graph(dataflow)
    assert graph is not None and graph.sources == ("source",) and graph.sinks == ("sink",)
    assert graph.nodes["source"].topic == "in" and graph.nodes["sink"].endpoint == "broker"


def test_an_artifact_graph_is_valid_without_a_definition() -> None:
    dataflow = spec(graph={"artifact": {"reference": "registry.local/graphs/temps:1.0.0"}, **PORTS})
    assert dataflow.graph is not None and dataflow.graph.artifact is not None


def test_a_graph_is_inline_or_an_artifact_not_both() -> None:
    with pytest.raises(ValidationError, match="either inline"):
        spec(graph={"definition": GRAPH, "artifact": {"reference": "r/g:1"}, **PORTS})


def test_nodes_and_a_graph_together_are_refused() -> None:
    nodes = [
        {"name": "in", "type": "source", "endpoint": "broker", "topic": "t"},
        {"name": "out", "type": "sink", "endpoint": "broker", "topic": "u"},
    ]
    with pytest.raises(ValidationError, match="or a graph, not both"):
        spec(nodes=nodes, edges=[{"from": "in", "to": "out"}], graph={"definition": GRAPH, **PORTS})


def test_neither_nodes_nor_a_graph_is_refused() -> None:
    with pytest.raises(ValidationError, match="or a graph, not both"):
        spec()


def test_a_port_on_an_undeclared_endpoint_is_named() -> None:
    with pytest.raises(ValidationError, match="operation source names endpoint elsewhere"):
        spec(graph={"definition": GRAPH, "sources": {"source": {"endpoint": "elsewhere", "topic": "in"}}})


def test_an_unbound_sink_and_graph_problems_are_reported_by_the_graph_check() -> None:
    unbound = spec(graph={"definition": GRAPH, "sources": PORTS["sources"]})
    with pytest.raises(GraphError) as caught:
        spec_graph(unbound)
    assert [(p.where, p.message) for p in caught.value.problems] == [
        ("spec.graph.sinks", "sink operation sink is not bound to an endpoint")
    ]
    broken = spec(graph={"definition": GRAPH.replace('module: "wasmflow-tests/f2c:1.0.0"', ""), **PORTS})
    with pytest.raises(GraphError, match=r"spec.graph.definition operations\[1\] \(module-f2c/map\)"):
        spec_graph(broken)


def body(graph: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "wasmflow.io/v1alpha1",
        "kind": "Dataflow",
        "metadata": {"name": "temps", "namespace": "plant", "generation": 1, "uid": "u1"},
        "spec": {"endpoints": ENDPOINTS, "graph": graph},
    }


def test_the_controller_renders_the_graph_into_the_workers_config() -> None:
    f2c = PinnedGraphModule(reference="registry.local/aio/wasmflow-tests/f2c:1.0.0", digest="sha256:" + "a" * 64)
    pins = PinnedGraph(modules={"wasmflow-tests/f2c:1.0.0": f2c})
    planned = plan(
        body({"definition": GRAPH, "registry": "registry.local/aio", **PORTS}),
        lambda _name: None,
        OperatorConfig(),
        graph=pins,
    )
    assert isinstance(planned, Apply)
    config_map = next(
        o for o in vars(planned.children).values() if isinstance(o, dict) and o.get("kind") == "ConfigMap"
    )
    config = WorkerConfig.model_validate_json(config_map["data"]["config.json"])
    assert config.spec.graph is not None and config.spec.graph.definition == GRAPH
    assert config.modules == {}
    assert config.graph == pins


def test_the_controller_stalls_a_graph_whose_sink_is_not_bound() -> None:
    planned = plan(body({"definition": GRAPH, "sources": PORTS["sources"]}), lambda _name: None, OperatorConfig())
    assert planned == Stalled("InvalidGraph", "spec.graph.sinks: sink operation sink is not bound to an endpoint")
