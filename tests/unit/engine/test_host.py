"""Operator instances in their sandbox: a failure fails one message, never the node or the process."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from wasmtime import WasmtimeError

from tests.components.engine import wat
from wasmflow.api.kinds import OperatorKind
from wasmflow.contract.capabilities import classify_import
from wasmflow.engine import sandbox
from wasmflow.engine.host import Backoff, EngineHost, OperatorNode, OperatorSpec
from wasmflow.engine.message import Message
from wasmflow.engine.metrics import EngineMetrics
from wasmflow.errors import EngineError, OperatorFailure

Load = Callable[..., OperatorNode]
GOOD = Message(b"fine", "t")
#: What wasmtime says when a guest calls an import ``define_unknown_imports_as_traps`` linked (ungranted wasi:http).
DENIED_CALL = (
    "error while executing at wasm backtrace:\n    0: 0x2946fd - <unknown>!<wasm function 5765>\n\nCaused by:\n"
    "    unknown import: `wasi:http/types@0.2.10#[constructor]fields` has not been defined\n"
)
BANG = Message(b"!", "t")


def sample(metrics: EngineMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def failure_of(node: OperatorNode, msg: Message) -> OperatorFailure:
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
    failure_of(node, GOOD)
    assert node.degraded
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
    assert sample(metrics, "wasmflow_node_degraded", node="op") == 0


def test_backoff_is_free_at_first_then_doubles_up_to_its_maximum() -> None:
    backoff = Backoff(free=2, initial=0.5, maximum=3.0)
    assert [backoff.delay(n) for n in range(1, 8)] == [0.0, 0.0, 0.5, 1.0, 2.0, 3.0, 3.0]


def test_init_returning_err_fails_the_load_naming_the_node_and_the_reason(host: EngineHost) -> None:
    spec = OperatorSpec("to-celsius", OperatorKind.MAP, wat.operator(init_error="precision must be a number"))
    with pytest.raises(EngineError, match=r"'to-celsius'.*precision must be a number"):
        host.load(spec)


def test_init_receives_the_node_configuration(host: EngineHost) -> None:
    spec = OperatorSpec("n", OperatorKind.MAP, wat.operator(), configuration=(("precision", "1"), ("a", "é")))
    assert host.load(spec).map(GOOD) == GOOD


def test_a_component_without_the_operator_interface_is_refused_at_load(host: EngineHost) -> None:
    with pytest.raises(EngineError, match=r"'op'.*wasmflow:operator/map@0.1.x"):
        host.load(OperatorSpec("op", OperatorKind.MAP, wat.operator("filter")))


def test_a_node_answers_only_to_its_own_kind(load: Load) -> None:
    with pytest.raises(EngineError, match="map operator, not filter"):
        load().filter(GOOD)


def test_a_closed_node_refuses_messages(load: Load) -> None:
    node = load()
    node.close()
    node.close()
    with pytest.raises(EngineError, match="closed"):
        node.map(GOOD)


def test_closing_the_host_closes_its_nodes_and_refuses_new_ones(metrics: EngineMetrics) -> None:
    host = EngineHost(cache_dir=None, metrics=metrics)
    node = host.load(OperatorSpec("op", OperatorKind.MAP, wat.operator()))
    host.close()
    host.close()
    with pytest.raises(EngineError, match="closed"):
        node.map(GOOD)
    with pytest.raises(EngineError, match="closed"):
        host.load(OperatorSpec("op", OperatorKind.MAP, wat.operator()))


def test_every_call_is_timed(load: Load, metrics: EngineMetrics) -> None:
    node = load()
    for _ in range(3):
        node.map(GOOD)
    assert sample(metrics, "wasmflow_node_process_seconds_count", node="op") == 3


def test_imports_no_host_provides_are_refused_by_name() -> None:
    verdicts = [classify_import(n) for n in ("wasi:cli/stdout@0.2.9", "acme:vault/secrets@1.0.0")]
    with pytest.raises(EngineError, match=r"'op'.*acme:vault/secrets@1.0.0"):
        sandbox.refuse_unknown_imports("op", verdicts)


@pytest.mark.parametrize(
    ("text", "output", "kind"),
    [
        ("error while executing\nCaused by:\n    wasm trap: interrupt", "", "timeout"),
        ("wasm trap: all fuel consumed by WebAssembly", "", "timeout"),
        ("wasm trap: wasm `unreachable` instruction executed", "MemoryError\n", "memory"),
        ("wasm trap: wasm `unreachable` instruction executed", "memory allocation of 4096 bytes failed", "memory"),
        ("wasm trap: wasm `unreachable` instruction executed", "Traceback: RuntimeError: boom", "trap"),
        ("wasm trap: call stack exhausted", "", "trap"),
        ("resource limit exceeded: memory count too high at 2", "", "memory"),
        ("resource limit exceeded: table count too high at 5", "", "memory"),
        (DENIED_CALL, "", "trap"),
    ],
)
def test_failures_are_classified_from_the_trap_and_the_guest_output(text: str, output: str, kind: str) -> None:
    assert sandbox.classify_failure(WasmtimeError(text), lambda: output)[0] == kind


def test_a_call_to_an_import_linked_as_denied_names_the_function_and_the_grant() -> None:
    _kind, text = sandbox.classify_failure(WasmtimeError(DENIED_CALL), str)
    assert text == (
        "denied: the operator called wasi:http/types@0.2.10#[constructor]fields, which the WasmModule does not "
        "grant (grant 'http' to allow it)"
    )
