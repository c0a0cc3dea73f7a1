"""Every Prometheus metric family of the data plane, created against an injected registry.

One object owns them all so the graph runner, the operator nodes and the worker's ``/metrics`` agree on names and
labels. Labels are node names and failure kinds only: never payloads, topics or operator error texts (unbounded
cardinality, and they may carry data that must not reach a metrics backend).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: Per-message processing times are micro- to milliseconds; a timeout ends one at ``timeoutPerMessage``.
_PROCESS_BUCKETS = (
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)


class EngineMetrics:
    """The engine's metric families; create one per registry (a registry refuses duplicate names)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.messages_in = Counter(
            "wasmflow_engine_messages_in",
            "Messages received by a node.",
            ["node"],
            registry=registry,
        )
        self.messages_out = Counter(
            "wasmflow_engine_messages_out",
            "Messages emitted by a node.",
            ["node"],
            registry=registry,
        )
        self.messages_dropped = Counter(
            "wasmflow_engine_messages_dropped",
            "Messages dropped by a node: filtered out, or failed under the drop error policy.",
            ["node"],
            registry=registry,
        )
        self.messages_dead_lettered = Counter(
            "wasmflow_engine_messages_dead_lettered",
            "Messages that failed in a node and were sent to its dead-letter topic.",
            ["node"],
            registry=registry,
        )
        self.failures = Counter(
            "wasmflow_engine_failures",
            "Messages that failed inside an operator, by kind (trap, timeout, memory, error).",
            ["node", "kind"],
            registry=registry,
        )
        self.instantiations = Counter(
            "wasmflow_engine_instantiations",
            "Operator instances created: one at start, one more after each trap, timeout or memory overrun.",
            ["node"],
            registry=registry,
        )
        self.process_seconds = Histogram(
            "wasmflow_engine_process_seconds",
            "Time for one operator call, host codec included.",
            ["node"],
            buckets=_PROCESS_BUCKETS,
            registry=registry,
        )
        self.degraded = Gauge(
            "wasmflow_engine_node_degraded",
            "1 while a node keeps failing (its instance is being replaced with backoff), else 0.",
            ["node"],
            registry=registry,
        )
        self.guest_log_dropped = Counter(
            "wasmflow_engine_guest_log_dropped",
            "Guest log records (logging import, stdout, stderr) dropped by the per-node rate limit.",
            ["node"],
            registry=registry,
        )
        self.compile_cache_hits = Counter(
            "wasmflow_engine_compile_cache_hits",
            "Components loaded from the compiled-component cache.",
            registry=registry,
        )
        self.compile_cache_misses = Counter(
            "wasmflow_engine_compile_cache_misses",
            "Components compiled because the cache had no usable entry (absent, stale or corrupt).",
            registry=registry,
        )
        self.compile_seconds = Histogram(
            "wasmflow_engine_compile_seconds",
            "Time to compile a component on a cache miss.",
            buckets=(0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
            registry=registry,
        )
