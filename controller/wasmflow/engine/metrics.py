"""Engine and pipeline metrics, created against an injected registry (never the global one)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


@dataclass(frozen=True)
class EngineMetrics:
    """Per-node counters and latency; ``kind`` of a failure is trap, timeout, memory or error."""

    messages_in: Counter
    messages_out: Counter
    dropped: Counter
    dead_lettered: Counter
    failures: Counter
    instantiations: Counter
    process_seconds: Histogram
    degraded: Gauge
    compile_cache: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> EngineMetrics:
        return cls(
            messages_in=Counter(
                "wasmflow_node_messages_in", "Messages received by a node.", ["node"], registry=registry
            ),
            messages_out=Counter(
                "wasmflow_node_messages_out", "Messages emitted by a node.", ["node"], registry=registry
            ),
            dropped=Counter(
                "wasmflow_node_messages_dropped",
                "Messages a node dropped: filtered out, or failed under the drop policy.",
                ["node", "reason"],
                registry=registry,
            ),
            dead_lettered=Counter(
                "wasmflow_node_messages_dead_lettered",
                "Failed messages sent to the dead-letter sink.",
                ["node"],
                registry=registry,
            ),
            failures=Counter(
                "wasmflow_node_failures",
                "Messages that failed in an operator, by kind.",
                ["node", "kind"],
                registry=registry,
            ),
            instantiations=Counter(
                "wasmflow_node_instantiations",
                "Operator instances created (first start and after failures).",
                ["node"],
                registry=registry,
            ),
            process_seconds=Histogram(
                "wasmflow_node_process_seconds",
                "Time an operator spent on one message.",
                ["node"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            degraded=Gauge(
                "wasmflow_node_degraded",
                "1 while a node keeps failing (consecutive failures over the limit).",
                ["node"],
                registry=registry,
            ),
            compile_cache=Counter(
                "wasmflow_compile_cache",
                "Compiled-component cache lookups, by result (hit, miss, corrupt).",
                ["result"],
                registry=registry,
            ),
        )
