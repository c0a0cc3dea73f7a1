"""The AIO front-end: AIO's graph YAML read unchanged into the graph IR, every problem reported naming where it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from wasmflow.api.dataflow_graph import GraphPort
from wasmflow.api.frontends.aio import definition_graph, parse_graph
from wasmflow.api.graph import GraphError, Step
from wasmflow.errors import ConfigError

GRAPH = Path(__file__).resolve().parents[3] / "integration" / "run" / "aio" / "graph.yaml"


def test_the_sample_graph_is_planned_in_topological_order() -> None:
    graph = definition_graph(parse_graph(GRAPH.read_text()))
    assert graph.order[0] == "source" and graph.order[-1] == "sink"
    assert graph.step("concatenate1") is Step.CONCATENATE
    arms = {e.target: e.arm for e in graph.outputs["module-threshold/branch"]}
    assert arms == {"concatenate1": True, "module-window/delay": False}
    assert [e.port for e in graph.inputs["concatenate1"]] == [0, 1]


def test_parameters_are_the_declared_defaults_unless_overridden() -> None:
    definition = parse_graph(GRAPH.read_text())
    assert definition.parameters("module-range/filter") == (("lower", "-50"), ("upper", "150"))
    assert definition.parameters("module-range/filter", {"upper": "90"}) == (("lower", "-50"), ("upper", "90"))
    assert definition.parameters("module-f2c/map") == ()


def test_schema_and_metadata_keep_aio_field_names() -> None:
    definition = parse_graph(GRAPH.read_text())
    assert definition.metadata.schema_ == "https://www.schemastore.org/aio-wasm-graph-config-1.0.0.json"
    assert definition.module_requirements is not None and definition.module_requirements.api_version == "1.1.0"


def test_every_problem_is_reported_naming_its_place() -> None:
    text = """
operations:
  - {operationType: source, name: s}
  - {operationType: map, name: m}
  - {operationType: branch, name: b, module: "x:1"}
  - {operationType: sink, name: out}
connections:
  - {from: {name: s}, to: {name: b}}
  - {from: {name: b}, to: {name: out}}
  - {from: {name: s, arm: "True"}, to: {name: out}}
  - {from: {name: b, arm: "Maybe"}, to: {name: out}}
  - {from: {name: nowhere}, to: {name: out}}
"""
    with pytest.raises(GraphError) as caught:
        definition_graph(parse_graph(text))
    found = {(p.where, p.message) for p in caught.value.problems}
    assert ("operations[1] (m)", "is a map but names no module") in found
    assert ("connections[1] (b -> out)", 'leaves a branch: set from.arm to "True" or "False"') in found
    assert ("connections[2] (s -> out)", "has from.arm, but s is not a branch") in found
    assert ("connections[3] (b -> out)", 'from.arm must be "True" or "False", not \'Maybe\'') in found
    assert ("connections[4] (nowhere -> out)", "names operation(s) that do not exist: nowhere") in found
    assert ("operations[1] (m)", "has no incoming connection") in found


def test_an_unknown_operation_type_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"operations\.0\.operationType"):
        parse_graph("operations: [{operationType: window, name: w}]")


def test_a_cycle_is_refused() -> None:
    text = """
operations:
  - {operationType: source, name: s}
  - {operationType: map, name: a, module: "a:1"}
  - {operationType: map, name: b, module: "b:1"}
  - {operationType: sink, name: out}
connections:
  - {from: {name: s}, to: {name: a}}
  - {from: {name: a}, to: {name: b}}
  - {from: {name: b}, to: {name: a}}
  - {from: {name: b}, to: {name: out}}
"""
    with pytest.raises(GraphError, match="cycle"):
        definition_graph(parse_graph(text))


BRANCH_ONE_ARM = """
operations:
  - {operationType: source, name: s}
  - {operationType: branch, name: b, module: "b:1"}
  - {operationType: sink, name: out}
connections:
  - {from: {name: s}, to: {name: b}}
  - {from: {name: b, arm: "True"}, to: {name: out}}
"""


def test_a_branch_arm_without_a_connection_drops_its_items() -> None:
    graph = definition_graph(parse_graph(BRANCH_ONE_ARM))
    assert graph.nodes["b"].drop_arm is False
    assert [(e.target, e.arm) for e in graph.outputs["b"]] == [("out", True)]


def test_a_branch_without_any_connection_out_is_named_in_aio_words() -> None:
    text = BRANCH_ONE_ARM.replace('  - {from: {name: b, arm: "True"}, to: {name: out}}\n', "")
    text += "  - {from: {name: s}, to: {name: out}}\n"
    with pytest.raises(GraphError) as caught:
        definition_graph(parse_graph(text))
    assert {(p.where, p.message) for p in caught.value.problems} == {
        ("operations[1] (b)", "has no outgoing connection: its items would go nowhere"),
        ("operations[1] (b)", "branch has no connection for arm true"),
        ("operations[1] (b)", "branch has no connection for arm false"),
    }


def test_overridden_parameters_and_bound_ports_are_on_the_nodes() -> None:
    ports = {"source": GraphPort(endpoint="broker", topic="in"), "sink": GraphPort(endpoint="broker", topic="out")}
    graph = definition_graph(
        parse_graph(GRAPH.read_text()), {"module-range/filter": {"upper": "90"}}, sources=ports, sinks=ports
    )
    assert graph.nodes["module-range/filter"].parameters == (("lower", "-50"), ("upper", "90"))
    assert (graph.nodes["source"].endpoint, graph.nodes["source"].topic) == ("broker", "in")
    assert (graph.nodes["sink"].endpoint, graph.nodes["sink"].topic) == ("broker", "out")
    assert graph.nodes["module-f2c/map"].module == "wasmflow-tests/f2c:1.0.0"


def test_a_concatenate_takes_no_module() -> None:
    text = """
operations:
  - {operationType: source, name: s}
  - {operationType: concatenate, name: c, module: "c:1"}
  - {operationType: sink, name: out}
connections:
  - {from: {name: s}, to: {name: c}}
  - {from: {name: c}, to: {name: out}}
"""
    with pytest.raises(GraphError) as caught:
        definition_graph(parse_graph(text))
    assert [(p.where, p.message) for p in caught.value.problems] == [
        ("operations[1] (c)", "is a concatenate and takes no module")
    ]


def test_a_definition_inside_a_dataflow_names_its_problems_from_there() -> None:
    with pytest.raises(GraphError) as caught:
        definition_graph(parse_graph("operations: [{operationType: map, name: m}]"), at="spec.graph.definition ")
    found = {(p.where, p.message) for p in caught.value.problems}
    assert ("spec.graph.definition operations[0] (m)", "is a map but names no module") in found
    assert ("spec.graph.definition operations", "the graph has no source") in found
