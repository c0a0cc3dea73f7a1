"""The Dataflow front-end: spec.nodes/edges become the graph IR, and every problem names its node or edge.

Specs are assembled with ``model_construct`` (nodes and edges still validated one by one) so that the graph check
itself is exercised: parsing a whole DataflowSpec already refuses the reference problems (see test_models.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from wasmflow.api.dataflow import DataflowSpec, Edge, Endpoint, Node
from wasmflow.api.frontends import spec_graph
from wasmflow.api.frontends.dataflow import dataflow_graph
from wasmflow.api.graph import Edge as GraphEdge
from wasmflow.api.graph import GraphError, Step
from wasmflow.api.kinds import OperatorKind

SRC = {"name": "in", "type": "source", "endpoint": "b", "topic": "t"}
OUT = {"name": "out", "type": "sink", "endpoint": "b", "topic": "o"}


def spec(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> DataflowSpec:
    return DataflowSpec.model_construct(
        endpoints={"b": Endpoint.model_validate({"mqtt": {"url": "mqtt://broker:1883"}})},
        nodes=[Node.model_validate(n) for n in nodes],
        edges=[Edge.model_validate(e) for e in edges],
    )


def op(name: str, kind: str = "map", **extra: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"name": name, "type": kind, "module": name, **extra}
    if kind == "accumulate":
        node["window"] = {"count": 2}
    return node


def e(source: str, target: str, arm: bool | None = None) -> dict[str, Any]:
    return {"from": source, "to": target} if arm is None else {"from": source, "to": target, "arm": arm}


def problems(s: DataflowSpec) -> list[tuple[str, str]]:
    with pytest.raises(GraphError) as info:
        dataflow_graph(s)
    return [(p.where, p.message) for p in info.value.problems]


def test_a_valid_graph_comes_back_in_topological_order() -> None:
    graph = dataflow_graph(spec([OUT, op("a"), SRC], [e("in", "a"), e("a", "out")]))
    assert graph.order == ("in", "a", "out")
    assert graph.sources == ("in",)
    assert graph.sinks == ("out",)
    assert graph.predecessors("a") == ("in",)


def test_branch_edges_carry_their_arm() -> None:
    graph = dataflow_graph(
        spec(
            [SRC, op("br", "branch"), OUT, {**OUT, "name": "alerts"}],
            [e("in", "br"), e("br", "alerts", True), e("br", "out", False)],
        )
    )
    assert set(graph.outputs["br"]) == {GraphEdge("br", "alerts", True, 0), GraphEdge("br", "out", False, 0)}
    assert graph.step("br") is Step.BRANCH


def test_a_cycle_is_named_with_its_path() -> None:
    found = problems(
        spec([SRC, op("a"), op("b"), OUT], [e("in", "a"), e("a", "b"), e("b", "a"), e("b", "out")]),
    )
    assert ("spec.nodes[1] (a)", "is on a cycle: a -> b -> a") in found


def test_a_node_unreachable_from_every_source_is_named() -> None:
    found = problems(
        spec(
            [SRC, op("a"), op("b"), op("c"), OUT],
            [e("in", "a"), e("a", "out"), e("b", "c"), e("c", "out")],
        )
    )
    assert ("spec.nodes[3] (c)", "is not reachable from any source") in found
    assert ("spec.nodes[2] (b)", "has no incoming edge") in found


def test_an_edge_to_a_missing_node_is_named() -> None:
    found = problems(spec([SRC, op("a"), OUT], [e("in", "a"), e("a", "out"), e("a", "ghost")]))
    assert ("spec.edges[2] (a -> ghost)", "names node(s) that do not exist: ghost") in found


def test_a_branch_with_one_arm_is_named() -> None:
    found = problems(spec([SRC, op("br", "branch"), OUT], [e("in", "br"), e("br", "out", True)]))
    assert ("spec.nodes[1] (br)", "branch has no edge for arm: false (or set dropArm: false)") in found


def test_a_branch_may_drop_one_arm_on_purpose() -> None:
    graph = dataflow_graph(
        spec([SRC, op("br", "branch", dropArm=False), OUT], [e("in", "br"), e("br", "out", True)]),
    )
    assert graph.outputs["br"] == (GraphEdge("br", "out", True, 0),)
    assert graph.nodes["br"].drop_arm is False


def test_a_dropped_arm_that_also_has_an_edge_is_named() -> None:
    found = problems(
        spec(
            [SRC, op("br", "branch", dropArm=True), OUT],
            [e("in", "br"), e("br", "out", True), e("br", "out", False)],
        )
    )
    assert ("spec.nodes[1] (br)", "drops arm true (dropArm) but has an edge for it") in found


def test_an_edge_leaving_a_branch_without_arm_is_named() -> None:
    found = problems(
        spec([SRC, op("br", "branch"), OUT], [e("in", "br"), e("br", "out", True), e("br", "out")]),
    )
    assert ("spec.edges[2] (br -> out)", "leaves a branch node: set arm: true or arm: false") in found


def test_an_arm_on_a_non_branch_edge_is_named() -> None:
    found = problems(spec([SRC, op("a"), OUT], [e("in", "a"), e("a", "out", True)]))
    assert ("spec.edges[1] (a -> out)", "has arm: true, but a is not a branch") in found


def test_an_operator_with_two_inputs_is_a_fan_in() -> None:
    graph = dataflow_graph(
        spec(
            [SRC, op("a"), op("b"), op("merge", "accumulate"), OUT],
            [e("in", "a"), e("in", "b"), e("a", "merge"), e("b", "merge"), e("merge", "out")],
        )
    )
    assert set(graph.predecessors("merge")) == {"a", "b"}
    assert [e.port for e in graph.inputs["merge"]] == [0, 1]
    assert graph.order.index("merge") > max(graph.order.index("a"), graph.order.index("b"))


def test_the_same_edge_twice_is_named() -> None:
    found = problems(spec([SRC, op("a"), OUT], [e("in", "a"), e("a", "out"), e("in", "a")]))
    assert ("spec.edges[2] (in -> a)", "duplicates an earlier edge") in found


def test_a_source_with_an_input_is_named() -> None:
    found = problems(spec([SRC, op("a"), OUT], [e("in", "a"), e("a", "out"), e("a", "in")]))
    assert ("spec.edges[2] (a -> in)", "points into source in: sources take no input") in found


def test_a_sink_with_an_output_is_named() -> None:
    found = problems(
        spec([SRC, op("a"), OUT, {**OUT, "name": "out2"}], [e("in", "a"), e("a", "out"), e("out", "out2")]),
    )
    assert ("spec.edges[2] (out -> out2)", "leaves sink out: sinks have no output") in found


def test_an_unknown_endpoint_is_named() -> None:
    found = problems(spec([SRC, op("a"), {**OUT, "endpoint": "nowhere"}], [e("in", "a"), e("a", "out")]))
    assert ("spec.nodes[2] (out)", "names endpoint 'nowhere', not in spec.endpoints") in found


def test_a_dead_end_operator_is_named() -> None:
    found = problems(spec([SRC, op("a"), op("b"), OUT], [e("in", "a"), e("in", "b"), e("a", "out")]))
    assert ("spec.nodes[2] (b)", "has no outgoing edge: its messages would go nowhere") in found


def test_a_graph_without_source_or_sink_is_refused() -> None:
    found = problems(spec([op("a"), op("b")], [e("a", "b")]))
    assert ("spec.nodes", "the graph has no source") in found
    assert ("spec.nodes", "the graph has no sink") in found


def test_every_problem_is_reported_at_once() -> None:
    found = problems(spec([SRC, op("a"), op("br", "branch"), OUT], [e("in", "a"), e("a", "out", False)]))
    assert {w for w, _ in found} == {"spec.edges[1] (a -> out)", "spec.nodes[2] (br)"}
    assert len(found) == 5  # arm on a's edge; br: no input, no output, no true arm, no false arm


def test_the_error_message_lists_every_problem_with_its_place() -> None:
    with pytest.raises(GraphError) as info:
        dataflow_graph(spec([SRC, op("a"), OUT], [e("in", "a"), e("a", "out"), e("a", "ghost")]))
    assert str(info.value) == "spec: invalid graph: spec.edges[2] (a -> ghost): names node(s) that do not exist: ghost"


def test_operator_nodes_must_match_the_kind_of_their_module() -> None:
    s = spec([SRC, op("a"), op("f", "filter"), OUT], [e("in", "a"), e("a", "f"), e("f", "out")])
    with pytest.raises(GraphError) as info:
        dataflow_graph(s, {"a": OperatorKind.MAP, "f": OperatorKind.MAP})
    assert [(p.where, p.message) for p in info.value.problems] == [
        ("spec.nodes[2] (f)", "is a filter node, but WasmModule f is a map operator")
    ]


def test_a_node_naming_an_unknown_module_is_named_when_modules_are_known() -> None:
    s = spec([SRC, op("a"), OUT], [e("in", "a"), e("a", "out")])
    assert dataflow_graph(s, {"a": OperatorKind.MAP}).order == ("in", "a", "out")
    with pytest.raises(GraphError) as info:
        dataflow_graph(s, {})
    assert info.value.problems[0].message == "names WasmModule a, which does not exist"


def test_nodes_carry_what_the_runtime_needs_from_the_spec() -> None:
    policy = {"action": "deadLetter", "endpoint": "b", "topic": "dead"}
    s = spec(
        [SRC, op("avg", "accumulate", configuration={"k": "v"}, errorPolicy=policy), OUT],
        [e("in", "avg"), e("avg", "out")],
    )
    graph = dataflow_graph(s)
    avg = graph.nodes["avg"]
    assert (avg.step, avg.module, avg.parameters, avg.where) == (
        Step.ACCUMULATE,
        "avg",
        (("k", "v"),),
        "spec.nodes[1] (avg)",
    )
    assert avg.window is not None and avg.window.count == 2
    assert avg.error_policy is not None and avg.error_policy.topic == "dead"
    assert (graph.nodes["in"].endpoint, graph.nodes["in"].topic) == ("b", "t")


def test_a_dataflow_running_an_aio_graph_is_not_read_as_nodes() -> None:
    s = DataflowSpec.model_validate(
        {
            "endpoints": {"b": {"mqtt": {"url": "mqtt://broker:1883"}}},
            "graph": {"artifact": {"reference": "registry.local/graphs/g:1"}},
        }
    )
    with pytest.raises(GraphError, match="runs an AIO graph definition"):
        dataflow_graph(s)
    assert spec_graph(s) is None  # an artifact: checked once the controller pulled it
