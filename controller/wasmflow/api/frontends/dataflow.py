"""The Dataflow front-end: a Dataflow's ``spec.nodes`` and ``spec.edges`` as the graph IR (``api/graph.py``).

Besides the graph checks (done once, by ``check_graph``) a Dataflow's nodes must name declared endpoints, their
WasmModules must be of the node's kind (when the caller knows them), and a count window over a QoS 1 source must be
one MQTT can fill. A Dataflow that runs an AIO graph definition (``spec.graph``) goes through the AIO front-end.

Most reference problems are already refused when the model is parsed (the mirrors of the CRD's CEL rules); this
front-end repeats them so a spec built any other way (``model_construct``, a worker's config) gets the same answers.
"""

from __future__ import annotations

from collections.abc import Mapping

from wasmflow.api.dataflow import DataflowSpec, Node
from wasmflow.api.graph import Graph, GraphError, GraphNode, GraphProblem, Step, Wire, check_graph
from wasmflow.api.kinds import OperatorKind

#: The most QoS 1 messages an MQTT v5 client can hold unacknowledged: the largest Receive Maximum (2 bytes).
MAX_IN_FLIGHT = 65535


def node_where(index: int, name: str) -> str:
    return f"spec.nodes[{index}] ({name})"


def dataflow_graph(spec: DataflowSpec, modules: Mapping[str, OperatorKind] | None = None) -> Graph:
    """The graph of ``spec.nodes``/``spec.edges`` in topological order, or GraphError with every problem.

    ``modules`` (WasmModule name -> its ``spec.operator``), when the caller knows them, is checked too: each operator
    node must name one of them, of the node's own kind.
    """
    if spec.graph is not None:
        raise GraphError([GraphProblem("spec.graph", "the Dataflow runs an AIO graph definition, not spec.nodes")])
    nodes = [_node(i, node) for i, node in enumerate(spec.nodes)]
    wires = [
        Wire(edge.from_, edge.to, edge.arm, f"spec.edges[{j}] ({edge.from_} -> {edge.to})")
        for j, edge in enumerate(spec.edges)
    ]
    also = [
        GraphProblem(n.where, f"names endpoint {n.endpoint!r}, not in spec.endpoints")
        for n in nodes
        if not n.step.takes_module and n.endpoint not in spec.endpoints
    ]
    if modules is not None:
        also += _module_problems(nodes, modules)
    graph = check_graph(nodes, wires, also=also)
    problems = _window_problems(spec, graph)
    if problems:
        raise GraphError(problems)
    return graph


def _node(index: int, node: Node) -> GraphNode:
    return GraphNode(
        name=node.name,
        step=Step(node.type.value),
        where=node_where(index, node.name),
        module=node.module,
        parameters=tuple(node.configuration.items()),
        window=node.window,
        error_policy=node.error_policy,
        drop_arm=node.drop_arm,
        endpoint=node.endpoint,
        topic=node.topic,
    )


def held_by_windows(graph: Graph, source: str) -> tuple[int | None, dict[str, int | None]]:
    """How many of ``source``'s messages accumulate windows may hold unacknowledged at once, and at each node.

    A window acknowledges what it folded only when it closes (at-least-once), so a count window of N holds N
    inputs, and windows in series multiply (each output of the first carries N inputs). ``None`` is "no bound":
    a duration-only window holds whatever arrives in its duration. 1 means no window is downstream.
    """
    held: dict[str, int | None] = {}
    for name in graph.order:
        if name == source:
            held[name] = 1
            continue
        inputs = [held[p] for p in graph.predecessors(name) if p in held]
        if not inputs:
            continue
        before = None if None in inputs else max(i for i in inputs if i is not None)
        window = graph.nodes[name].window if graph.step(name) is Step.ACCUMULATE else None
        if window is None or before is None:
            held[name] = before
        else:
            held[name] = None if window.count is None else min(before * window.count, MAX_IN_FLIGHT + 1)
    values = list(held.values())
    overall = None if None in values else max((v for v in values if v is not None), default=1)
    return overall, held


def _window_problems(spec: DataflowSpec, graph: Graph) -> list[GraphProblem]:
    """Count windows that could never fill over a QoS 1 source: the broker stops sending at the source's
    Receive Maximum, and no Receive Maximum covers more than MAX_IN_FLIGHT held messages."""
    problems: list[GraphProblem] = []
    reported: set[str] = set()
    for source in graph.sources:
        endpoint_name = graph.nodes[source].endpoint or ""
        endpoint = spec.endpoints.get(endpoint_name)
        if endpoint is None or endpoint.mqtt.qos != 1:
            continue
        _overall, held = held_by_windows(graph, source)
        for name in graph.order:
            count = held.get(name)
            if count is None or count <= MAX_IN_FLIGHT or name in reported:
                continue
            if any((held.get(p) or 0) > MAX_IN_FLIGHT for p in graph.predecessors(name)):
                continue  # reported where it first went over
            reported.add(name)
            problems.append(
                GraphProblem(
                    f"{graph.nodes[name].where}.window.count",
                    f"the window acknowledges its messages only when it closes, so it would hold more than "
                    f"{MAX_IN_FLIGHT} unacknowledged messages of QoS 1 source {source} (with the count windows "
                    f"before it), more than MQTT lets a client hold (Receive Maximum): it could never fill. "
                    f"Lower window.count, or use qos: 0 on endpoint {endpoint_name}",
                )
            )
    return problems


def _module_problems(nodes: list[GraphNode], modules: Mapping[str, OperatorKind]) -> list[GraphProblem]:
    problems = []
    for node in nodes:
        if not node.step.takes_module or node.module is None:
            continue
        kind = modules.get(node.module)
        if kind is None:
            problems.append(GraphProblem(node.where, f"names WasmModule {node.module}, which does not exist"))
        elif kind.value != node.step.value:
            problems.append(
                GraphProblem(
                    node.where, f"is a {node.step.value} node, but WasmModule {node.module} is a {kind.value} operator"
                )
            )
    return problems
