"""The graph IR: what both front-ends produce and the runtime runs, and the one graph check.

A Dataflow's ``spec.nodes``/``spec.edges`` (``api/frontends/dataflow.py``) and an Azure IoT Operations graph
definition (``api/frontends/aio.py``) each translate into ``GraphNode`` records and ``Wire``s; ``check_graph`` checks
them once and returns a ``Graph`` in topological order, or raises ``GraphError`` listing every problem, each naming
where it was written (``spec.nodes[2] (to-celsius)``, ``connections[1] (b -> out)``) so the user fixes the manifest
in one pass. The front-ends add only what is theirs (endpoints, WasmModule kinds, windows over QoS 1 sources, AIO's
arm text); this module imports no front-end.

Several edges into one node are allowed: that is a fan-in (``Edge.port`` numbers the inputs, which AIO's concatenate
and the timestamp frontier need). A branch wires both arms, unless ``drop_arm`` says which arm's messages are dropped
on purpose.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from wasmflow.api.dataflow import ErrorPolicy, Window
from wasmflow.api.wasmmodule import Limits
from wasmflow.errors import ConfigError

_E = TypeVar("_E")


class Step(enum.StrEnum):
    """What a node does to the messages passing through it."""

    SOURCE = "source"
    MAP = "map"
    FILTER = "filter"
    BRANCH = "branch"
    ACCUMULATE = "accumulate"
    DELAY = "delay"
    CONCATENATE = "concatenate"
    SINK = "sink"

    @property
    def takes_module(self) -> bool:
        """The steps that run an operator module (the others are done by the runtime itself)."""
        return self not in (Step.SOURCE, Step.SINK, Step.CONCATENATE)


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
class GraphNode:
    """One node as the runtime runs it. ``where`` names it in messages (``spec.nodes[2] (to-celsius)``).

    ``module`` is the key the front-end resolves modules by (a WasmModule name; AIO's ``repository:tag``), None for
    the steps that run no module. ``parameters`` are what the operator's ``init`` receives. The rest is set where
    the front-end has it: a Dataflow's window, error policy and endpoint/topic; AIO sources and sinks bound to an
    endpoint by a Dataflow's ``spec.graph``.
    """

    name: str
    step: Step
    where: str
    module: str | None = None
    parameters: tuple[tuple[str, str], ...] = ()
    window: Window | None = None
    """For accumulate nodes of a Dataflow: when the window closes (count and/or duration)."""
    error_policy: ErrorPolicy | None = None
    """The node's own error policy (a Dataflow's ``errorPolicy`` applies when None)."""
    drop_arm: bool | None = None
    """For branches: the arm whose messages are dropped on purpose (it has no edge)."""
    endpoint: str | None = None
    """For sources and sinks: the endpoint (a key of the Dataflow's ``spec.endpoints``)."""
    topic: str | None = None
    """For sources: the topic filter; for sinks: the topic."""
    limits: Limits | None = None
    """Per-node limits when the front-end knows them (the module's own apply when None)."""


@dataclass(frozen=True)
class Wire:
    """An edge as the front-end read it, before the check: ``where`` names it in messages."""

    source: str
    target: str
    arm: bool | None
    where: str


@dataclass(frozen=True)
class Edge:
    """One edge as the runtime runs it; ``port`` is its index among the target's inputs."""

    source: str
    target: str
    arm: bool | None
    port: int


@dataclass(frozen=True)
class Wording:
    """How a front-end's users name things, so each problem reads in the words of the file they wrote."""

    node: str = "node"
    edge: str = "edge"
    items: str = "messages"
    nodes_at: str = "spec.nodes"
    step_noun: str = "{step} node"
    arm_needed: str = "leaves a branch node: set arm: true or arm: false"
    arm_given: str = "arm: {arm}"
    arm_missing: str = "branch has no edge for arm: {arm} (or set dropArm: {arm})"


DATAFLOW_WORDING = Wording()


@dataclass(frozen=True)
class Graph:
    """A valid graph: its nodes, the edges out of and into each, and a topological order."""

    order: tuple[str, ...]
    nodes: Mapping[str, GraphNode] = field(default_factory=dict)
    outputs: Mapping[str, tuple[Edge, ...]] = field(default_factory=dict)
    inputs: Mapping[str, tuple[Edge, ...]] = field(default_factory=dict)

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(n for n in self.order if self.nodes[n].step is Step.SOURCE)

    @property
    def sinks(self) -> tuple[str, ...]:
        return tuple(n for n in self.order if self.nodes[n].step is Step.SINK)

    def step(self, name: str) -> Step:
        return self.nodes[name].step

    def predecessors(self, name: str) -> tuple[str, ...]:
        """The nodes feeding ``name``, one per edge (a node wired twice, by both arms, appears twice)."""
        return tuple(e.source for e in self.inputs[name])


def check_graph(
    nodes: Sequence[GraphNode],
    wires: Sequence[Wire],
    wording: Wording = DATAFLOW_WORDING,
    also: Sequence[GraphProblem] = (),
) -> Graph:
    """The graph checks, once for every front-end: unique names; edges between existing nodes, each once; arms only
    leaving branches, both arms of a branch wired unless dropped; nothing into a source, nothing out of a sink;
    modules where the step runs one; every node with an input and an output; a source and a sink; no cycle; every
    node reachable from a source.

    Returns the graph in topological order, or raises ``GraphError`` with every problem, the front-end's own
    (``also``: endpoints, module kinds) after the check's.
    """
    w = wording
    problems: list[GraphProblem] = []
    by_name: dict[str, GraphNode] = {}
    for node in nodes:
        if node.name in by_name:
            problems.append(GraphProblem(node.where, f"shares its name with another {w.node}"))
            continue
        by_name[node.name] = node
        noun = w.step_noun.format(step=node.step.value)
        if node.step.takes_module and not node.module:
            problems.append(GraphProblem(node.where, f"is a {noun} but names no module"))
        if not node.step.takes_module and node.module:
            problems.append(GraphProblem(node.where, f"is a {noun} and takes no module"))

    outputs: dict[str, list[Edge]] = {name: [] for name in by_name}
    inputs: dict[str, list[Edge]] = {name: [] for name in by_name}
    seen: set[tuple[str, str, bool | None]] = set()
    for wire in wires:
        source, target, where = wire.source, wire.target, wire.where
        missing = [n for n in (source, target) if n not in by_name]
        if missing:
            problems.append(GraphProblem(where, f"names {w.node}(s) that do not exist: {', '.join(missing)}"))
            continue
        if (source, target, wire.arm) in seen:
            problems.append(GraphProblem(where, f"duplicates an earlier {w.edge}"))
            continue
        seen.add((source, target, wire.arm))
        from_step, to_step = by_name[source].step, by_name[target].step
        if from_step is Step.BRANCH and wire.arm is None:
            problems.append(GraphProblem(where, w.arm_needed))
        if from_step is not Step.BRANCH and wire.arm is not None:
            given = w.arm_given.format(arm=str(wire.arm).lower())
            problems.append(GraphProblem(where, f"has {given}, but {source} is not a branch"))
        if to_step is Step.SOURCE:
            problems.append(GraphProblem(where, f"points into source {target}: sources take no input"))
        if from_step is Step.SINK:
            problems.append(GraphProblem(where, f"leaves sink {source}: sinks have no output"))
        edge = Edge(source, target, wire.arm, len(inputs[target]))
        outputs[source].append(edge)
        inputs[target].append(edge)

    for name, node in by_name.items():
        if node.step is not Step.SOURCE and not inputs[name]:
            problems.append(GraphProblem(node.where, f"has no incoming {w.edge}"))
        if node.step is not Step.SINK and not outputs[name]:
            problems.append(GraphProblem(node.where, f"has no outgoing {w.edge}: its {w.items} would go nowhere"))
        if node.step is Step.BRANCH:
            problems += _arm_problems(node, {e.arm for e in outputs[name]}, w)
        elif node.drop_arm is not None:
            problems.append(GraphProblem(node.where, "drops an arm (dropArm) but is not a branch"))
    steps = {n.step for n in by_name.values()}
    if Step.SOURCE not in steps:
        problems.append(GraphProblem(w.nodes_at, "the graph has no source"))
    if Step.SINK not in steps:
        problems.append(GraphProblem(w.nodes_at, "the graph has no sink"))

    order = topological_order(outputs, lambda edge: edge.target)
    if order is None:
        cycle = _find_cycle(outputs)
        problems.append(GraphProblem(by_name[cycle[0]].where, "is on a cycle: " + " -> ".join(cycle)))
    else:
        reachable = _reachable([n for n, node in by_name.items() if node.step is Step.SOURCE], outputs)
        for name, node in by_name.items():
            if name not in reachable and inputs[name]:  # (no input at all is reported above)
                problems.append(GraphProblem(node.where, "is not reachable from any source"))
    problems += also
    if problems:
        raise GraphError(problems)
    assert order is not None  # (a cycle is a problem)
    return Graph(
        order=tuple(order),
        nodes=by_name,
        outputs={k: tuple(v) for k, v in outputs.items()},
        inputs={k: tuple(v) for k, v in inputs.items()},
    )


def _arm_problems(node: GraphNode, arms: set[bool | None], w: Wording) -> list[GraphProblem]:
    problems = []
    for arm in (True, False):
        text = str(arm).lower()
        if arm in arms and node.drop_arm is arm:
            problems.append(GraphProblem(node.where, f"drops arm {text} (dropArm) but has an {w.edge} for it"))
        elif arm not in arms and node.drop_arm is not arm:
            problems.append(GraphProblem(node.where, w.arm_missing.format(arm=text)))
    return problems


def topological_order(successors: Mapping[str, Sequence[_E]], target: Callable[[_E], str]) -> list[str] | None:
    """Kahn's order of the nodes (keys of ``successors``, ties in key order); None when the edges form a cycle.
    ``target`` names the node an edge leads to."""
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


def _find_cycle(outputs: Mapping[str, Sequence[Edge]]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for edge in outputs[node]:
            if state.get(edge.target) == 1:
                return [*stack[stack.index(edge.target) :], edge.target]
            if edge.target not in state and (found := visit(edge.target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in outputs:
        if start not in state and (found := visit(start)):
            return found
    raise AssertionError("topological_order found a cycle that _find_cycle did not")


def _reachable(starts: list[str], outputs: Mapping[str, Sequence[Edge]]) -> set[str]:
    seen = set(starts)
    queue = deque(starts)
    while queue:
        for edge in outputs[queue.popleft()]:
            if edge.target not in seen:
                seen.add(edge.target)
                queue.append(edge.target)
    return seen
