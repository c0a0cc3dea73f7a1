"""Every Prometheus metric family of the data plane, created against an injected registry (never the global one).

One object owns them all so the graph runner, the operator nodes and the worker's ``/metrics`` agree on names and
labels. Labels are node names, failure kinds and fixed reasons only: never payloads, topics or operator error texts
(unbounded cardinality, and they may carry data that must not reach a metrics backend).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

#: One call takes micro- to milliseconds; a timeout ends one at ``timeoutPerMessage`` (100 ms by default).
LATENCY_BUCKETS = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip


_go_float = cast(Callable[[float], str], floatToGoString)  # untyped in prometheus-client


class LatencySeries:
    """One node's latency histogram: counts per bucket and the sum, written by the node's one caller at a time."""

    __slots__ = ("_bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.sum += seconds
        self.counts[bisect_left(self._bounds, seconds)] += 1  # the first bucket whose bound is >= seconds


class LatencyHistogram(Collector):
    """A histogram labelled by node, for the per-message path: what prometheus-client exposes, minus its locks.

    prometheus-client's ``Histogram.observe`` takes two locks and walks the buckets in Python: 1 to 2 µs, a tenth
    of a whole operator call on the fast codec. Each series here has one writer at a time (an operator node is
    called by one caller at a time), so plain increments are exact, and a scrape reads them under the GIL (at
    worst a scrape sees a count one observation ahead of the sum, as prometheus-client's own may).
    """

    def __init__(
        self, name: str, documentation: str, label: str, buckets: Sequence[float], registry: CollectorRegistry
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._label = label
        self._bounds = tuple(sorted(buckets))
        self._le = [_go_float(bound) for bound in (*self._bounds, float("inf"))]  # as prometheus-client writes them
        self._series: dict[str, LatencySeries] = {}
        registry.register(self)

    def labels(self, value: str) -> LatencySeries:
        """The series of one label value, created on first use (as prometheus-client's ``labels``)."""
        series = self._series.get(value)
        if series is None:
            series = self._series.setdefault(value, LatencySeries(self._bounds))
        return series

    def describe(self) -> Iterator[HistogramMetricFamily]:
        yield HistogramMetricFamily(self._name, self._documentation, labels=[self._label])

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self._name, self._documentation, labels=[self._label])
        for value, series in list(self._series.items()):
            counts, total = list(series.counts), series.sum
            cumulative, buckets = 0, []
            for le, count in zip(self._le, counts, strict=True):
                cumulative += count
                buckets.append((le, float(cumulative)))
            family.add_metric([value], buckets, total)
        yield family


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
        self.process_seconds = LatencyHistogram(
            "wasmflow_node_process_seconds",
            "Time for one operator call, host codec included.",
            "node",
            LATENCY_BUCKETS,
            registry,
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
