"""The graph IR's one check, on nodes and wires written directly (each front-end has its own tests)."""

from __future__ import annotations

import pytest

from wasmflow.api.graph import (
    DATAFLOW_WORDING,
    Edge,
    GraphError,
    GraphNode,
    GraphProblem,
    Step,
    Wire,
    Wording,
    check_graph,
)


def node(name: str, step: Step = Step.MAP, drop_arm: bool | None = None) -> GraphNode:
    module = name if step.takes_module else None
    return GraphNode(name=name, step=step, where=f"n({name})", module=module, drop_arm=drop_arm)


def wire(source: str, target: str, arm: bool | None = None) -> Wire:
    return Wire(source, target, arm, f"w({source}->{target})")


SRC, OUT = node("in", Step.SOURCE), node("out", Step.SINK)


def problems(nodes: list[GraphNode], wires: list[Wire], wording: Wording = DATAFLOW_WORDING) -> set[tuple[str, str]]:
    with pytest.raises(GraphError) as caught:
        check_graph(nodes, wires, wording)
    return {(p.where, p.message) for p in caught.value.problems}


def test_a_valid_graph_is_ordered_with_its_sources_and_sinks() -> None:
    graph = check_graph([OUT, node("a"), SRC], [wire("in", "a"), wire("a", "out")])
    assert graph.order == ("in", "a", "out")
    assert (graph.sources, graph.sinks) == (("in",), ("out",))
    assert graph.nodes["a"].module == "a"


def test_each_input_of_a_fan_in_has_its_own_port() -> None:
    nodes = [SRC, node("a"), node("b"), node("cat", Step.CONCATENATE), OUT]
    graph = check_graph(
        nodes, [wire("in", "a"), wire("in", "b"), wire("a", "cat"), wire("b", "cat"), wire("cat", "out")]
    )
    assert graph.inputs["cat"] == (Edge("a", "cat", None, 0), Edge("b", "cat", None, 1))
    assert graph.predecessors("cat") == ("a", "b")


def test_a_branch_edge_carries_its_arm() -> None:
    nodes = [SRC, node("br", Step.BRANCH), OUT, node("alerts", Step.SINK)]
    graph = check_graph(nodes, [wire("in", "br"), wire("br", "alerts", True), wire("br", "out", False)])
    assert {(e.target, e.arm) for e in graph.outputs["br"]} == {("alerts", True), ("out", False)}


def test_a_dropped_arm_needs_no_edge() -> None:
    graph = check_graph(
        [SRC, node("br", Step.BRANCH, drop_arm=False), OUT], [wire("in", "br"), wire("br", "out", True)]
    )
    assert graph.nodes["br"].drop_arm is False


def test_a_branch_arm_without_an_edge_is_named() -> None:
    found = problems([SRC, node("br", Step.BRANCH), OUT], [wire("in", "br"), wire("br", "out", True)])
    assert found == {("n(br)", "branch has no edge for arm: false (or set dropArm: false)")}


def test_a_dropped_arm_with_an_edge_is_named() -> None:
    nodes = [SRC, node("br", Step.BRANCH, drop_arm=True), OUT]
    found = problems(nodes, [wire("in", "br"), wire("br", "out", True), wire("br", "out", False)])
    assert found == {("n(br)", "drops arm true (dropArm) but has an edge for it")}


def test_an_arm_is_set_only_on_edges_leaving_a_branch() -> None:
    nodes = [SRC, node("a"), node("br", Step.BRANCH, drop_arm=False), OUT]
    found = problems(nodes, [wire("in", "a", True), wire("a", "br"), wire("br", "out")])
    assert found == {
        ("w(in->a)", "has arm: true, but in is not a branch"),
        ("w(br->out)", "leaves a branch node: set arm: true or arm: false"),
        ("n(br)", "branch has no edge for arm: true (or set dropArm: true)"),
    }


def test_drop_arm_on_a_node_that_is_not_a_branch_is_named() -> None:
    found = problems([SRC, node("a", drop_arm=True), OUT], [wire("in", "a"), wire("a", "out")])
    assert found == {("n(a)", "drops an arm (dropArm) but is not a branch")}


def test_a_name_used_twice_is_named_where_it_repeats() -> None:
    found = problems(
        [SRC, node("a"), GraphNode("a", Step.FILTER, "n(a)#2", "f"), OUT], [wire("in", "a"), wire("a", "out")]
    )
    assert found == {("n(a)#2", "shares its name with another node")}


def test_an_edge_naming_a_missing_node_and_a_repeated_edge_are_named() -> None:
    found = problems([SRC, node("a"), OUT], [wire("in", "a"), wire("a", "out"), wire("a", "out"), wire("a", "ghost")])
    assert found == {
        ("w(a->out)", "duplicates an earlier edge"),
        ("w(a->ghost)", "names node(s) that do not exist: ghost"),
    }


def test_nothing_enters_a_source_and_nothing_leaves_a_sink() -> None:
    nodes = [SRC, node("a"), OUT, node("out2", Step.SINK)]
    found = problems(nodes, [wire("in", "a"), wire("a", "out"), wire("a", "in"), wire("out", "out2")])
    assert ("w(a->in)", "points into source in: sources take no input") in found
    assert ("w(out->out2)", "leaves sink out: sinks have no output") in found


def test_a_module_is_named_exactly_by_the_steps_that_run_one() -> None:
    nodes = [
        GraphNode("in", Step.SOURCE, "n(in)", module="m"),
        GraphNode("a", Step.MAP, "n(a)"),
        GraphNode("d", Step.DELAY, "n(d)", module="d"),
        GraphNode("cat", Step.CONCATENATE, "n(cat)"),
        OUT,
    ]
    found = problems(nodes, [wire("in", "a"), wire("a", "d"), wire("d", "cat"), wire("cat", "out")])
    assert found == {("n(in)", "is a source node and takes no module"), ("n(a)", "is a map node but names no module")}


def test_a_node_without_input_or_output_is_named() -> None:
    found = problems([SRC, node("a"), node("b"), OUT], [wire("in", "a"), wire("a", "out"), wire("in", "b")])
    assert found == {("n(b)", "has no outgoing edge: its messages would go nowhere")}
    found = problems([SRC, node("a"), node("b"), OUT], [wire("in", "a"), wire("a", "out"), wire("b", "out")])
    assert found == {("n(b)", "has no incoming edge")}


def test_a_graph_without_a_source_or_a_sink_is_refused() -> None:
    found = problems([node("a"), node("b")], [wire("a", "b")])
    assert ("spec.nodes", "the graph has no source") in found
    assert ("spec.nodes", "the graph has no sink") in found


def test_a_cycle_is_named_with_its_path() -> None:
    nodes = [SRC, node("a"), node("b"), OUT]
    found = problems(nodes, [wire("in", "a"), wire("a", "b"), wire("b", "a"), wire("b", "out")])
    assert found == {("n(a)", "is on a cycle: a -> b -> a")}


def test_a_node_fed_only_by_unreachable_nodes_is_named() -> None:
    nodes = [SRC, node("a"), node("b"), node("c"), OUT]
    found = problems(nodes, [wire("in", "a"), wire("a", "out"), wire("b", "c"), wire("c", "out")])
    assert found == {("n(b)", "has no incoming edge"), ("n(c)", "is not reachable from any source")}


def test_the_front_end_words_its_problems() -> None:
    words = Wording(node="operation", edge="connection", items="items", nodes_at="operations", step_noun="{step}")
    found = problems([SRC, node("a"), node("b")], [wire("in", "a"), wire("a", "ghost")], words)
    assert found == {
        ("w(a->ghost)", "names operation(s) that do not exist: ghost"),
        ("n(a)", "has no outgoing connection: its items would go nowhere"),
        ("n(b)", "has no incoming connection"),
        ("n(b)", "has no outgoing connection: its items would go nowhere"),
        ("operations", "the graph has no sink"),
    }


def test_the_front_ends_own_problems_come_with_the_checks() -> None:
    with pytest.raises(GraphError) as caught:
        check_graph([SRC, node("a"), OUT], [wire("in", "a"), wire("a", "out")], also=[GraphProblem("x", "bad")])
    assert [(p.where, p.message) for p in caught.value.problems] == [("x", "bad")]
    assert str(caught.value) == "spec: invalid graph: x: bad"
