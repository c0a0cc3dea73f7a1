"""Message <-> MQTT v5 PUBLISH properties: content type, ordered user properties, source time."""

from __future__ import annotations

from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from wasmflow.connectors.mqtt_messages import (
    TIMESTAMP_PROPERTY,
    encode_publish_properties,
    message_from_publish,
    publish_properties,
    source_time,
)
from wasmflow.engine.message import Message


def _props() -> Any:
    return Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]


def _wire(props: Properties) -> Any:
    """What the receiver decodes: pack and unpack as paho does on the wire."""
    decoded, _length = _props().unpack(props.pack())  # type: ignore[no-untyped-call]
    return decoded


def test_source_time_comes_from_the_timestamp_property() -> None:
    assert source_time([("a", "1"), (TIMESTAMP_PROPERTY, "1700000000123")], 5) == (1700000000123, (("a", "1"),))


def test_source_time_is_the_receive_time_without_a_timestamp_property() -> None:
    assert source_time([("a", "1")], 5) == (5, (("a", "1"),))


def test_an_invalid_timestamp_property_falls_back_to_the_receive_time_and_is_not_kept() -> None:
    assert source_time([(TIMESTAMP_PROPERTY, "yesterday"), (TIMESTAMP_PROPERTY, "-3")], 5) == (5, ())


def test_the_first_valid_timestamp_wins() -> None:
    assert source_time([(TIMESTAMP_PROPERTY, "x"), (TIMESTAMP_PROPERTY, "7"), (TIMESTAMP_PROPERTY, "9")], 5)[0] == 7


def test_non_ascii_digits_are_not_a_timestamp() -> None:
    assert source_time([(TIMESTAMP_PROPERTY, "١٢٣")], 5)[0] == 5


def test_a_publish_becomes_a_message_with_content_type_and_ordered_repeated_properties() -> None:
    props = _props()
    props.ContentType = "application/json"
    props.UserProperty = [("unit", "F"), ("unit", "C"), (TIMESTAMP_PROPERTY, "42"), ("é", "ü")]
    message = message_from_publish("plant/1/temp", bytearray(b'{"t": 70}'), _wire(props), received_ms=99)
    assert message == Message(
        payload=b'{"t": 70}',
        topic="plant/1/temp",
        content_type="application/json",
        properties=(("unit", "F"), ("unit", "C"), ("é", "ü")),
        timestamp_ms=42,
    )
    assert type(message.payload) is bytes


def test_a_publish_without_properties_becomes_a_plain_message_at_receive_time() -> None:
    message = message_from_publish("t", b"\x00\xff", None, received_ms=1234)
    assert message == Message(payload=b"\x00\xff", topic="t", timestamp_ms=1234)


def test_a_message_publishes_its_content_type_properties_and_time() -> None:
    message = Message(b"x", "t", "text/plain", (("k", "v"), ("k", "w")), 1700000000000)
    decoded = _wire(publish_properties(message))
    assert decoded.ContentType == "text/plain"
    assert decoded.UserProperty == [("k", "v"), ("k", "w"), (TIMESTAMP_PROPERTY, "1700000000000")]


def test_a_stale_timestamp_property_is_replaced_by_the_message_time() -> None:
    message = Message(b"x", "t", properties=((TIMESTAMP_PROPERTY, "1"),), timestamp_ms=2)
    assert _wire(publish_properties(message)).UserProperty == [(TIMESTAMP_PROPERTY, "2")]


def test_a_message_survives_the_round_trip_through_publish_properties() -> None:
    message = Message(b"payload", "a/b", "text/csv", (("x", "1"), ("y", "")), 1700000000001)
    back = message_from_publish("a/b", message.payload, _wire(publish_properties(message)), received_ms=0)
    assert back == message


def test_no_content_type_is_sent_when_the_message_has_none() -> None:
    assert not hasattr(_wire(publish_properties(Message(b"", "t"))), "ContentType")


def test_our_property_encoding_is_byte_for_byte_what_paho_would_send() -> None:
    message = Message(b"x", "t", "application/json", (("unit", "C"), ("é", "ü")), 1700000000000)
    props = _props()
    props.ContentType = "application/json"
    props.UserProperty = [("unit", "C"), ("é", "ü"), (TIMESTAMP_PROPERTY, "1700000000000")]
    assert encode_publish_properties(message) == props.pack()


def test_a_property_block_longer_than_127_bytes_decodes() -> None:
    message = Message(b"x", "t", "text/plain", tuple((f"key-{i}", "v" * 100) for i in range(200)), 5)
    assert len(encode_publish_properties(message)) > 16384  # a three-byte length prefix
    back = message_from_publish("t", b"x", _wire(publish_properties(message)), received_ms=0)
    assert back == message


def test_a_property_string_over_65535_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="65535 bytes"):
        encode_publish_properties(Message(b"", "t", properties=(("big", "v" * 70000),)))
