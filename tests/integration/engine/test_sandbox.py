"""A hostile operator fails only its own message, with the right kind, and reaches nothing it was not granted."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.components.engine import wat
from wasmflow.api.kinds import OperatorKind
from wasmflow.engine.host import EngineHost, OperatorNode, OperatorSpec
from wasmflow.engine.message import Message
from wasmflow.errors import EngineError, OperatorFailure

Operator = Callable[..., OperatorNode]
ECHO = Message(b"still here", "t")


def ask(node: OperatorNode, behaviour: str) -> str:
    return node.map(Message(behaviour.encode(), "t")).payload.decode()


def instantiations(host: EngineHost, node: str) -> float:
    assert host.metrics is not None
    return host.metrics.registry.get_sample_value("wasmflow_node_instantiations_total", {"node": node}) or 0.0


@pytest.mark.parametrize(
    ("behaviour", "kind", "text"),
    [
        ("loop", "timeout", "time limit"),
        ("alloc", "memory", "out of memory"),
        ("trap", "trap", "unreachable"),
        ("recurse", "trap", "stack"),
        ("err", "error", "refused on purpose"),
    ],
)
def test_a_hostile_message_fails_alone_and_the_next_one_is_processed(
    operator: Operator, engine_host: EngineHost, behaviour: str, kind: str, text: str
) -> None:
    # A generous deadline: deep recursion in CPython legitimately takes ~0.1 s before the stack runs out.
    node = operator("hostile_map", "map", node=f"hostile-{behaviour}", memory_bytes=128 * 2**20, timeout_seconds=2.0)
    before = instantiations(engine_host, node.node)
    started = time.monotonic()
    with pytest.raises(OperatorFailure) as caught:
        ask(node, behaviour)
    assert (caught.value.node, caught.value.kind) == (node.node, kind)
    assert text in caught.value.message
    assert time.monotonic() - started < 10
    assert node.map(ECHO) == ECHO
    fresh = 0 if kind == "error" else 1
    assert instantiations(engine_host, node.node) == before + fresh


def test_files_are_denied_without_a_grant(operator: Operator) -> None:
    assert ask(operator("hostile_map", "map"), "file").startswith("denied: file")


def test_the_environment_is_empty_without_a_grant(operator: Operator) -> None:
    assert ask(operator("hostile_map", "map"), "env") == "env: "


def test_the_environment_grant_shows_the_process_environment(
    operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WASMFLOW_TEST_GRANT", "1")
    node = operator("hostile_map", "map", grants=frozenset({"environment"}))
    assert "WASMFLOW_TEST_GRANT" in ask(node, "env").removeprefix("env: ").split(",")


def test_a_huge_reply_within_the_memory_cap_comes_back_whole(operator: Operator) -> None:
    node = operator("hostile_map", "map", memory_bytes=256 * 2**20, timeout_seconds=10.0)
    assert len(ask(node, "huge")) == 32 << 20


def test_a_huge_reply_beyond_the_memory_cap_is_a_memory_failure(operator: Operator) -> None:
    node = operator("hostile_map", "map", memory_bytes=64 * 2**20, timeout_seconds=10.0)
    with pytest.raises(OperatorFailure) as caught:
        ask(node, "huge")
    assert caught.value.kind == "memory"
    assert node.map(ECHO) == ECHO


def test_a_component_that_needs_more_memory_than_its_cap_fails_to_start(operator: Operator) -> None:
    with pytest.raises(EngineError, match="'tiny'"):
        operator("identity_map", "map", node="tiny", memory_bytes=2**20)


PERMANENT_RESOLVER_FAILURE = 20  # wasi:sockets error-code case number


def test_sockets_are_denied_without_a_grant(engine_host: EngineHost) -> None:
    node = engine_host.load(OperatorSpec("sockets", OperatorKind.MAP, wat.socket_probe()))
    reply = node.map(ECHO)
    assert (reply.topic, reply.timestamp_ms) == ("err", PERMANENT_RESOLVER_FAILURE)


def test_the_network_grant_opens_sockets(engine_host: EngineHost) -> None:
    spec = OperatorSpec("sockets", OperatorKind.MAP, wat.socket_probe(), grants=frozenset({"network"}))
    assert engine_host.load(spec).map(ECHO).topic == "ok"
