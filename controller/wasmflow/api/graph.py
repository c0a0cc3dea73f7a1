"""The one graph check, shared by the engine (``wasmflow run``, the worker) and the controller (status).

It reports every problem at once, each naming the node (``spec.nodes[i] (name)``) or the edge
(``spec.edges[j] (from -> to)``) so the user can fix the manifest in one pass. Several edges into one node are
allowed: that is a fan-in, and the node sees the merged stream. A branch wires both arms, unless ``dropArm`` says
which arm's messages are dropped on purpose.

Most reference problems are already refused when the model is parsed (the mirrors of the CRD's CEL rules); this check
repeats them so a spec built any other way (``model_construct``, a worker's config) gets the same answers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from wasmflow.api.dataflow import DataflowSpec, NodeType
from wasmflow.api.kinds import OperatorKind
from wasmflow.errors import ConfigError

_E = TypeVar("_E")


@dataclass(frozen=True)
class GraphProblem:
    where: str
    message: str


class GraphError(ConfigError):
    """The graph is invalid; ``problems`` lists every reason."""

    def __init__(self, problems: list[GraphProblem]) -> None:
        self.problems = problems
        text = "; ".join(f"{p.where}: {p.message}" for p in problems)
        super().__init__(f"invalid graph: {text}", where="spec")


@dataclass(frozen=True)
class Successor:
    node: str
    arm: bool | None


@dataclass(frozen=True)
class Graph:
    """A valid graph: nodes in topological order, and who feeds whom."""

    order: tuple[str, ...]
    successors: dict[str, tuple[Successor, ...]] = field(default_factory=dict)
    predecessors: dict[str, tuple[str, ...]] = field(default_factory=dict)
    types: dict[str, NodeType] = field(default_factory=dict)

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(n for n in self.order if self.types[n] is NodeType.SOURCE)

    @property
    def sinks(self) -> tuple[str, ...]:
        return tuple(n for n in self.order if self.types[n] is NodeType.SINK)


def validate_graph(spec: DataflowSpec, modules: Mapping[str, OperatorKind] | None = None) -> Graph:
    """Check the graph of ``spec`` and return it in topological order, or raise GraphError with every problem.

    ``modules`` (WasmModule name -> its ``spec.operator``), when the caller knows them, is checked too: each operator
    node must name one of them, of the node's own kind.
    """
    if spec.graph is not None:
        return _check_aio_graph(spec)
    problems: list[GraphProblem] = []
    index = {n.name: i for i, n in enumerate(spec.nodes)}
    types = {n.name: n.type for n in spec.nodes}

    def at_node(name: str) -> str:
        return f"spec.nodes[{index[name]}] ({name})"

    successors: dict[str, list[Successor]] = {n.name: [] for n in spec.nodes}
    predecessors: dict[str, list[str]] = {n.name: [] for n in spec.nodes}
    seen: set[tuple[str, str, bool | None]] = set()
    for j, edge in enumerate(spec.edges):
        where = f"spec.edges[{j}] ({edge.from_} -> {edge.to})"
        if edge.from_ not in index or edge.to not in index:
            missing = [n for n in (edge.from_, edge.to) if n not in index]
            problems.append(GraphProblem(where, f"names node(s) that do not exist: {', '.join(missing)}"))
            continue
        key = (edge.from_, edge.to, edge.arm)
        if key in seen:
            problems.append(GraphProblem(where, "duplicates an earlier edge"))
            continue
        seen.add(key)
        if types[edge.from_] is NodeType.BRANCH and edge.arm is None:
            problems.append(GraphProblem(where, "leaves a branch node: set arm: true or arm: false"))
        if types[edge.from_] is not NodeType.BRANCH and edge.arm is not None:
            problems.append(GraphProblem(where, f"has arm: {str(edge.arm).lower()}, but {edge.from_} is not a branch"))
        if types[edge.to] is NodeType.SOURCE:
            problems.append(GraphProblem(where, f"points into source {edge.to}: sources take no input"))
        if types[edge.from_] is NodeType.SINK:
            problems.append(GraphProblem(where, f"leaves sink {edge.from_}: sinks have no output"))
        successors[edge.from_].append(Successor(edge.to, edge.arm))
        predecessors[edge.to].append(edge.from_)

    names = [n.name for n in spec.nodes]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(GraphProblem(at_node(name), "shares its name with another node"))
    for node in spec.nodes:
        name, kind = node.name, node.type
        if kind.is_operator and node.module is None:
            problems.append(GraphProblem(at_node(name), f"is a {kind.value} node but names no module"))
        if not kind.is_operator and node.endpoint not in spec.endpoints:
            problems.append(GraphProblem(at_node(name), f"names endpoint {node.endpoint!r}, not in spec.endpoints"))
        if kind is not NodeType.SOURCE and not predecessors[name]:
            problems.append(GraphProblem(at_node(name), "has no incoming edge"))
        if kind is not NodeType.SINK and not successors[name]:
            problems.append(GraphProblem(at_node(name), "has no outgoing edge: its messages would go nowhere"))
        if kind is NodeType.BRANCH:
            arms = {s.arm for s in successors[name]}
            for arm in (True, False):
                text = str(arm).lower()
                if arm in arms and node.drop_arm is arm:
                    problems.append(GraphProblem(at_node(name), f"drops arm {text} (dropArm) but has an edge for it"))
                elif arm not in arms and node.drop_arm is not arm:
                    problems.append(
                        GraphProblem(at_node(name), f"branch has no edge for arm: {text} (or set dropArm: {text})")
                    )

    if not any(n.type is NodeType.SOURCE for n in spec.nodes):
        problems.append(GraphProblem("spec.nodes", "the graph has no source"))
    if not any(n.type is NodeType.SINK for n in spec.nodes):
        problems.append(GraphProblem("spec.nodes", "the graph has no sink"))

    order = topological_order(successors, lambda s: s.node)
    if order is None:
        cycle = _find_cycle(successors)
        problems.append(GraphProblem(at_node(cycle[0]), "is on a cycle: " + " -> ".join(cycle)))
    else:
        reachable = _reachable([n.name for n in spec.nodes if n.type is NodeType.SOURCE], successors)
        for node in spec.nodes:
            if node.name not in reachable and predecessors[node.name]:  # (no input at all is reported above)
                problems.append(GraphProblem(at_node(node.name), "is not reachable from any source"))

    if modules is not None:
        problems += _module_problems(spec, modules, at_node)

    if problems:
        raise GraphError(problems)
    assert order is not None
    graph = Graph(
        order=tuple(order),
        successors={k: tuple(v) for k, v in successors.items()},
        predecessors={k: tuple(v) for k, v in predecessors.items()},
        types=types,
    )
    problems = _window_problems(spec, graph, at_node)
    if problems:
        raise GraphError(problems)
    return graph


#: The most QoS 1 messages an MQTT v5 client can hold unacknowledged: the largest Receive Maximum (2 bytes).
MAX_IN_FLIGHT = 65535


def held_by_windows(spec: DataflowSpec, graph: Graph, source: str) -> tuple[int | None, dict[str, int | None]]:
    """How many of ``source``'s messages accumulate windows may hold unacknowledged at once, and at each node.

    A window acknowledges what it folded only when it closes (at-least-once), so a count window of N holds N
    inputs, and windows in series multiply (each output of the first carries N inputs). ``None`` is "no bound":
    a duration-only window holds whatever arrives in its duration. 1 means no window is downstream.
    """
    nodes = {n.name: n for n in spec.nodes}
    held: dict[str, int | None] = {}
    for name in graph.order:
        if name == source:
            held[name] = 1
            continue
        inputs = [held[p] for p in graph.predecessors.get(name, ()) if p in held]
        if not inputs:
            continue
        before = None if None in inputs else max(i for i in inputs if i is not None)
        window = nodes[name].window if graph.types[name] is NodeType.ACCUMULATE else None
        if window is None or before is None:
            held[name] = before
        else:
            held[name] = None if window.count is None else min(before * window.count, MAX_IN_FLIGHT + 1)
    values = list(held.values())
    overall = None if None in values else max((v for v in values if v is not None), default=1)
    return overall, held


def _window_problems(spec: DataflowSpec, graph: Graph, at_node: Callable[[str], str]) -> list[GraphProblem]:
    """Count windows that could never fill over a QoS 1 source: the broker stops sending at the source's
    Receive Maximum, and no Receive Maximum covers more than MAX_IN_FLIGHT held messages."""
    problems: list[GraphProblem] = []
    nodes = {n.name: n for n in spec.nodes}
    reported: set[str] = set()
    for source in graph.sources:
        endpoint = spec.endpoints.get(nodes[source].endpoint or "")
        if endpoint is None or endpoint.mqtt.qos != 1:
            continue
        _overall, held = held_by_windows(spec, graph, source)
        for name in graph.order:
            count = held.get(name)
            if count is None or count <= MAX_IN_FLIGHT or name in reported:
                continue
            if any((held.get(p) or 0) > MAX_IN_FLIGHT for p in graph.predecessors.get(name, ())):
                continue  # reported where it first went over
            reported.add(name)
            problems.append(
                GraphProblem(
                    f"{at_node(name)}.window.count",
                    f"the window acknowledges its messages only when it closes, so it would hold more than "
                    f"{MAX_IN_FLIGHT} unacknowledged messages of QoS 1 source {source} (with the count windows "
                    f"before it), more than MQTT lets a client hold (Receive Maximum): it could never fill. "
                    f"Lower window.count, or use qos: 0 on endpoint {nodes[source].endpoint}",
                )
            )
    return problems


def _check_aio_graph(spec: DataflowSpec) -> Graph:
    """A Dataflow running an AIO graph definition: an inline one is checked here (an artifact by the worker, which
    pulls it), with every source and sink bound to an endpoint. Its nodes are AIO's, so the Graph is empty."""
    from wasmflow.api.aio_graph import parse_graph, plan_graph  # noqa: PLC0415 - aio_graph builds on this module

    assert spec.graph is not None
    if spec.graph.definition is None:
        return Graph(order=())
    try:
        plan = plan_graph(parse_graph(spec.graph.definition, "spec.graph.definition"))
    except GraphError as exc:
        raise GraphError([GraphProblem(f"spec.graph.definition {p.where}", p.message) for p in exc.problems]) from exc
    except ConfigError as exc:
        raise GraphError([GraphProblem("spec.graph.definition", exc.message)]) from exc
    problems = [
        GraphProblem(f"spec.graph.{role}", f"{kind} operation {name} is not bound to an endpoint")
        for role, kind, names, bound in (
            ("sources", "source", plan.sources, spec.graph.sources),
            ("sinks", "sink", plan.sinks, spec.graph.sinks),
        )
        for name in names
        if name not in bound
    ]
    if problems:
        raise GraphError(problems)
    return Graph(order=())


def _module_problems(
    spec: DataflowSpec, modules: Mapping[str, OperatorKind], at_node: Callable[[str], str]
) -> list[GraphProblem]:
    problems = []
    for node in spec.nodes:
        if not node.type.is_operator or node.module is None:
            continue
        kind = modules.get(node.module)
        if kind is None:
            problems.append(GraphProblem(at_node(node.name), f"names WasmModule {node.module}, which does not exist"))
        elif kind.value != node.type.value:
            problems.append(
                GraphProblem(
                    at_node(node.name),
                    f"is a {node.type.value} node, but WasmModule {node.module} is a {kind.value} operator",
                )
            )
    return problems


def topological_order(successors: Mapping[str, Sequence[_E]], target: Callable[[_E], str]) -> list[str] | None:
    """Kahn's order of the nodes (keys of ``successors``, ties in key order); None when the edges form a cycle.
    ``target`` names the node an edge leads to, so our Successors and AIO's Edges (api/aio_graph.py) share it."""
    indegree = dict.fromkeys(successors, 0)
    for outs in successors.values():
        for s in outs:
            indegree[target(s)] += 1
    queue = deque(n for n, d in indegree.items() if d == 0)
    order = []
    while queue:
        node = queue.popleft()
        order.append(node)
        for s in successors[node]:
            indegree[target(s)] -= 1
            if indegree[target(s)] == 0:
                queue.append(target(s))
    return order if len(order) == len(successors) else None


def _find_cycle(successors: dict[str, list[Successor]]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for s in successors[node]:
            if state.get(s.node) == 1:
                return [*stack[stack.index(s.node) :], s.node]
            if s.node not in state and (found := visit(s.node)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in successors:
        if start not in state and (found := visit(start)):
            return found
    return []


def _reachable(starts: list[str], successors: dict[str, list[Successor]]) -> set[str]:
    seen = set(starts)
    queue = deque(starts)
    while queue:
        for s in successors[queue.popleft()]:
            if s.node not in seen:
                seen.add(s.node)
                queue.append(s.node)
    return seen
