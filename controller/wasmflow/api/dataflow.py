"""The Dataflow resource: a graph of operators between endpoints, run by worker pods.

Cross-field rules are written twice on purpose: as CEL rules in the CRD (the API server refuses a bad manifest at
``kubectl apply``) and as validators here (``wasmflow run`` refuses the same manifest without a cluster). The full
graph check (cycles, reachability, arity) is ``wasmflow.api.graph.validate_graph``.
"""

from __future__ import annotations

import enum
from typing import Literal

from pydantic import Field, model_validator

from wasmflow.api.common import (
    DURATION_PATTERN,
    Condition,
    LocalObjectReference,
    Model,
    Name,
    SecretKeyReference,
    parse_duration,
    with_rules,
)
from wasmflow.api.meta import ObjectMeta

OPERATOR_TYPES = ("map", "filter", "branch", "accumulate")


class NodeType(enum.StrEnum):
    SOURCE = "source"
    MAP = "map"
    FILTER = "filter"
    BRANCH = "branch"
    ACCUMULATE = "accumulate"
    SINK = "sink"

    @property
    def is_operator(self) -> bool:
        return self.value in OPERATOR_TYPES


class TlsConfig(Model):
    """TLS to the broker: a CA to trust and an optional client certificate."""

    #: Secret key holding the CA bundle (PEM) that signs the broker's certificate.
    ca_secret_ref: SecretKeyReference | None = None
    #: A ``kubernetes.io/tls`` Secret (tls.crt, tls.key) for client-certificate authentication.
    client_cert_secret_ref: LocalObjectReference | None = None


class MqttEndpoint(Model):
    """An MQTT v5 broker."""

    #: ``mqtt://host:port`` or ``mqtts://host:port`` (TLS).
    url: str = Field(pattern=r"^mqtts?://[^\s/:]+(:[0-9]{1,5})?/?$", max_length=253)
    qos: Literal[0, 1] = 1
    #: Subscribe as ``$share/<group>/<topic>`` so the replicas split the messages.
    shared_subscription_group: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    client_id_prefix: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,32}$")
    tls: TlsConfig | None = None
    #: A Secret with keys ``username`` and ``password``.
    credentials_secret_ref: LocalObjectReference | None = None


class Endpoint(Model):
    """Where messages come from or go to."""

    mqtt: MqttEndpoint


class Window(Model):
    """When an accumulate node emits: after ``count`` messages and/or ``duration``, whichever comes first."""

    model_config = with_rules(
        {"rule": "has(self.count) || has(self.duration)", "message": "a window needs count and/or duration"}
    )

    count: int | None = Field(default=None, ge=1, le=1_000_000)
    duration: str | None = Field(default=None, pattern=DURATION_PATTERN, max_length=32)

    @model_validator(mode="after")
    def _one_bound(self) -> Window:
        if self.count is None and self.duration is None:
            raise ValueError("a window needs count and/or duration")
        return self

    @property
    def duration_seconds(self) -> float | None:
        return parse_duration(self.duration, "window.duration") if self.duration else None


class ErrorAction(enum.StrEnum):
    DROP = "drop"
    DEAD_LETTER = "deadLetter"


class ErrorPolicy(Model):
    """What happens to a message an operator fails on: dropped (and counted) or sent to a dead-letter topic."""

    model_config = with_rules(
        {
            "rule": "self.action != 'deadLetter' || (has(self.endpoint) && has(self.topic))",
            "message": "deadLetter needs endpoint and topic",
        }
    )

    action: ErrorAction = ErrorAction.DROP
    endpoint: Name | None = None
    topic: str | None = Field(default=None, min_length=1, max_length=256)

    @model_validator(mode="after")
    def _dead_letter_target(self) -> ErrorPolicy:
        if self.action is ErrorAction.DEAD_LETTER and (self.endpoint is None or self.topic is None):
            raise ValueError("deadLetter needs endpoint and topic")
        return self


class Node(Model):
    """One node of the graph: a source, an operator, or a sink."""

    model_config = with_rules(
        {
            "rule": "(self.type == 'source' || self.type == 'sink') ? (has(self.endpoint) && has(self.topic)) "
            ": has(self.module)",
            "message": "sources and sinks need endpoint and topic; operators need module",
        },
        {
            "rule": "self.type == 'accumulate' ? has(self.window) : !has(self.window)",
            "message": "accumulate nodes need a window, and only they take one",
        },
    )

    name: Name
    type: NodeType
    #: The WasmModule (same namespace) an operator node runs.
    module: Name | None = None
    #: Key/value settings handed to the operator's init.
    configuration: dict[str, str] = Field(default_factory=dict, max_length=64)
    #: For sources and sinks: the endpoint (a key of spec.endpoints) and the topic (filter) to use.
    endpoint: Name | None = None
    topic: str | None = Field(default=None, min_length=1, max_length=256)
    window: Window | None = None
    #: Overrides the Dataflow's errorPolicy for this node.
    error_policy: ErrorPolicy | None = None

    @model_validator(mode="after")
    def _shape(self) -> Node:
        if self.type in (NodeType.SOURCE, NodeType.SINK):
            if self.endpoint is None or self.topic is None:
                raise ValueError(f"{self.type.value} nodes need endpoint and topic")
            if self.module is not None:
                raise ValueError(f"{self.type.value} nodes take no module")
        elif self.module is None:
            raise ValueError(f"{self.type.value} nodes need module (a WasmModule name)")
        if (self.type is NodeType.ACCUMULATE) != (self.window is not None):
            raise ValueError("accumulate nodes need a window, and only they take one")
        return self


class Edge(Model):
    """A connection from one node to another; ``arm`` selects the branch output it leaves from."""

    from_: Name = Field(alias="from")
    to: Name
    arm: bool | None = None


class Toleration(Model):
    key: str | None = Field(default=None, max_length=316)
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = Field(default=None, max_length=253)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None


class Resources(Model):
    requests: dict[str, str] = Field(default_factory=dict, max_length=8)
    limits: dict[str, str] = Field(default_factory=dict, max_length=8)


class WorkerSpec(Model):
    """Scheduling and sizing of the worker pods."""

    resources: Resources = Field(default_factory=Resources)
    node_selector: dict[str, str] = Field(default_factory=dict, max_length=32)
    tolerations: list[Toleration] = Field(default_factory=list, max_length=32)


_GRAPH_RULES = [
    {
        "rule": "self.edges.all(e, self.nodes.exists(n, n.name == e.from) && self.nodes.exists(n, n.name == e.to))",
        "message": "every edge must name existing nodes in from and to",
    },
    {
        "rule": "self.nodes.all(n, !has(n.endpoint) || n.endpoint in self.endpoints)",
        "message": "sources and sinks must name an endpoint declared in spec.endpoints",
    },
    {
        "rule": "self.nodes.all(n, n.type != 'branch' || (self.edges.exists(e, e.from == n.name && has(e.arm) && "
        "e.arm) && self.edges.exists(e, e.from == n.name && has(e.arm) && !e.arm)))",
        "message": "a branch node needs an edge with arm: true and an edge with arm: false",
    },
]


class DataflowSpec(Model):
    """Desired state of a Dataflow."""

    model_config = with_rules(*_GRAPH_RULES)

    endpoints: dict[str, Endpoint] = Field(default_factory=dict, max_length=16)
    nodes: list[Node] = Field(
        min_length=2,
        max_length=64,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    edges: list[Edge] = Field(min_length=1, max_length=256)
    error_policy: ErrorPolicy = Field(default_factory=ErrorPolicy)
    replicas: int = Field(default=1, ge=0, le=64)
    worker: WorkerSpec = Field(default_factory=WorkerSpec)

    @model_validator(mode="after")
    def _references(self) -> DataflowSpec:
        names = [n.name for n in self.nodes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"node names must be unique: {', '.join(duplicates)}")
        for i, edge in enumerate(self.edges):
            for end in (edge.from_, edge.to):
                if end not in names:
                    raise ValueError(f"edges[{i}] names node {end!r}, which does not exist")
        for i, node in enumerate(self.nodes):
            if node.endpoint is not None and node.endpoint not in self.endpoints:
                raise ValueError(f"nodes[{i}] ({node.name}) names endpoint {node.endpoint!r}, not in spec.endpoints")
        return self


class ModuleDigest(Model):
    name: str
    digest: str


class Workers(Model):
    desired: int = 0
    ready: int = 0


class DataflowStatus(Model):
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    modules: list[ModuleDigest] = Field(default_factory=list)
    workers: Workers | None = None
    config_hash: str | None = None


class Dataflow(Model):
    """A Dataflow manifest."""

    api_version: Literal["wasmflow.io/v1alpha1"] = "wasmflow.io/v1alpha1"
    kind: Literal["Dataflow"] = "Dataflow"
    metadata: ObjectMeta
    spec: DataflowSpec
    status: DataflowStatus | None = None
