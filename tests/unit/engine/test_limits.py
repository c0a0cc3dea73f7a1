"""The message-size rule every source applies (engine/limits.py) and what the broker is told (CONNECT)."""

from __future__ import annotations

from wasmflow.connectors.mqtt_settings import MQTT_MAX_PACKET, maximum_packet_size
from wasmflow.engine.limits import (
    KEPT_PROPERTIES,
    MAX_PROPERTIES,
    PAYLOAD_HEAD_BYTES,
    check,
    kept_of,
    message_size,
    refusal,
)
from wasmflow.engine.message import Message

MiB = 2**20


def test_the_size_counts_payload_topic_content_type_and_properties_in_utf8_bytes() -> None:
    msg = Message(b"12345", "tö", "text/plain", (("k", "vé"),))
    assert message_size(msg) == 5 + 3 + 10 + 1 + 3


def test_a_message_at_the_limit_passes_and_one_byte_more_is_refused_saying_both_sizes() -> None:
    at = Message(b"x" * 1020, "t/ab")
    assert refusal(at, 1024) is None
    over = Message(b"x" * 1021, "t/ab")
    assert refusal(over, 1024) == "too large: 1025 bytes > limit 1024 bytes"


def test_multibyte_text_is_measured_exactly_near_the_limit() -> None:
    assert refusal(Message(b"", "é" * 512), 1024) is None  # 1024 bytes
    assert refusal(Message(b"", "é" * 513), 1024) == "too large: 1026 bytes > limit 1024 bytes"


def test_too_many_properties_are_refused_even_when_small() -> None:
    msg = Message(b"", "t", properties=tuple(("k", "") for _ in range(MAX_PROPERTIES + 1)))
    assert refusal(msg, MiB) == f"too many user properties: {MAX_PROPERTIES + 1} > limit {MAX_PROPERTIES}"


def test_what_is_kept_of_a_refused_message_is_bounded() -> None:
    big = Message(b"\xff" * MiB, "t" * 5000, "c" * 5000, tuple((f"k{i}", "v" * 5000) for i in range(100)), 7)
    kept = kept_of(big)
    assert kept.payload == big.payload[:PAYLOAD_HEAD_BYTES]
    assert len(kept.properties) == KEPT_PROPERTIES
    assert message_size(kept) < 100 * 1024
    assert kept.timestamp_ms == 7


def test_check_names_where_the_message_was_read() -> None:
    msg = Message(b"x" * 2000, "t")
    kept, refused = check(msg, 1024, "in.jsonl:3")
    assert refused is not None and refused.reason == "too large: 2001 bytes > limit 1024 bytes (in.jsonl:3)"
    assert refused.payload_size == 2000 and kept.payload == msg.payload[:PAYLOAD_HEAD_BYTES]
    assert check(msg, None) == (msg, None)


def test_the_broker_may_send_well_beyond_the_limit_so_the_worker_sees_what_it_refuses() -> None:
    assert maximum_packet_size(MiB) == 16 * MiB + 64 * 1024
    assert maximum_packet_size(16 * MiB) == 80 * MiB + 64 * 1024  # at most 64 MiB beyond the limit
    assert maximum_packet_size(200 * MiB) == MQTT_MAX_PACKET
