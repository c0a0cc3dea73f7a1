"""The Dataflow resource: a graph of operators between endpoints, run by worker pods.

Cross-field rules are written twice on purpose: as CEL rules in the CRD (the API server refuses a bad manifest at
``kubectl apply``) and as validators here (``wasmflow run`` refuses the same manifest without a cluster). Each rule
and its mirror sit next to each other. The full graph check (cycles, reachability, dead ends) is
``wasmflow.api.graph.check_graph`` (through ``wasmflow.api.frontends.dataflow``), run by the engine and by the
controller.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from wasmflow.api.common import (
    DURATION_PATTERN,
    QUANTITY_PATTERN,
    Condition,
    FieldError,
    LocalObjectReference,
    Model,
    Name,
    SecretKeyReference,
    condition_list,
    filled_in,
    parse_duration,
    parse_quantity,
    with_rules,
)
from wasmflow.api.dataflow_graph import DataflowGraph
from wasmflow.api.meta import ObjectMeta

OPERATOR_TYPES = ("map", "filter", "branch", "accumulate")
#: The worker's Deployment and Service are named ``<dataflow>-worker``: a Service name is a DNS-1035 label (a letter
#: first, at most 63 characters), which leaves 56 for the Dataflow.
MAX_DATAFLOW_NAME = 56
DATAFLOW_NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
#: Kubernetes' own quantity syntax (resources of the worker pods).
K8S_QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
Topic = Annotated[str, Field(min_length=1, max_length=256)]


class NodeType(enum.StrEnum):
    """What a node does: a source or sink names an endpoint; the others run a WasmModule of that operator kind."""

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

    ca_secret_ref: SecretKeyReference | None = None
    """Secret key holding the CA bundle (PEM) that signs the broker's certificate; the system CAs when unset."""
    client_cert_secret_ref: LocalObjectReference | None = None
    """A ``kubernetes.io/tls`` Secret (tls.crt, tls.key) for client-certificate authentication."""


_TLS_RULE = {
    "rule": "!has(self.tls) || self.url.startsWith('mqtts://')",
    "message": "tls is set but the url is not mqtts://",
    "fieldPath": ".tls",
}


class MqttEndpoint(Model):
    """An MQTT v5 broker."""

    model_config = with_rules(_TLS_RULE)

    url: str = Field(pattern=r"^mqtts?://[^\s/:]+(:[0-9]{1,5})?/?$", max_length=253)
    """``mqtt://host:port`` or ``mqtts://host:port`` (TLS)."""
    qos: Literal[0, 1] = 1
    """Quality of service of subscriptions and publications: 0 (at most once) or 1 (at least once)."""
    shared_subscription_group: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    """Subscribe as ``$share/<group>/<topic>`` so the replicas split the messages."""
    client_id_prefix: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,32}$")
    """Prefix of the MQTT client ids the workers use."""
    tls: TlsConfig | None = None
    """TLS settings; needs an ``mqtts://`` url."""
    credentials_secret_ref: LocalObjectReference | None = None
    """A Secret with keys ``username`` and ``password``."""

    @model_validator(mode="after")
    def _tls_needs_mqtts(self) -> MqttEndpoint:
        if self.tls is not None and not self.url.startswith("mqtts://"):
            raise FieldError(("tls",), _TLS_RULE["message"])
        return self


class Endpoint(Model):
    """Where messages come from or go to."""

    mqtt: MqttEndpoint
    """An MQTT v5 broker."""


_WINDOW_RULES = [
    {"rule": "has(self.count) || has(self.duration)", "message": "a window needs count and/or duration"},
    {
        "rule": "!has(self.duration) || duration(self.duration) > duration('0s')",
        "message": "a window duration must be more than 0",
        "fieldPath": ".duration",
    },
]


class Window(Model):
    """When an accumulate node emits: after ``count`` messages or ``duration``, whichever comes first."""

    model_config = with_rules(*_WINDOW_RULES)

    count: int | None = Field(default=None, ge=1, le=1_000_000)
    """Emit after this many messages. A window acknowledges what it folded when it closes, so over a QoS 1 source
    it holds up to this many of its messages unacknowledged (windows in series: the product): at most 65535, MQTT's
    largest Receive Maximum, which the worker then advertises. A window that needs more (a filter before it) closes
    early rather than wait forever."""
    duration: str | None = Field(default=None, pattern=DURATION_PATTERN, max_length=32)
    """Emit this long (Go duration) after the window's first message."""

    @model_validator(mode="after")
    def _one_bound(self) -> Window:
        if self.count is None and self.duration is None:
            raise ValueError(_WINDOW_RULES[0]["message"])
        if self.duration is not None and parse_duration(self.duration) <= 0:
            raise FieldError(("duration",), _WINDOW_RULES[1]["message"])
        return self

    @property
    def duration_seconds(self) -> float | None:
        return parse_duration(self.duration, "window.duration") if self.duration else None


class ErrorAction(enum.StrEnum):
    """What happens to a message an operator fails on."""

    DROP = "drop"
    DEAD_LETTER = "deadLetter"


_DEAD_LETTER_RULE = {
    "rule": "self.action != 'deadLetter' || (has(self.endpoint) && has(self.topic))",
    "message": "deadLetter needs endpoint and topic",
}


class ErrorPolicy(Model):
    """What happens to a message an operator fails on: dropped (and counted) or sent to a dead-letter topic."""

    model_config = with_rules(_DEAD_LETTER_RULE)

    action: ErrorAction = ErrorAction.DROP
    """``drop`` (counted in metrics and logged) or ``deadLetter`` (published with the failure to ``topic``)."""
    endpoint: Name | None = None
    """For deadLetter: the endpoint (a key of spec.endpoints) to publish to."""
    topic: Topic | None = None
    """For deadLetter: the topic to publish to."""

    @model_validator(mode="after")
    def _dead_letter_target(self) -> ErrorPolicy:
        if self.action is ErrorAction.DEAD_LETTER and (self.endpoint is None or self.topic is None):
            raise ValueError(_DEAD_LETTER_RULE["message"])
        return self


_ENDS = "self.type == 'source' || self.type == 'sink'"
_NODE_RULES = [
    {
        "rule": f"!({_ENDS}) || (has(self.endpoint) && has(self.topic) && !has(self.module))",
        "message": "sources and sinks need endpoint and topic, and take no module",
    },
    {
        "rule": f"{_ENDS} || (has(self.module) && !has(self.endpoint) && !has(self.topic))",
        "message": "operators need module (a WasmModule name), and take no endpoint or topic",
    },
    {
        "rule": "self.type == 'accumulate' ? has(self.window) : !has(self.window)",
        "message": "accumulate nodes need a window, and only they take one",
    },
    {
        "rule": f"!has(self.errorPolicy) || !({_ENDS})",
        "message": "errorPolicy applies to operators only",
    },
    {
        "rule": "!has(self.dropArm) || self.type == 'branch'",
        "message": "dropArm applies to branch nodes only",
    },
    {
        "rule": "self.type != 'sink' || !has(self.topic) || !(self.topic.contains('+') || self.topic.contains('#'))",
        "message": "a sink topic cannot contain the wildcards + or #",
    },
]


class Node(Model):
    """One node of the graph: a source, an operator, or a sink."""

    model_config = with_rules(*_NODE_RULES)

    name: Name
    """Unique name of the node; edges refer to it."""
    type: NodeType
    """source, map, filter, branch, accumulate or sink."""
    module: Name | None = None
    """For operators: the WasmModule (same namespace) to run; its spec.operator must match the node's type."""
    configuration: dict[str, str] = Field(default_factory=dict, max_length=64)
    """For operators: key/value settings handed to the operator's init."""
    endpoint: Name | None = None
    """For sources and sinks: the endpoint, a key of spec.endpoints."""
    topic: Topic | None = None
    """For sources: the topic filter to subscribe to (wildcards allowed); for sinks: the topic to publish to."""
    window: Window | None = None
    """For accumulate nodes: when the accumulated value is emitted."""
    error_policy: ErrorPolicy | None = None
    """For operators: overrides the Dataflow's errorPolicy for this node."""
    drop_arm: bool | None = None
    """For branch nodes: the arm (true or false) whose messages are dropped on purpose; that arm has no edge."""

    @model_validator(mode="after")
    def _shape(self) -> Node:
        kind = self.type
        if kind in (NodeType.SOURCE, NodeType.SINK):
            if self.endpoint is None or self.topic is None or self.module is not None:
                raise ValueError(_NODE_RULES[0]["message"])
        elif self.module is None or self.endpoint is not None or self.topic is not None:
            raise ValueError(_NODE_RULES[1]["message"])
        if (kind is NodeType.ACCUMULATE) != (self.window is not None):
            raise ValueError(_NODE_RULES[2]["message"])
        if self.error_policy is not None and not kind.is_operator:
            raise FieldError(("errorPolicy",), _NODE_RULES[3]["message"])
        if self.drop_arm is not None and kind is not NodeType.BRANCH:
            raise FieldError(("dropArm",), _NODE_RULES[4]["message"])
        if kind is NodeType.SINK and self.topic is not None and ("+" in self.topic or "#" in self.topic):
            raise FieldError(("topic",), _NODE_RULES[5]["message"])
        return self


class Edge(Model):
    """A connection from one node to another; ``arm`` selects the branch output it leaves from."""

    from_: Name = Field(alias="from")
    """The node the messages leave."""
    to: Name
    """The node the messages enter."""
    arm: bool | None = None
    """Only on edges leaving a branch node: the arm (the branch's true or false result) the edge carries."""


class Toleration(Model):
    """A Kubernetes toleration for the worker pods."""

    key: str | None = Field(default=None, max_length=316)
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = Field(default=None, max_length=253)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = Field(default=None, json_schema_extra={"format": "int64"})


Quantity = Annotated[str, Field(pattern=K8S_QUANTITY_PATTERN, max_length=64)]


class Resources(Model):
    """CPU and memory of a worker container (Kubernetes quantities)."""

    requests: dict[str, Quantity] = Field(default_factory=dict, max_length=8)
    """Minimum resources, e.g. ``{cpu: 100m, memory: 128Mi}``."""
    limits: dict[str, Quantity] = Field(default_factory=dict, max_length=8)
    """Maximum resources."""


class WorkerSpec(Model):
    """Scheduling and sizing of the worker pods."""

    resources: Resources = Field(default_factory=Resources)
    """Requests and limits of the worker container."""
    node_selector: dict[str, str] = Field(default_factory=dict, max_length=32)
    """Labels a node must have to run the workers."""
    tolerations: list[Toleration] = Field(default_factory=list, max_length=32)
    """Taints the workers tolerate."""


#: What a source accepts when ``spec.limits.maxMessageSize`` is not set, and the range it may be set to. The upper
#: bound keeps one message's cost in a worker predictable: a binary (non-UTF-8) payload crosses wasmtime's C API
#: as one value per byte, up to ~160 bytes of worker memory per payload byte while an operator runs (DESIGN.md 6).
DEFAULT_MAX_MESSAGE_SIZE = "1Mi"
MIN_MESSAGE_SIZE_BYTES = 2**10
MAX_MESSAGE_SIZE_BYTES = 16 * 2**20
_MESSAGE_SIZE_TEXT = "maxMessageSize must be at least 1Ki and at most 16Mi"


class DataflowLimits(Model):
    """Bounds on what the Dataflow's sources accept."""

    model_config = with_rules(
        {
            "rule": "quantity(self.maxMessageSize).compareTo(quantity('1Ki')) >= 0 "
            "&& quantity(self.maxMessageSize).compareTo(quantity('16Mi')) <= 0",
            "message": _MESSAGE_SIZE_TEXT,
            "fieldPath": ".maxMessageSize",
        },
    )

    max_message_size: str = Field(default=DEFAULT_MAX_MESSAGE_SIZE, pattern=QUANTITY_PATTERN, max_length=32)
    """Largest message a source accepts: payload, topic, content type and user properties together (Kubernetes
    quantity, 1Ki to 16Mi). A larger one goes to the error policy with only the first 1 KiB of its payload, and is
    acknowledged; the others keep flowing."""

    @model_validator(mode="after")
    def _in_range(self) -> DataflowLimits:
        if not MIN_MESSAGE_SIZE_BYTES <= parse_quantity(self.max_message_size) <= MAX_MESSAGE_SIZE_BYTES:
            raise FieldError(("maxMessageSize",), f"{_MESSAGE_SIZE_TEXT}, got {self.max_message_size}")
        return self

    @property
    def max_message_bytes(self) -> int:
        return parse_quantity(self.max_message_size, "spec.limits.maxMessageSize")


# The spec-level rules see the whole graph (CEL at a node or an edge cannot look at its siblings). Each
# messageExpression names the first offending node or edge; it uses the three-argument map(x, predicate, text), not
# filter: the cost estimator forgets the maxLength of filter's elements and then refuses any string built from them.
# Each rule has a mirror in DataflowSpec._references, whose messages start the same way.
_EDGE_OK = "self.nodes.exists(n, n.name == e.from) && self.nodes.exists(n, n.name == e.to)"
_ENDPOINT_OK = "!has(n.endpoint) || n.endpoint in self.endpoints"
_DEAD_LETTER_OK = "!has({p}.endpoint) || {p}.endpoint in self.endpoints"


def _wired(arm: str) -> str:
    return f"self.edges.exists(e, e.from == n.name && has(e.arm) && e.arm == {arm})"


def _dropped(arm: str) -> str:
    return f"(has(n.dropArm) && n.dropArm == {arm})"


_ARMS_OK = (
    f"n.type != 'branch' || (({_wired('true')}) != {_dropped('true')} && ({_wired('false')}) != {_dropped('false')})"
)
_ARM_PLACED = "has(e.arm) == self.nodes.exists(n, n.name == e.from && n.type == 'branch')"
_EDGE = "'edge ' + e.from + ' -> ' + e.to"
MISSING_NODE = "names a node that does not exist"
UNDECLARED_ENDPOINT = "not declared in spec.endpoints"
ARM_MISPLACED = "arm must be set on the edges that leave a branch node, and only on them"
ARMS_MISSING = "needs an edge with arm: true and one with arm: false, or dropArm for the arm without an edge"

NODES_OR_GRAPH = "give nodes (a source and a sink at least) and edges, or a graph, not both"

_SPEC_RULES = [
    {
        "rule": "has(self.graph) ? (size(self.nodes) == 0 && size(self.edges) == 0) "
        ": (size(self.nodes) >= 2 && size(self.edges) >= 1)",
        "message": NODES_OR_GRAPH,
    },
    {
        "rule": f"self.edges.all(e, {_EDGE_OK})",
        "message": f"every edge must name existing nodes: an edge {MISSING_NODE}",
        "messageExpression": f"self.edges.map(e, !({_EDGE_OK}), {_EDGE} + ' {MISSING_NODE}')[0]",
        "fieldPath": ".edges",
    },
    {
        "rule": f"self.nodes.all(n, {_ENDPOINT_OK})",
        "message": f"sources and sinks must name an endpoint {UNDECLARED_ENDPOINT.replace('not ', '')}",
        "messageExpression": f"self.nodes.map(n, !({_ENDPOINT_OK}), "
        f"'node ' + n.name + ' names endpoint ' + n.endpoint + ', {UNDECLARED_ENDPOINT}')[0]",
        "fieldPath": ".nodes",
    },
    {
        "rule": "(!has(self.errorPolicy) || ("
        + _DEAD_LETTER_OK.format(p="self.errorPolicy")
        + ")) && self.nodes.all(n, !has(n.errorPolicy) || ("
        + _DEAD_LETTER_OK.format(p="n.errorPolicy")
        + "))",
        "message": f"an errorPolicy names an endpoint {UNDECLARED_ENDPOINT}",
    },
    {
        "rule": f"self.nodes.all(n, {_ARMS_OK})",
        "message": f"a branch node {ARMS_MISSING}",
        "messageExpression": f"self.nodes.map(n, !({_ARMS_OK}), 'branch node ' + n.name + ' {ARMS_MISSING}')[0]",
        "fieldPath": ".nodes",
    },
    {
        "rule": f"self.edges.all(e, {_ARM_PLACED})",
        "message": ARM_MISPLACED,
        "messageExpression": f"self.edges.map(e, !({_ARM_PLACED}), {_EDGE} + ': {ARM_MISPLACED}')[0]",
        "fieldPath": ".edges",
    },
]


class DataflowSpec(Model):
    """Desired state of a Dataflow."""

    model_config = with_rules(*_SPEC_RULES)

    endpoints: dict[str, Endpoint] = Field(default_factory=dict, max_length=16)
    """Brokers by name; sources, sinks and dead-letter policies refer to these names."""
    nodes: list[Node] = Field(
        default_factory=list,
        max_length=64,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"], "default": []},
    )
    """The nodes of the graph, unique by name (at least a source and a sink), unless ``graph`` is set."""
    edges: list[Edge] = Field(default_factory=list, max_length=256, json_schema_extra={"default": []})
    """Who feeds whom."""
    graph: DataflowGraph | None = None
    """Run an Azure IoT Operations graph definition instead of ``nodes`` and ``edges`` (see dataflow_graph.py)."""
    error_policy: ErrorPolicy = Field(default_factory=ErrorPolicy, json_schema_extra=filled_in(ErrorPolicy))
    """What happens to a message an operator fails on (nodes can override it)."""
    replicas: int = Field(default=1, ge=0, le=64)
    """Number of worker pods; with more than one, give sources a sharedSubscriptionGroup so they split the load."""
    worker: WorkerSpec = Field(default_factory=WorkerSpec)
    """Scheduling and sizing of the worker pods."""
    limits: DataflowLimits = Field(default_factory=DataflowLimits, json_schema_extra=filled_in(DataflowLimits))
    """Bounds on what the sources accept (the largest message)."""

    @model_validator(mode="after")
    def _references(self) -> DataflowSpec:
        """Mirror of the CEL rules above, naming the first offending node or edge."""
        if (self.graph is not None) == (len(self.nodes) >= 2 and len(self.edges) >= 1) or (
            self.graph is not None and (self.nodes or self.edges)
        ):
            raise FieldError(("nodes",) if self.graph is None else ("graph",), NODES_OR_GRAPH)
        if self.graph is not None:
            store = self.graph.state_store
            if store is not None and store.endpoint not in self.endpoints:
                raise FieldError(
                    ("graph", "stateStore", "endpoint"),
                    f"the state store names endpoint {store.endpoint}, {UNDECLARED_ENDPOINT}",
                )
            for role, ports in (("sources", self.graph.sources), ("sinks", self.graph.sinks)):
                for name, port in ports.items():
                    if port.endpoint not in self.endpoints:
                        raise FieldError(
                            ("graph", role, name, "endpoint"),
                            f"operation {name} names endpoint {port.endpoint}, {UNDECLARED_ENDPOINT}",
                        )
        names = [n.name for n in self.nodes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise FieldError(("nodes",), f"node names must be unique: {', '.join(duplicates)}")
        kinds = {n.name: n.type for n in self.nodes}
        for i, edge in enumerate(self.edges):
            missing = [end for end in (edge.from_, edge.to) if end not in kinds]
            if missing:
                raise FieldError(("edges", i), f"edge {edge.from_} -> {edge.to} {MISSING_NODE}: {', '.join(missing)}")
        for i, node in enumerate(self.nodes):
            if node.endpoint is not None and node.endpoint not in self.endpoints:
                raise FieldError(
                    ("nodes", i, "endpoint"), f"node {node.name} names endpoint {node.endpoint}, {UNDECLARED_ENDPOINT}"
                )
        policies = [(("errorPolicy",), self.error_policy)] + [
            (("nodes", i, "errorPolicy"), n.error_policy) for i, n in enumerate(self.nodes) if n.error_policy
        ]
        for path, policy in policies:
            if policy.endpoint is not None and policy.endpoint not in self.endpoints:
                raise FieldError(
                    (*path, "endpoint"), f"an errorPolicy names an endpoint {UNDECLARED_ENDPOINT}: {policy.endpoint}"
                )
        for i, edge in enumerate(self.edges):
            if (edge.arm is not None) != (kinds[edge.from_] is NodeType.BRANCH):
                raise FieldError(("edges", i), f"edge {edge.from_} -> {edge.to}: {ARM_MISPLACED}")
        for i, node in enumerate(self.nodes):
            if node.type is not NodeType.BRANCH:
                continue
            for arm in (True, False):
                wired = any(e.from_ == node.name and e.arm is arm for e in self.edges)
                if wired == (node.drop_arm is arm):
                    text = str(arm).lower()
                    detail = f"dropArm is {text} but an edge has arm: {text}" if wired else f"no edge has arm: {text}"
                    raise FieldError(("nodes", i), f"branch node {node.name} {ARMS_MISSING} ({detail})")
        return self


class ModuleDigest(Model):
    """A WasmModule the Dataflow uses and the digest its workers run."""

    name: str
    digest: str


class Workers(Model):
    """Worker pods of the Dataflow."""

    desired: int = 0
    """Pods wanted (spec.replicas)."""
    ready: int = 0
    """Pods ready."""


class DataflowStatus(Model):
    """Observed state of a Dataflow (kstatus/Flux conventions)."""

    observed_generation: int | None = Field(default=None, json_schema_extra={"format": "int64"})
    """The ``metadata.generation`` this status describes."""
    conditions: list[Condition] = condition_list()
    """Ready, Reconciling and Stalled."""
    modules: list[ModuleDigest] = Field(default_factory=list)
    """The modules the workers run, each pinned to a digest."""
    workers: Workers | None = None
    """Worker pods wanted and ready."""
    selector: str | None = Field(default=None, max_length=1024)
    """The label selector of the worker pods, for the scale subresource (what a HorizontalPodAutoscaler or KEDA reads
    to find the pods whose metrics it averages)."""
    config_hash: str | None = None
    """Hash of the worker configuration; it changes when the workers must restart."""
    last_handled_reconcile_at: str | None = None
    """The last ``reconcile.fluxcd.io/requestedAt`` annotation value handled (Flux's manual re-sync)."""


_NAME_RULE = {
    "rule": f"self.metadata.name.size() <= {MAX_DATAFLOW_NAME} "
    f"&& self.metadata.name.matches('{DATAFLOW_NAME_PATTERN}')",
    "message": f"a Dataflow name must be a DNS-1035 label of at most {MAX_DATAFLOW_NAME} characters "
    "(a-z first, then a-z, 0-9 and '-'): its workers are named <name>-worker",
}


class Dataflow(Model):
    """A graph of WebAssembly operators between MQTT endpoints, run by worker pods."""

    model_config = with_rules(_NAME_RULE)

    api_version: Literal["wasmflow.io/v1alpha1"] = "wasmflow.io/v1alpha1"
    kind: Literal["Dataflow"] = "Dataflow"
    metadata: ObjectMeta
    spec: DataflowSpec
    status: DataflowStatus | None = None

    @model_validator(mode="after")
    def _name(self) -> Dataflow:
        name = self.metadata.name
        if len(name) > MAX_DATAFLOW_NAME or re.fullmatch(DATAFLOW_NAME_PATTERN, name) is None:
            raise FieldError(("metadata", "name"), _NAME_RULE["message"])
        return self
