"""Every Prometheus metric family of the data plane, created against an injected registry (never the global one).

One object owns them all so the graph runner, the operator nodes and the worker's ``/metrics`` agree on names and
labels. Labels are node names, failure kinds and fixed reasons only: never payloads, topics or operator error texts
(unbounded cardinality, and they may carry data that must not reach a metrics backend).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: One call takes micro- to milliseconds; a timeout ends one at ``timeoutPerMessage`` (100 ms by default).
LATENCY_BUCKETS = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip


class EngineMetrics:
    """The data plane's metric families; one per registry (a registry refuses duplicate names).

    Operator nodes count ``failures``, ``instantiations``, ``process_seconds``, ``degraded``, ``guest_log_dropped``
    and the compile cache; the graph runner counts messages in, out, dropped and dead-lettered.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.messages_in = Counter(
            "wasmflow_node_messages_in", "Messages received by a node.", ["node"], registry=registry
        )
        self.messages_out = Counter(
            "wasmflow_node_messages_out", "Messages emitted by a node.", ["node"], registry=registry
        )
        self.dropped = Counter(
            "wasmflow_node_messages_dropped",
            "Messages a node dropped: filtered out, or failed under the drop policy.",
            ["node", "reason"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "wasmflow_node_messages_dead_lettered",
            "Failed messages sent to the dead-letter sink.",
            ["node"],
            registry=registry,
        )
        self.failures = Counter(
            "wasmflow_node_failures",
            "Messages that failed in an operator, by kind (trap, timeout, memory, error).",
            ["node", "kind"],
            registry=registry,
        )
        self.instantiations = Counter(
            "wasmflow_node_instantiations",
            "Operator instances created (first start and after each trap, timeout or memory overrun).",
            ["node"],
            registry=registry,
        )
        self.process_seconds = Histogram(
            "wasmflow_node_process_seconds",
            "Time for one operator call, host codec included.",
            ["node"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.degraded = Gauge(
            "wasmflow_node_degraded",
            "1 while a node keeps failing (its instance is replaced with back-off), else 0.",
            ["node"],
            registry=registry,
        )
        self.guest_log_dropped = Counter(
            "wasmflow_node_guest_log_dropped",
            "Guest log records (logging import, stdout, stderr) dropped by the per-node rate limit.",
            ["node"],
            registry=registry,
        )
        self.compile_cache = Counter(
            "wasmflow_compile_cache",
            "Compiled-component cache lookups, by result: hit, miss (compiled), corrupt (removed, then a miss).",
            ["result"],
            registry=registry,
        )
        self.compile_seconds = Histogram(
            "wasmflow_compile_seconds",
            "Time to compile a component on a cache miss.",
            buckets=(0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
            registry=registry,
        )
        # The names the engine brief uses, for the same families.
        self.messages_dropped = self.dropped
        self.messages_dead_lettered = self.dead_lettered

    @classmethod
    def create(cls, registry: CollectorRegistry) -> EngineMetrics:
        """Same as ``EngineMetrics(registry)`` (the spelling ``ControllerMetrics`` uses)."""
        return cls(registry)
