"""The one node lifecycle (engine/node.py), through our world: a failure fails one message, never the node or the
process; a node that keeps failing backs off and says so."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.components.engine import wat
from wasmflow.engine.host import EngineHost
from wasmflow.engine.message import Message
from wasmflow.engine.metrics import EngineMetrics
from wasmflow.engine.node import Backoff, Node
from wasmflow.errors import EngineError, OperatorFailure

Load = Callable[..., Node]
GOOD = Message(b"fine", "t")
BANG = Message(b"!", "t")


def sample(metrics: EngineMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def failure_of(node: Node, msg: Message) -> OperatorFailure:
    with pytest.raises(OperatorFailure) as caught:
        node.map(msg)
    return caught.value


def test_a_trap_fails_that_message_and_the_next_one_runs_in_a_fresh_instance(
    load: Load, metrics: EngineMetrics
) -> None:
    node = load(wat.on_first_byte("!", wat.TRAP))
    failure = failure_of(node, BANG)
    assert (failure.node, failure.kind) == ("op", "trap")
    assert "unreachable" in failure.message
    assert node.map(GOOD) == GOOD
    assert sample(metrics, "wasmflow_node_instantiations_total", node="op") == 2
    assert sample(metrics, "wasmflow_node_failures_total", node="op", kind="trap") == 1


def test_a_busy_loop_is_stopped_at_the_per_message_deadline(load: Load) -> None:
    node = load(wat.on_first_byte("!", wat.LOOP), timeout_seconds=0.05)
    started = time.monotonic()
    failure = failure_of(node, BANG)
    assert failure.kind == "timeout"
    assert time.monotonic() - started < 1.0
    assert node.map(GOOD) == GOOD


def test_fuel_stops_a_busy_loop_long_before_the_deadline(load: Load) -> None:
    node = load(wat.on_first_byte("!", wat.LOOP), timeout_seconds=30.0, fuel=100_000)
    started = time.monotonic()
    failure = failure_of(node, BANG)
    assert failure.kind == "timeout"
    assert "fuel" in failure.message
    assert time.monotonic() - started < 1.0
    assert node.map(GOOD) == GOOD


def test_enough_fuel_lets_a_message_through(load: Load) -> None:
    assert load(fuel=100_000).map(GOOD) == GOOD


def test_the_memory_cap_bounds_a_guest_that_grows_without_end(load: Load) -> None:
    node = load(wat.on_first_byte("!", wat.MEMORY_BOMB), memory_bytes=2 * 2**20)
    failure = failure_of(node, BANG)
    # A bare core module reports nothing before it traps, so the engine cannot tell this from any other trap
    # (see sandbox.classify_failure); guests that report their allocation failure are classified "memory".
    assert failure.kind == "trap"
    assert node.map(GOOD) == GOOD


def test_a_payload_larger_than_the_memory_cap_fails_only_itself(load: Load) -> None:
    node = load(memory_bytes=2**20)
    failure_of(node, Message(b"x" * 2 * 2**20, "t"))
    assert node.map(GOOD) == GOOD


def test_an_err_result_fails_the_message_and_keeps_the_instance(load: Load, metrics: EngineMetrics) -> None:
    node = load(wat.on_first_byte("!", wat.ERR))
    failure = failure_of(node, BANG)
    assert (failure.kind, failure.message) == ("error", "refused on purpose")
    assert node.map(GOOD) == GOOD
    assert sample(metrics, "wasmflow_node_instantiations_total", node="op") == 1
    assert sample(metrics, "wasmflow_node_failures_total", node="op", kind="error") == 1


def test_a_node_that_keeps_failing_is_degraded_and_backs_off_without_running(
    host: EngineHost, load: Load, metrics: EngineMetrics
) -> None:
    host.backoff = Backoff(free=1, initial=60.0)
    node = load(wat.TRAP)
    failure_of(node, GOOD)
    assert not node.degraded
    assert node.last_error is None
    failure_of(node, GOOD)
    assert node.degraded
    assert node.last_error is not None and node.last_error.startswith("trap: ")
    assert "unreachable" in node.last_error
    assert sample(metrics, "wasmflow_node_degraded", node="op") == 1
    started = time.monotonic()
    failure = failure_of(node, GOOD)
    assert "unavailable" in failure.message
    assert time.monotonic() - started < 0.1
    assert sample(metrics, "wasmflow_node_instantiations_total", node="op") == 2  # the third never ran


def test_a_degraded_node_recovers_on_its_first_success(host: EngineHost, load: Load, metrics: EngineMetrics) -> None:
    host.backoff = Backoff(free=0, initial=0.0)
    node = load(wat.on_first_byte("!", wat.TRAP))
    failure_of(node, BANG)
    assert node.degraded
    assert node.map(GOOD) == GOOD
    assert not node.degraded
    assert node.last_error is None
    assert sample(metrics, "wasmflow_node_degraded", node="op") == 0


def test_backoff_is_free_at_first_then_doubles_up_to_its_maximum() -> None:
    backoff = Backoff(free=2, initial=0.5, maximum=3.0)
    assert [backoff.delay(n) for n in range(1, 8)] == [0.0, 0.0, 0.5, 1.0, 2.0, 3.0, 3.0]


def test_a_node_answers_only_to_its_own_kind(load: Load) -> None:
    with pytest.raises(EngineError, match="map operator, not filter"):
        load().filter(GOOD)


def test_a_closed_node_refuses_messages(load: Load) -> None:
    node = load()
    node.close()
    node.close()
    with pytest.raises(EngineError, match="closed"):
        node.map(GOOD)


def test_every_call_is_timed(load: Load, metrics: EngineMetrics) -> None:
    node = load()
    for _ in range(3):
        node.map(GOOD)
    assert sample(metrics, "wasmflow_node_process_seconds_count", node="op") == 3
