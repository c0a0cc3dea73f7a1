"""The AIO host's own parts: hybrid-logical-clock rules, the in-process state store, the metrics collector."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from wasmflow.engine.aio_metrics import AioMetrics, MetricsError
from wasmflow.engine.aio_model import Hlc, HlcClock
from wasmflow.engine.aio_state import FencingRefused, MemoryStateStore, SetCondition


def test_a_clock_takes_event_time_and_counts_when_it_does_not_advance() -> None:
    clock = HlcClock("src", physical=None)
    assert clock.stamp(5_000_000_000) == Hlc(5, 0, 0, "src")
    assert clock.stamp(5_000_000_000) == Hlc(5, 0, 1, "src")
    assert clock.stamp(4_000_000_000) == Hlc(5, 0, 2, "src")  # an older event time never moves the clock back
    assert clock.stamp(6_500_000_000) == Hlc(6, 500_000_000, 0, "src")


def test_a_clock_with_a_physical_clock_never_lags_it() -> None:
    clock = HlcClock("n", physical=lambda: 9_000_000_000)
    assert clock.stamp(1_000_000_000) == Hlc(9, 0, 0, "n")
    assert clock.observe(Hlc(20, 0, 3, "other")) == Hlc(20, 0, 4, "n")


def test_the_state_store_versions_writes_and_honours_conditions() -> None:
    store = MemoryStateStore()
    assert store.get(b"k") == (None, None)
    done, first = store.set(b"k", b"1", None, SetCondition.UNCONDITIONAL, None)
    assert done and first is not None
    assert store.set(b"k", b"2", None, SetCondition.ONLY_IF_DOES_NOT_EXIST, None)[0] is False
    assert store.set(b"k", b"1", None, SetCondition.ONLY_IF_EQUAL_OR_DOES_NOT_EXIST, None)[0] is True
    value, version = store.get(b"k")
    assert value == b"1" and version is not None and version > first
    assert store.delete(b"k", None, b"other")[0] == -1
    assert store.delete(b"k", None, b"1")[0] == 1
    assert store.delete(b"k", None)[0] == 0


def test_a_write_with_an_older_fencing_token_is_refused() -> None:
    store = MemoryStateStore()
    store.set(b"k", b"1", Hlc(10, 0), SetCondition.UNCONDITIONAL, None)
    with pytest.raises(FencingRefused):
        store.set(b"k", b"2", Hlc(9, 0), SetCondition.UNCONDITIONAL, None)
    assert store.set(b"k", b"3", Hlc(11, 0), SetCondition.UNCONDITIONAL, None)[0]


def test_an_expired_key_is_gone() -> None:
    now = [100.0]
    store = MemoryStateStore(monotonic=lambda: now[0])
    store.set(b"k", b"v", None, SetCondition.UNCONDITIONAL, 5.0)
    now[0] = 106.0
    assert store.get(b"k") == (None, None)


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
