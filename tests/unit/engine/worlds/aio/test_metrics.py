"""The collector behind AIO operators' metrics import (engine/worlds/aio/metrics.py)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from wasmflow.engine.worlds.aio.metrics import AioMetrics, MetricsError


def test_metrics_with_different_label_sets_share_one_family_labelled_by_node() -> None:
    registry = CollectorRegistry()
    metrics = AioMetrics(registry)
    metrics.add_to_counter("map", "requests", 1, [("module", "m")])
    metrics.add_to_counter("map", "requests", 2, [("module", "m"), ("unit", "F")])
    metrics.record_to_histogram("map", "value", 3.5, [])
    text = generate_latest(registry).decode()
    assert 'wasmflow_aio_requests_total{module="m",node="map"} 1.0' in text
    assert 'wasmflow_aio_requests_total{module="m",node="map",unit="F"} 2.0' in text
    assert 'wasmflow_aio_value_count{node="map"} 1.0' in text
    assert 'wasmflow_aio_value_sum{node="map"} 3.5' in text


def test_a_name_used_as_counter_and_histogram_is_an_incompatible_type() -> None:
    metrics = AioMetrics()
    metrics.add_to_counter("n", "x", 1, [])
    with pytest.raises(MetricsError) as caught:
        metrics.record_to_histogram("n", "x", 1.0, [])
    assert caught.value.kind == "incompatible-type"
