"""The data plane's own latency histogram: exposed exactly as prometheus-client's Histogram would expose it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from wasmflow.engine.metrics import LATENCY_BUCKETS, LatencyHistogram

OBSERVATIONS = (0.0, 0.000007, 0.00001, 0.000011, 0.0003, 0.02, 0.1, 0.7, 1.0, 3.5)


def test_the_latency_histogram_exposes_what_prometheus_clients_histogram_would() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    fast = LatencyHistogram("wasmflow_test_seconds", "Test latency.", "node", LATENCY_BUCKETS, ours)
    stock = Histogram("wasmflow_test_seconds", "Test latency.", ["node"], buckets=LATENCY_BUCKETS, registry=theirs)
    for node, share in (("a", OBSERVATIONS), ("b", OBSERVATIONS[::3])):
        for seconds in share:
            fast.labels(node).observe(seconds)
            stock.labels(node).observe(seconds)
    assert _lines(ours) == [line for line in _lines(theirs) if "_created" not in line]


def test_a_bound_is_inclusive_as_prometheus_le_is() -> None:
    registry = CollectorRegistry()
    LatencyHistogram("wasmflow_test_seconds", "Test.", "node", (0.5, 1.0), registry).labels("n").observe(0.5)
    assert registry.get_sample_value("wasmflow_test_seconds_bucket", {"node": "n", "le": "0.5"}) == 1.0
    assert registry.get_sample_value("wasmflow_test_seconds_count", {"node": "n"}) == 1.0


def _lines(registry: CollectorRegistry) -> list[str]:
    """The text exposition; prometheus-client's also has ``_created`` samples (a start time), ours does not."""
    return generate_latest(registry).decode().splitlines()
