"""Azure IoT Operations graphs, as they were named before the graph IR (``api/graph.py``) and its AIO front-end
(``api/frontends/aio.py``): ``plan_graph`` and ``GraphPlan`` wrap ``definition_graph`` until their importers move.
The worker's AIO config (``AioModule``, ``AioWorkerConfig``) stays here until the one worker config replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from wasmflow.api.common import Model
from wasmflow.api.dataflow import DataflowLimits, Endpoint
from wasmflow.api.dataflow_graph import GraphPort, SharedStateStore, StateStoreLimits
from wasmflow.api.frontends.aio import (
    Connection,
    ConnectionEnd,
    GraphDefinition,
    GraphMetadata,
    ModuleConfiguration,
    Operation,
    Parameter,
    definition_graph,
    parse_graph,
)
from wasmflow.api.graph import Edge, Graph, Step
from wasmflow.api.wasmmodule import Limits
from wasmflow.api.workerconfig import CACHE_DIR, EndpointFiles

OperationType = Step

__all__ = [
    "AioModule",
    "AioWorkerConfig",
    "Connection",
    "ConnectionEnd",
    "Edge",
    "GraphDefinition",
    "GraphMetadata",
    "GraphPlan",
    "ModuleConfiguration",
    "Operation",
    "OperationType",
    "Parameter",
    "is_aio_config",
    "parse_graph",
    "plan_graph",
]


@dataclass(frozen=True)
class GraphPlan:
    """A valid graph definition in topological order (the graph IR with its definition)."""

    definition: GraphDefinition
    graph: Graph

    @property
    def order(self) -> tuple[str, ...]:
        return self.graph.order

    @property
    def types(self) -> dict[str, Step]:
        return {name: node.step for name, node in self.graph.nodes.items()}

    @property
    def outputs(self) -> Mapping[str, tuple[Edge, ...]]:
        return self.graph.outputs

    @property
    def inputs(self) -> Mapping[str, tuple[Edge, ...]]:
        return self.graph.inputs

    @property
    def sources(self) -> tuple[str, ...]:
        return self.graph.sources

    @property
    def sinks(self) -> tuple[str, ...]:
        return self.graph.sinks

    def operation(self, name: str) -> Operation:
        return next(o for o in self.definition.operations if o.name == name)


def plan_graph(definition: GraphDefinition) -> GraphPlan:
    """Check the graph and order it (``definition_graph``); GraphError lists every problem."""
    return GraphPlan(definition, definition_graph(definition))


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
