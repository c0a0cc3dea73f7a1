"""Azure IoT Operations graph definitions (the YAML AIO publishes as ``application/vnd.microsoft.aio.graph.v1+yaml``).

A graph definition names its ``operations`` (source, map, filter, branch, accumulate, delay, concatenate, sink; the
operators name a ``module`` as ``repository:tag``), wires them with ``connections`` (``from.arm`` "True"/"False"
leaves a branch), and declares ``moduleConfigurations``: per operation, the parameters its ``init`` receives, with
their defaults. ``parse_graph`` reads the YAML unchanged; ``plan_graph`` checks it (every problem at once, each
naming the operation or connection) and orders it for the engine.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from wasmflow.api.common import Model
from wasmflow.api.dataflow import DataflowLimits, Endpoint
from wasmflow.api.dataflow_graph import GraphPort, SharedStateStore, StateStoreLimits
from wasmflow.api.graph import GraphError, GraphProblem, topological_order
from wasmflow.api.wasmmodule import Limits
from wasmflow.api.workerconfig import CACHE_DIR, EndpointFiles
from wasmflow.errors import ConfigError


class OperationType(enum.StrEnum):
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
        return self not in (OperationType.SOURCE, OperationType.SINK, OperationType.CONCATENATE)


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
    operation_type: OperationType = Field(alias="operationType")
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


@dataclass(frozen=True)
class Edge:
    """One connection as the engine runs it; ``port`` is its index among the target's inputs."""

    source: str
    target: str
    arm: bool | None
    port: int


@dataclass(frozen=True)
class GraphPlan:
    """A valid graph definition in topological order."""

    definition: GraphDefinition
    order: tuple[str, ...]
    types: dict[str, OperationType]
    outputs: dict[str, tuple[Edge, ...]] = field(default_factory=dict)
    inputs: dict[str, tuple[Edge, ...]] = field(default_factory=dict)

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(n for n in self.order if self.types[n] is OperationType.SOURCE)

    @property
    def sinks(self) -> tuple[str, ...]:
        return tuple(n for n in self.order if self.types[n] is OperationType.SINK)

    def operation(self, name: str) -> Operation:
        return next(o for o in self.definition.operations if o.name == name)


def plan_graph(definition: GraphDefinition) -> GraphPlan:
    """Check the graph and order it; GraphError lists every problem, naming ``operations[i] (name)`` or
    ``connections[j] (from -> to)``."""
    problems: list[GraphProblem] = []
    index: dict[str, int] = {}
    for i, operation in enumerate(definition.operations):
        where = f"operations[{i}] ({operation.name})"
        if operation.name in index:
            problems.append(GraphProblem(where, "shares its name with another operation"))
            continue
        index[operation.name] = i
        if operation.operation_type.takes_module and not operation.module:
            problems.append(GraphProblem(where, f"is a {operation.operation_type.value} but names no module"))
        if not operation.operation_type.takes_module and operation.module:
            problems.append(GraphProblem(where, f"is a {operation.operation_type.value} and takes no module"))
    types = {o.name: o.operation_type for o in definition.operations}
    outputs: dict[str, list[Edge]] = {name: [] for name in index}
    inputs: dict[str, list[Edge]] = {name: [] for name in index}
    for j, connection in enumerate(definition.connections):
        source, target, arm_text = connection.from_.name, connection.to.name, connection.from_.arm
        where = f"connections[{j}] ({source} -> {target})"
        missing = [n for n in (source, target) if n not in index]
        if missing:
            problems.append(GraphProblem(where, f"names operation(s) that do not exist: {', '.join(missing)}"))
            continue
        arm: bool | None = None
        if arm_text is not None:
            if arm_text not in ("True", "False"):
                problems.append(GraphProblem(where, f'from.arm must be "True" or "False", not {arm_text!r}'))
                continue
            arm = arm_text == "True"
        if types[source] is OperationType.BRANCH and arm is None:
            problems.append(GraphProblem(where, 'leaves a branch: set from.arm to "True" or "False"'))
        if types[source] is not OperationType.BRANCH and arm is not None:
            problems.append(GraphProblem(where, f"has from.arm, but {source} is not a branch"))
        if types[target] is OperationType.SOURCE:
            problems.append(GraphProblem(where, f"points into source {target}: sources take no input"))
        if types[source] is OperationType.SINK:
            problems.append(GraphProblem(where, f"leaves sink {source}: sinks have no output"))
        edge = Edge(source, target, arm, len(inputs[target]))
        outputs[source].append(edge)
        inputs[target].append(edge)
    for name, kind in types.items():
        where = f"operations[{index[name]}] ({name})"
        if kind is not OperationType.SOURCE and not inputs[name]:
            problems.append(GraphProblem(where, "has no incoming connection"))
        if kind is not OperationType.SINK and not outputs[name]:
            problems.append(GraphProblem(where, "has no outgoing connection: its items would go nowhere"))
    if OperationType.SOURCE not in types.values():
        problems.append(GraphProblem("operations", "the graph has no source"))
    if OperationType.SINK not in types.values():
        problems.append(GraphProblem("operations", "the graph has no sink"))
    order = topological_order(outputs, lambda edge: edge.target)
    if order is None:
        problems.append(GraphProblem("connections", "the connections form a cycle"))
    if problems:
        raise GraphError(problems)
    assert order is not None
    return GraphPlan(
        definition=definition,
        order=tuple(order),
        types=types,
        outputs={k: tuple(v) for k, v in outputs.items()},
        inputs={k: tuple(v) for k, v in inputs.items()},
    )


# -- running a graph definition on a worker ----------------------------------------------------------------------


class AioModule(Model):
    """One module reference of the graph, pinned: exactly these bytes run (``digest``), from a registry or a file."""

    reference: str = ""
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    insecure: bool = False
    pull_secret_file: str | None = None
    #: A CA bundle that the registry's TLS certificate must chain to (a private CA).
    ca_file: str | None = None
    #: A local file instead of a registry (development and tests; the digest is still verified).
    path: str | None = None
    limits: Limits = Field(default_factory=Limits)


def is_aio_config(text: str) -> bool:
    """True when a worker config's JSON is an ``AioWorkerConfig`` (``"kind": "aio-graph"``), not a Dataflow's: a
    text check, so the worker command can pick its worker before importing either."""
    return '"kind":"aio-graph"' in text.replace(" ", "")


class AioWorkerConfig(Model):
    """What a worker is given to run an AIO graph definition: the definition, its modules pinned by their
    ``repository:tag`` reference, and the endpoints its sources and sinks are bound to."""

    kind: Literal["aio-graph"] = "aio-graph"
    namespace: str
    dataflow: str
    definition: str
    """The graph definition, as AIO's YAML."""
    endpoints: dict[str, Endpoint]
    modules: dict[str, AioModule]
    sources: dict[str, GraphPort]
    sinks: dict[str, GraphPort]
    parameters: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Per operation: values for the parameters its moduleConfiguration declares (overriding their defaults)."""
    event_time: bool = False
    """Stamp items by their source time (the ``timestamp-ms`` user property) instead of their arrival: replays give
    the same windows. Off, the worker's clock enters the HLC as AIO's ingestion does."""
    state_store: SharedStateStore | None = None
    """Where the graph's state store lives when replicas share it; in process when unset."""
    state_limits: StateStoreLimits | None = None
    """Bounds of the state store (keys, key and value size, total bytes); the defaults when unset."""
    limits: DataflowLimits = Field(default_factory=DataflowLimits)
    """The Dataflow's ``spec.limits``: the largest message the sources accept."""
    endpoint_files: dict[str, EndpointFiles] = Field(default_factory=dict)
    http_port: int = Field(default=8080, ge=1, le=65535)
    cache_dir: str = CACHE_DIR
