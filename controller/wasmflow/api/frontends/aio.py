"""The AIO front-end: an Azure IoT Operations graph definition (the YAML AIO publishes as
``application/vnd.microsoft.aio.graph.v1+yaml``) as the graph IR (``api/graph.py``).

A graph definition names its ``operations`` (source, map, filter, branch, accumulate, delay, concatenate, sink; the
operators name a ``module`` as ``repository:tag``), wires them with ``connections`` (``from.arm`` "True"/"False"
leaves a branch), and declares ``moduleConfigurations``: per operation, the parameters its ``init`` receives, with
their defaults. ``parse_graph`` reads the YAML unchanged; ``definition_graph`` checks it (every problem at once, each
naming the operation or connection) and orders it for the runtime. A branch arm without a connection drops its items
(AIO's semantics), so it becomes the node's ``drop_arm``. ``dataflow_definition_graph`` does the same for a
Dataflow's ``spec.graph``, with its sources and sinks bound to endpoints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from wasmflow.api.dataflow import DataflowSpec
from wasmflow.api.dataflow_graph import GraphPort
from wasmflow.api.graph import Graph, GraphError, GraphNode, GraphProblem, Step, Wire, Wording, check_graph
from wasmflow.errors import ConfigError

#: AIO's names for a graph's parts, in the problems the check reports.
AIO_WORDING = Wording(
    node="operation",
    edge="connection",
    items="items",
    nodes_at="operations",
    step_noun="{step}",
    arm_needed='leaves a branch: set from.arm to "True" or "False"',
    arm_given="from.arm",
    arm_missing="branch has no connection for arm {arm}",
)


class _Aio(BaseModel):
    """AIO's own field names (camelCase, ``$schema``); unknown fields are kept, as AIO's schema evolves."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


class GraphMetadata(_Aio):
    name: str = ""
    description: str = ""
    version: str = ""
    schema_: str | None = Field(default=None, alias="$schema")
    vendor: str = ""


class Feature(_Aio):
    name: str


class ModuleRequirements(_Aio):
    api_version: str = Field(alias="apiVersion")
    runtime_version: str = Field(alias="runtimeVersion")
    features: list[Feature] = Field(default_factory=list)


class Parameter(_Aio):
    name: str = ""
    description: str = ""
    default: str | None = None
    required: bool = False

    @field_validator("default", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        """A default is text for ``init``; YAML may write it as a number or boolean, never as a list or mapping
        (turning a structure into text is unbounded work: the way an alias bomb explodes)."""
        if value is None:
            return None
        if not isinstance(value, str | int | float | bool):
            raise ValueError(f"a parameter default must be text, a number or a boolean, not a {type(value).__name__}")
        return str(value)


class ModuleConfiguration(_Aio):
    name: str
    parameters: dict[str, Parameter] = Field(default_factory=dict)


class Operation(_Aio):
    operation_type: Step = Field(alias="operationType")
    name: str = Field(min_length=1)
    module: str | None = None


class ConnectionEnd(_Aio):
    name: str
    arm: str | None = None

    @field_validator("arm", mode="before")
    @classmethod
    def _arm(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return "True" if value else "False"
        return value


class Connection(_Aio):
    from_: ConnectionEnd = Field(alias="from")
    to: ConnectionEnd


class GraphDefinition(_Aio):
    metadata: GraphMetadata = Field(default_factory=GraphMetadata)
    module_requirements: ModuleRequirements | None = Field(default=None, alias="moduleRequirements")
    module_configurations: list[ModuleConfiguration] = Field(default_factory=list, alias="moduleConfigurations")
    operations: list[Operation]
    connections: list[Connection] = Field(default_factory=list)
    schemas: list[Any] = Field(default_factory=list)

    def parameters(self, operation: str, overrides: Mapping[str, str] | None = None) -> tuple[tuple[str, str], ...]:
        """What ``init`` of ``operation`` receives: each declared parameter's value (override, else default)."""
        values: dict[str, str] = {}
        for configuration in self.module_configurations:
            if configuration.name != operation:
                continue
            for key, parameter in configuration.parameters.items():
                if parameter.default is not None:
                    values[key] = parameter.default
        values.update(overrides or {})
        return tuple(values.items())


def parse_graph(text: str, where: str = "graph") -> GraphDefinition:
    """The graph definition in ``text`` (YAML or JSON); ConfigError names the field that is wrong.

    Parsed by ``yaml_input``: at most ``MAX_GRAPH_BYTES``, no anchors or aliases (a definition comes from whoever
    may create a Dataflow or push to the registry, and one alias bomb would take the controller down for all).
    """
    from wasmflow.api.yaml_input import MAX_GRAPH_BYTES, load_yaml  # noqa: PLC0415 - few workers parse YAML

    document = load_yaml(text, where, max_bytes=MAX_GRAPH_BYTES)
    if not isinstance(document, dict):
        raise ConfigError("a graph definition is a mapping with operations and connections", where=where)
    try:
        return GraphDefinition.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {first['msg'].removeprefix('Value error, ')}", where=where) from exc


def definition_graph(
    definition: GraphDefinition,
    parameters: Mapping[str, Mapping[str, str]] | None = None,
    sources: Mapping[str, GraphPort] | None = None,
    sinks: Mapping[str, GraphPort] | None = None,
    at: str = "",
) -> Graph:
    """The graph of ``definition`` in topological order; GraphError lists every problem, naming
    ``operations[i] (name)`` or ``connections[j] (from -> to)`` (after ``at``, where the definition sits).

    ``parameters`` override the declared defaults per operation; ``sources``/``sinks`` bind source and sink
    operations to an endpoint and a topic (a Dataflow's ``spec.graph``).
    """
    parameters = parameters or {}
    ports = {**(sources or {}), **(sinks or {})}
    problems: list[GraphProblem] = []
    wires: list[Wire] = []
    for j, connection in enumerate(definition.connections):
        source, target, arm_text = connection.from_.name, connection.to.name, connection.from_.arm
        where = f"{at}connections[{j}] ({source} -> {target})"
        if arm_text is not None and arm_text not in ("True", "False"):
            problems.append(GraphProblem(where, f'from.arm must be "True" or "False", not {arm_text!r}'))
            continue
        wires.append(Wire(source, target, None if arm_text is None else arm_text == "True", where))
    nodes = []
    for i, operation in enumerate(definition.operations):
        name, step = operation.name, operation.operation_type
        arms = {w.arm for w in wires if w.source == name and w.arm is not None}
        port = ports.get(name) if step in (Step.SOURCE, Step.SINK) else None
        nodes.append(
            GraphNode(
                name=name,
                step=step,
                where=f"{at}operations[{i}] ({name})",
                module=operation.module or None,
                parameters=definition.parameters(name, parameters.get(name)),
                drop_arm=next(iter({True, False} - arms)) if step is Step.BRANCH and len(arms) == 1 else None,
                endpoint=port.endpoint if port else None,
                topic=port.topic if port else None,
            )
        )
    wording = dataclasses.replace(AIO_WORDING, nodes_at=f"{at}operations")
    return check_graph(nodes, wires, wording, also=problems)


def dataflow_definition_graph(spec: DataflowSpec) -> Graph | None:
    """The graph of a Dataflow's inline ``spec.graph.definition``, every source and sink bound to an endpoint;
    None for a definition given as an artifact (the controller checks it once pulled)."""
    graph = spec.graph
    if graph is None:
        raise GraphError([GraphProblem("spec.graph", "is not set: the Dataflow runs its spec.nodes")])
    if graph.definition is None:
        return None
    at = "spec.graph.definition "
    try:
        definition = parse_graph(graph.definition, "spec.graph.definition")
    except ConfigError as exc:
        raise GraphError([GraphProblem("spec.graph.definition", exc.message)]) from exc
    result = definition_graph(definition, graph.parameters, graph.sources, graph.sinks, at=at)
    problems = [
        GraphProblem(f"spec.graph.{role}", f"{step} operation {name} is not bound to an endpoint")
        for role, step, names, bound in (
            ("sources", "source", result.sources, graph.sources),
            ("sinks", "sink", result.sinks, graph.sinks),
        )
        for name in names
        if name not in bound
    ]
    if problems:
        raise GraphError(problems)
    return result
