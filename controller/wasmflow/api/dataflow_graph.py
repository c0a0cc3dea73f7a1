"""A Dataflow that runs an Azure IoT Operations graph definition instead of its own ``spec.nodes``.

The definition is given inline (AIO's YAML, as text) or as the OCI artifact AIO publishes (config
``application/vnd.microsoft.aio.graph.v1+yaml``). The graph's ``module`` references (``repository:tag``) resolve
against ``registry``; each source and sink operation of the graph is bound to one of the Dataflow's endpoints and
a topic. The controller pins the definition and every module to a digest at each reconcile (so replicas started
after a tag moved still run what was checked, and ``status.modules`` lists them); the worker pulls only those digests,
verifies each, and runs the graph with AIO's semantics (``wasmflow.engine.runtime`` with the frontier time).
"""

from __future__ import annotations

import re

from pydantic import Field, model_validator

from wasmflow.api.common import Model, with_rules
from wasmflow.errors import ConfigError

_ONE_SOURCE = {
    "rule": "has(self.definition) != has(self.artifact)",
    "message": "a graph is given either inline (definition) or as an OCI artifact (artifact), not both",
}


class GraphPort(Model):
    """Where a graph's source operation reads or its sink operation writes."""

    endpoint: str = Field(min_length=1, max_length=63)
    """The endpoint (a key of spec.endpoints)."""
    topic: str = Field(min_length=1, max_length=256)
    """The topic filter to subscribe to (sources) or the topic to publish to (sinks)."""


STATE_ROOT = "wasmflow/state"
"""Every Dataflow's state store lives under ``wasmflow/state/<namespace>/``: one subtree per namespace, so a broker
ACL per namespace (mosquitto ``pattern``, AIO's broker authorization) can enforce what wasmflow enforces itself."""

_OBJECT_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


def state_topic_prefix(namespace: str, dataflow: str, topic_prefix: str | None) -> str:
    """The topic under which a Dataflow's shared state store keeps its keys: always inside its namespace's scope.

    Without ``topic_prefix`` the store is the Dataflow's own (``wasmflow/state/<namespace>/<dataflow>``); with one,
    it is ``wasmflow/state/<namespace>/~shared/<topic_prefix>``, shared by the Dataflows of that namespace that name
    the same prefix (``~`` cannot start a Kubernetes name, so a prefix never lands in another Dataflow's own store).
    There is deliberately no opt-out to a prefix outside the namespace: the isolation protects other namespaces from
    this Dataflow's author, so that author cannot be the one to waive it. Namespace and Dataflow names are checked
    here because a hand-written worker config could name anything: a ``/`` or a wildcard would break the scope.
    """
    for what, name in (("namespace", namespace), ("dataflow", dataflow)):
        if len(name) > 253 or not _OBJECT_NAME.fullmatch(name):
            raise ConfigError(f"{what} {name!r} is not a Kubernetes object name", where=what)
    if topic_prefix is None:
        return f"{STATE_ROOT}/{namespace}/{dataflow}"
    levels = [level for level in topic_prefix.split("/") if level]
    if not levels or any(c in topic_prefix for c in "+#\x00"):
        raise ConfigError(f"topic prefix {topic_prefix!r} must be a topic without wildcards", where="stateStore")
    return f"{STATE_ROOT}/{namespace}/~shared/{'/'.join(levels)}"


class SharedStateStore(Model):
    """Keep the graph's state store in an MQTT broker (retained messages), shared by every replica.

    Guarantees (connectors/mqtt_state.py): read your writes, last write the broker receives wins, other replicas
    see a write within the broker's delivery time; conditions and fencing are checked against each replica's view,
    so the store is not linearizable. A write is applied only once the broker acknowledged it; records that do not
    parse, exceed the limits or move a fencing token backwards are refused and logged.
    """

    endpoint: str = Field(min_length=1, max_length=63)
    """The endpoint (a key of spec.endpoints) whose broker keeps the keys."""
    topic_prefix: str | None = Field(default=None, pattern=r"^[^+#\x00]*[^+#/\x00][^+#\x00]*$", max_length=200)
    """Share one store between the Dataflows of this namespace that name the same prefix; the keys then live under
    ``wasmflow/state/<namespace>/~shared/<topicPrefix>``. Unset, the Dataflow has a store of its own under
    ``wasmflow/state/<namespace>/<dataflow>``. Another namespace never sees these keys, whatever prefix it names."""


class StateStoreLimits(Model):
    """Bounds of a graph's state store (in process or shared), so a long-running worker cannot grow without bound.

    A write past them fails: the operator's call returns ``request-error`` naming the limit. Records loaded from the
    broker past them are refused and logged. The store can hold about ``maxTotalBytes`` plus bookkeeping per key.
    """

    max_keys: int = Field(default=10_000, ge=1, le=1_000_000)
    """Most keys held at once (expired keys are purged and do not count)."""
    max_key_bytes: int = Field(default=1024, ge=1, le=16_384)
    """Longest key, in bytes."""
    max_value_bytes: int = Field(default=65_536, ge=1, le=16_777_216)
    """Largest value, in bytes."""
    max_total_bytes: int = Field(default=67_108_864, ge=1024, le=4_294_967_296)
    """Most bytes of keys and values held at once."""


class GraphArtifact(Model):
    """A graph definition pushed to an OCI registry, as AIO publishes them."""

    reference: str = Field(min_length=1, max_length=512)
    """``registry/repository:tag`` or ``...@sha256:...``."""
    insecure: bool = False
    """Allow plain HTTP (test registries)."""


class DataflowGraph(Model):
    """An AIO graph definition to run, and how its sources and sinks connect."""

    model_config = with_rules(_ONE_SOURCE)

    definition: str | None = Field(default=None, max_length=262144)
    """The graph definition inline, as AIO's YAML text."""
    artifact: GraphArtifact | None = None
    """The graph definition as an OCI artifact."""
    registry: str | None = Field(default=None, max_length=512)
    """Where the graph's module references live: a module ``repo:tag`` is pulled as ``<registry>/repo:tag``."""
    insecure: bool = False
    """Pull the modules over plain HTTP (test registries)."""
    sources: dict[str, GraphPort] = Field(default_factory=dict, max_length=16)
    """Each source operation of the graph, by name: its endpoint and topic."""
    sinks: dict[str, GraphPort] = Field(default_factory=dict, max_length=16)
    """Each sink operation of the graph, by name: its endpoint and topic."""
    parameters: dict[str, dict[str, str]] = Field(default_factory=dict, max_length=64)
    """Per operation: values of the parameters its moduleConfiguration declares (overriding the defaults)."""
    event_time: bool = False
    """Stamp items by their source time instead of their arrival (replays then give the same windows)."""
    state_store: SharedStateStore | None = None
    """Share the state store between replicas through the broker; in process (per replica) when unset."""
    state_limits: StateStoreLimits | None = None
    """Bounds of the state store: keys, key and value size, total bytes (each field's default when unset)."""

    @model_validator(mode="after")
    def _one_source(self) -> DataflowGraph:
        if (self.definition is None) == (self.artifact is None):
            raise ValueError(_ONE_SOURCE["message"])
        return self
