"""Operators of every kind, built by componentize-py, run in the engine as the contract says."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest

from wasmflow.engine.host import OperatorNode
from wasmflow.engine.message import Message, empty_state
from wasmflow.errors import EngineError, OperatorFailure

Operator = Callable[..., OperatorNode]


def reading(value: float) -> Message:
    return Message(json.dumps({"value": value}).encode(), "factory/1/temperature", "application/json", (), 17)


def test_an_identity_map_returns_every_field_unchanged(operator: Operator) -> None:
    node = operator("identity_map", "map")
    for msg in [
        Message(b'{"value": 1}', "t/1", "application/json", (("k", "v"), ("k", "w")), 1_700_000_000_000),
        Message(b"\xff\x00\x80", "raw", None, (), 0),
        Message(b"", "", "", (), 2**64 - 1),
        Message("ünïcödé".encode() * 1000, "u", None, (), 1),
    ]:
        assert node.map(msg) == msg


def test_a_filter_keeps_readings_within_its_configured_bounds(operator: Operator) -> None:
    node = operator("range_filter", "filter", configuration=(("min", "0"), ("max", "100")))
    assert [node.filter(reading(v)) for v in (-1, 0, 50, 100, 101)] == [False, True, True, True, False]


def test_a_branch_sends_readings_above_its_threshold_to_the_true_arm(operator: Operator) -> None:
    node = operator("threshold_branch", "branch", configuration=(("threshold", "30"),))
    assert [node.branch(reading(v)) for v in (29.9, 30, 30.1)] == [False, False, True]


def test_an_accumulate_folds_a_window_from_the_empty_state(operator: Operator) -> None:
    node = operator("average_accumulate", "accumulate")
    state = empty_state("factory/1/temperature")
    for value in (10, 20, 60):
        state = node.accumulate(state, reading(value))
    assert json.loads(state.payload) == {"count": 3, "sum": 90, "avg": 30}
    assert state.content_type == "application/json"


def test_an_operator_error_names_the_node_and_keeps_the_text(operator: Operator) -> None:
    node = operator("range_filter", "filter", node="in-range")
    with pytest.raises(OperatorFailure) as caught:
        node.filter(Message(b"not json", "t"))
    assert (caught.value.node, caught.value.kind) == ("in-range", "error")
    assert "expected JSON with a numeric 'value'" in caught.value.message
    assert node.filter(reading(20)) is True


def test_init_refusing_its_configuration_fails_the_load_with_the_reason(operator: Operator) -> None:
    with pytest.raises(EngineError, match=r"'in-range'.*min must be a number, got 'cold'"):
        operator("range_filter", "filter", node="in-range", configuration=(("min", "cold"),))


def test_guest_logging_and_stdout_reach_the_log_with_the_node_name(
    operator: Operator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "wasmflow.guest")
    node = operator("hostile_map", "map", node="chatty")
    node.map(Message(b"log", "t"))
    texts = [r.getMessage() for r in caplog.records if r.name == "wasmflow.guest"]
    assert "[chatty] hello from the guest" in texts
    assert "[chatty] stdout: printed to stdout" in texts


def test_a_componentize_js_operator_runs_with_wasi_http_linked_but_not_granted(operator: Operator) -> None:
    node = operator("js_f2c_map", "map", configuration=(("precision", "1"),))
    reply = node.map(Message(b'{"value": 212}', "t", "application/json"))
    assert json.loads(reply.payload) == {"value": 100, "unit": "C"}
