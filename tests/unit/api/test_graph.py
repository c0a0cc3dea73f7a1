"""The graph check names the node or the edge of every problem."""

from __future__ import annotations

from typing import Any

import pytest

from wasmflow.api.dataflow import DataflowSpec
from wasmflow.api.graph import GraphError, validate_graph

MQTT = {"mqtt": {"url": "mqtt://broker:1883"}}


def spec(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> DataflowSpec:
    return DataflowSpec.model_validate({"endpoints": {"b": MQTT}, "nodes": nodes, "edges": edges})


SRC = {"name": "in", "type": "source", "endpoint": "b", "topic": "t"}
OUT = {"name": "out", "type": "sink", "endpoint": "b", "topic": "o"}


def op(name: str, kind: str = "map") -> dict[str, Any]:
    node: dict[str, Any] = {"name": name, "type": kind, "module": name}
    if kind == "accumulate":
        node["window"] = {"count": 2}
    return node


def problems(s: DataflowSpec) -> list[tuple[str, str]]:
    with pytest.raises(GraphError) as info:
        validate_graph(s)
    return [(p.where, p.message) for p in info.value.problems]


def test_a_valid_graph_comes_back_in_topological_order() -> None:
    graph = validate_graph(spec([OUT, op("a"), SRC], [{"from": "in", "to": "a"}, {"from": "a", "to": "out"}]))
    assert graph.order == ("in", "a", "out")
    assert graph.sources == ("in",)


def test_a_cycle_is_named_with_its_path() -> None:
    found = problems(
        spec(
            [SRC, op("a"), op("b"), OUT],
            [{"from": "in", "to": "a"}, {"from": "a", "to": "b"}, {"from": "b", "to": "a"}, {"from": "b", "to": "out"}],
        )
    )
    assert any("is on a cycle: a -> b -> a" in m for _, m in found)


def test_an_unreachable_node_is_named() -> None:
    found = problems(
        spec(
            [SRC, op("a"), op("b"), op("c"), OUT],
            [{"from": "in", "to": "a"}, {"from": "a", "to": "out"}, {"from": "b", "to": "c"}, {"from": "c", "to": "b"}],
        )
    )
    assert any(w.startswith("spec.nodes[") and "cycle" in m for w, m in found)


def test_a_node_without_input_is_named() -> None:
    found = problems(
        spec(
            [SRC, op("a"), op("b"), OUT],
            [{"from": "in", "to": "a"}, {"from": "a", "to": "out"}, {"from": "b", "to": "out"}],
        )
    )
    assert ("spec.nodes[2] (b)", "has no incoming edge") in found


def test_a_branch_with_one_arm_is_named() -> None:
    found = problems(
        spec([SRC, op("br", "branch"), OUT], [{"from": "in", "to": "br"}, {"from": "br", "to": "out", "arm": True}])
    )
    assert ("spec.nodes[1] (br)", "branch has no edge for arm: false") in found


def test_an_arm_on_a_non_branch_edge_is_named() -> None:
    found = problems(spec([SRC, op("a"), OUT], [{"from": "in", "to": "a"}, {"from": "a", "to": "out", "arm": True}]))
    assert ("spec.edges[1] (a -> out)", "has arm: true, but a is not a branch") in found


def test_an_edge_into_a_source_and_out_of_a_sink_are_named() -> None:
    found = problems(
        spec([SRC, op("a"), OUT], [{"from": "in", "to": "a"}, {"from": "a", "to": "out"}, {"from": "out", "to": "in"}])
    )
    where = [w for w, _ in found]
    assert "spec.edges[2] (out -> in)" in where


def test_a_dead_end_operator_is_named() -> None:
    found = problems(
        spec(
            [SRC, op("a"), op("b"), OUT],
            [{"from": "in", "to": "a"}, {"from": "in", "to": "b"}, {"from": "a", "to": "out"}],
        )
    )
    assert ("spec.nodes[2] (b)", "has no outgoing edge: its messages would go nowhere") in found


def test_fan_in_is_allowed() -> None:
    graph = validate_graph(
        spec(
            [SRC, op("a"), op("b"), op("merge"), OUT],
            [
                {"from": "in", "to": "a"},
                {"from": "in", "to": "b"},
                {"from": "a", "to": "merge"},
                {"from": "b", "to": "merge"},
                {"from": "merge", "to": "out"},
            ],
        )
    )
    assert set(graph.predecessors["merge"]) == {"a", "b"}


def test_every_problem_is_reported_at_once() -> None:
    found = problems(
        spec(
            [SRC, op("a"), op("br", "branch"), OUT],
            [{"from": "in", "to": "a"}, {"from": "a", "to": "out", "arm": False}],
        )
    )
    assert len(found) >= 3
