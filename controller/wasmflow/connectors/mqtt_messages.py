"""MQTT v5 PUBLISH properties to and from the engine's Message.

Content type travels as the MQTT 5 Content Type property, user properties as MQTT 5 User Properties (ordered,
repeatable pairs: the Message keeps them as a tuple of pairs, so nothing is merged or reordered). The source time
travels as the user property ``timestamp-ms`` (epoch milliseconds): a source takes it when present and valid, and
the receive time otherwise; a sink always writes the Message's own time there. It is not among the Message's
properties, so an operator sees one timestamp, not two that could disagree.
"""

from __future__ import annotations

from collections.abc import Iterable

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from wasmflow.engine.message import Message

TIMESTAMP_PROPERTY = "timestamp-ms"


def source_time(pairs: Iterable[tuple[str, str]], received_ms: int) -> tuple[int, tuple[tuple[str, str], ...]]:
    """(timestamp, the other pairs): the first valid ``timestamp-ms`` wins; without one, the receive time."""
    timestamp: int | None = None
    rest: list[tuple[str, str]] = []
    for key, value in pairs:
        if key != TIMESTAMP_PROPERTY:
            rest.append((key, value))
        elif timestamp is None and value.isascii() and value.isdigit():
            timestamp = int(value)
    return (received_ms if timestamp is None else timestamp), tuple(rest)


def message_from_publish(
    topic: str, payload: bytes | bytearray, properties: Properties | None, received_ms: int
) -> Message:
    """The Message a source hands to the pipeline for one received PUBLISH."""
    user = getattr(properties, "UserProperty", None) or []
    timestamp, pairs = source_time(((str(k), str(v)) for k, v in user), received_ms)
    content_type = getattr(properties, "ContentType", None)
    return Message(
        payload=bytes(payload),
        topic=topic,
        content_type=str(content_type) if content_type else None,
        properties=pairs,
        timestamp_ms=timestamp,
    )


def publish_properties(message: Message) -> Properties:
    """The PUBLISH properties a sink sends for ``message`` (content type, user properties, source time)."""
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    if message.content_type:
        props.ContentType = message.content_type
    pairs = [(k, v) for k, v in message.properties if k != TIMESTAMP_PROPERTY]
    pairs.append((TIMESTAMP_PROPERTY, str(message.timestamp_ms)))
    props.UserProperty = pairs
    return props
