"""A Dataflow that runs an Azure IoT Operations graph definition instead of its own ``spec.nodes``.

The definition is given inline (AIO's YAML, as text) or as the OCI artifact AIO publishes (config
``application/vnd.microsoft.aio.graph.v1+yaml``). The graph's ``module`` references (``repository:tag``) resolve
against ``registry``; each source and sink operation of the graph is bound to one of the Dataflow's endpoints and
a topic. The controller pins the definition and every module to a digest at each reconcile (so replicas started
after a tag moved still run what was checked, and ``status.modules`` lists them); the worker pulls only those digests,
verifies each, and runs the graph with AIO's semantics (``wasmflow.engine.aio_pipeline``).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from wasmflow.api.common import Model, with_rules

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


class SharedStateStore(Model):
    """Keep the graph's state store in an MQTT broker (retained messages), shared by every replica.

    Guarantees (connectors/mqtt_state.py): read your writes, last write the broker receives wins, other replicas
    see a write within the broker's delivery time; conditions and fencing are checked against each replica's view,
    so the store is not linearizable.
    """

    endpoint: str = Field(min_length=1, max_length=63)
    """The endpoint (a key of spec.endpoints) whose broker keeps the keys."""
    topic_prefix: str | None = Field(default=None, pattern=r"^[^+#]+$", max_length=200)
    """Topic prefix of the keys; ``wasmflow/state/<namespace>/<dataflow>`` when unset."""


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

    @model_validator(mode="after")
    def _one_source(self) -> DataflowGraph:
        if (self.definition is None) == (self.artifact is None):
            raise ValueError(_ONE_SOURCE["message"])
        return self
