"""The metrics AIO operators record through the ``metrics`` import, exposed to Prometheus on the worker's /metrics.

Each operator name becomes a family ``wasmflow_aio_<name>`` (counters get ``_total``), every sample labelled
``node`` plus the operator's own labels. AIO operators use different label sets under one name (AIO's temperature
sample counts ``requests`` by ``module`` and by ``module, unit``), which prometheus_client's fixed-label families
refuse; the exposition format allows it, so this is a custom collector that keeps samples per label set. Label
sets are bounded per node (``max_series``): past the bound a call returns a ``metrics-error`` instead of growing.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from wasmflow.engine.metrics import LATENCY_BUCKETS

PREFIX = "wasmflow_aio_"
#: Operators measure anything (bytes, degrees, counts): decades from 1e-6 to 1e9.
BUCKETS = (*LATENCY_BUCKETS, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e9)
_INVALID = re.compile(r"[^a-zA-Z0-9_]")
_LABEL_INVALID = re.compile(r"[^a-zA-Z0-9_]")

Labels = tuple[tuple[str, str], ...]


class MetricsError(Exception):
    """A call the operator made wrongly; ``kind`` is ``incompatible-type`` or ``lock-error`` (AIO's cases)."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)


def family_name(name: str) -> str:
    cleaned = _INVALID.sub("_", name).strip("_") or "unnamed"
    return PREFIX + (cleaned if not cleaned[0].isdigit() else "_" + cleaned)


def _labels(node: str, labels: list[tuple[str, str]]) -> Labels:
    pairs = {"node": node}
    for key, value in labels:
        clean = _LABEL_INVALID.sub("_", key) or "label"
        if clean[0].isdigit():
            clean = "_" + clean
        if clean != "node" and not clean.startswith("__"):
            pairs[clean] = value
    return tuple(sorted(pairs.items()))


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: float = 0.0
    count: int = 0


class AioMetrics(Collector):
    """Every AIO operator metric of one registry; register once, share between nodes."""

    def __init__(self, registry: CollectorRegistry | None = None, *, max_series: int = 1000) -> None:
        self.max_series = max_series
        self._counters: dict[str, dict[Labels, float]] = {}
        self._histograms: dict[str, dict[Labels, _Histogram]] = {}
        self._series: dict[str, int] = {}
        self._kinds: dict[str, str] = {}
        self._lock = threading.Lock()
        if registry is not None:
            registry.register(self)

    def _admit(self, node: str, name: str, kind: str, exists: bool) -> None:
        known = self._kinds.setdefault(name, kind)
        if known != kind:
            raise MetricsError("incompatible-type", f"metric {name!r} is a {known}, not a {kind}")
        if not exists:
            if self._series.get(node, 0) >= self.max_series:
                raise MetricsError("incompatible-type", f"node {node!r} has {self.max_series} series already")
            self._series[node] = self._series.get(node, 0) + 1

    def add_to_counter(self, node: str, name: str, value: int, labels: list[tuple[str, str]]) -> None:
        key = _labels(node, labels)
        family = family_name(name)
        with self._lock:
            series = self._counters.setdefault(family, {})
            self._admit(node, family, "counter", key in series)
            series[key] = series.get(key, 0) + value

    def record_to_histogram(self, node: str, name: str, value: float, labels: list[tuple[str, str]]) -> None:
        if math.isnan(value):
            raise MetricsError("incompatible-type", f"histogram {name!r} cannot record NaN")
        key = _labels(node, labels)
        family = family_name(name)
        with self._lock:
            series = self._histograms.setdefault(family, {})
            self._admit(node, family, "histogram", key in series)
            histogram = series.setdefault(key, _Histogram())
            for i, bound in enumerate(BUCKETS):
                if value <= bound:
                    histogram.counts[i] += 1
            histogram.total += value
            histogram.count += 1

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            counters = {n: dict(s) for n, s in self._counters.items()}
            histograms = {
                n: {k: (list(h.counts), h.total, h.count) for k, h in s.items()} for n, s in self._histograms.items()
            }
        for name, series in counters.items():
            counter = CounterMetricFamily(name, "Counter recorded by AIO operators (metrics.add-to-counter).")
            for labels, value in series.items():
                counter.add_sample(name + "_total", dict(labels), value)
            yield counter
        for name, hseries in histograms.items():
            histogram = HistogramMetricFamily(
                name, "Histogram recorded by AIO operators (metrics.record-to-histogram)."
            )
            for labels, (counts, total, count) in hseries.items():
                base = dict(labels)
                for bound, cumulative in zip(BUCKETS, counts, strict=True):
                    histogram.add_sample(name + "_bucket", {**base, "le": _bound(bound)}, cumulative)
                histogram.add_sample(name + "_bucket", {**base, "le": "+Inf"}, count)
                histogram.add_sample(name + "_count", base, count)
                histogram.add_sample(name + "_sum", base, total)
            yield histogram


def _bound(value: float) -> str:
    return repr(float(value))
