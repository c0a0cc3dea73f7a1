"""Messages survive a round trip through a real guest unchanged, through both codec paths."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.components.engine import wat
from wasmflow.engine import codec
from wasmflow.engine.host import EngineHost, OperatorNode
from wasmflow.engine.message import Message

MESSAGES = {
    "ascii text": Message(b'{"value": 21.5}', "factory/1/temperature", "application/json", (), 1_700_000_000_000),
    "utf-8 text": Message("température: 21,5 °C".encode(), "café/ω", None, (), 0),
    "non-utf-8 bytes": Message(b"\xff\xfe\x00\x01binary\x80", "raw", "application/octet-stream", (), 1),
    "empty payload": Message(b"", "", None, (), 0),
    "properties with repeated keys": Message(b"x", "t", None, (("k", "1"), ("k", "2"), ("ünï", "çødé"), ("", "")), 5),
    "largest timestamp": Message(b"x", "t", "", (), 2**64 - 1),
    "1 MiB of text": Message(b"a" * 2**20, "big", "text/plain", (), 2),
    "1 MiB of bytes": Message(bytes(range(256)) * 4096, "big", None, (), 3),
}


@pytest.fixture(params=[True, False], ids=["fast", "plain"])
def identity(request: pytest.FixtureRequest, host: EngineHost, load: Callable[..., OperatorNode]) -> OperatorNode:
    host.fast_codec = request.param
    return load(timeout_seconds=30.0)  # these tests are about values; the plain path spends seconds on 1 MiB


@pytest.mark.parametrize("msg", MESSAGES.values(), ids=MESSAGES.keys())
def test_identity_map_returns_the_message_it_was_given(identity: OperatorNode, msg: Message) -> None:
    assert identity.map(msg) == msg


def test_the_same_node_keeps_round_tripping_as_sizes_and_properties_change(identity: OperatorNode) -> None:
    for msg in [*MESSAGES.values(), *MESSAGES.values()]:
        assert identity.map(msg) == msg


@pytest.mark.parametrize(
    ("payload", "case"),
    [(b"plain", "text"), ("ünïcode".encode(), "text"), (b"", "text"), (b"\xff", "binary"), (b"ok\xc3", "binary")],
)
def test_valid_utf8_travels_as_text_and_anything_else_as_binary(
    load: Callable[..., OperatorNode], payload: bytes, case: str
) -> None:
    reporter = load(wat.REPORT_CASE)
    result = reporter.map(Message(payload, "t"))
    assert result.topic == case
    assert result.payload == payload


@pytest.mark.parametrize("payload", [b"y", b"yes", b"y\xff"])
def test_a_filter_keeps_what_it_accepts(load: Callable[..., OperatorNode], payload: bytes) -> None:
    assert load(kind="filter").filter(Message(payload, "t")) is True


@pytest.mark.parametrize("payload", [b"", b"no", b"\xff"])
def test_a_filter_drops_what_it_refuses(load: Callable[..., OperatorNode], payload: bytes) -> None:
    assert load(kind="filter").filter(Message(payload, "t")) is False


text = st.text(max_size=20)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    msg=st.builds(
        Message,
        payload=st.binary(max_size=300),
        topic=text,
        content_type=st.none() | text,
        properties=st.lists(st.tuples(text, text), max_size=4).map(tuple),
        timestamp_ms=st.integers(0, 2**64 - 1),
    )
)
def test_any_message_round_trips_through_the_fast_path(load: Callable[..., OperatorNode], msg: Message) -> None:
    assert load().map(msg) == msg


def test_payload_value_picks_the_variant_case() -> None:
    assert codec.payload_value(b"abc") == "abc"
    assert codec.payload_value("é".encode()) == "é"
    assert codec.payload_value(b"\xff") == b"\xff"
