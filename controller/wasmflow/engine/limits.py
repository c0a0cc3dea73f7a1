"""How large a message a source may hand to a pipeline, and what is kept of one that is larger.

Every source checks each message with :func:`refusal` where it reads it (MQTT: in paho's thread, before the bounded
hand-over; JSON Lines: as each line is parsed), so an oversized payload is never queued, never lowered into a
guest, and never copied per node. The source hands the pipeline :func:`kept_of` the message instead (its start,
within fixed bounds) together with the refusal text; the pipeline gives it to the error policy (dead letter or
drop) and acknowledges it, so it does not come back. Why a bound at all: a binary payload crosses wasmtime's C API
as one 32-byte C value and one 48-byte Rust value per byte, both ways (DESIGN.md section 6), so one large message
costs a worker many times its size while an operator runs.

The size of a message is what MQTT carries of it: payload, topic, content type and user properties (UTF-8 bytes).
"""

from __future__ import annotations

from dataclasses import dataclass

from wasmflow.engine.message import Message

#: What a dead letter keeps of an oversized message's payload: its first bytes, enough to recognise it.
PAYLOAD_HEAD_BYTES = 1024
#: What it keeps of the topic, the content type and each property's key and value (characters).
TEXT_HEAD_CHARS = 1024
#: User properties a message may carry. MQTT sets no number: each pair costs Python objects and three C values
#: per operator call (a few hundred bytes), so a message of tiny pairs would cost far more than its size.
MAX_PROPERTIES = 256
#: User properties a dead letter keeps of a refused message.
KEPT_PROPERTIES = 32


def message_size(msg: Message) -> int:
    """Bytes of payload, topic, content type and user properties (keys and values), as UTF-8."""
    size = len(msg.payload) + len(msg.topic.encode())
    if msg.content_type is not None:
        size += len(msg.content_type.encode())
    for key, value in msg.properties:
        size += len(key.encode()) + len(value.encode())
    return size


def refusal(msg: Message, limit: int) -> str | None:
    """Why a source must not pass ``msg`` on (``too large: N bytes > limit L bytes``), or None when it fits.

    The common case costs a few length checks: text is measured exactly only when four bytes per character
    (the most UTF-8 needs) could exceed the limit.
    """
    if len(msg.properties) > MAX_PROPERTIES:
        return f"too many user properties: {len(msg.properties)} > limit {MAX_PROPERTIES}"
    chars = len(msg.topic) + (len(msg.content_type) if msg.content_type is not None else 0)
    for key, value in msg.properties:
        chars += len(key) + len(value)
    if len(msg.payload) + 4 * chars <= limit:
        return None
    size = message_size(msg)
    if size <= limit:
        return None
    return f"too large: {size} bytes > limit {limit} bytes"


def kept_of(msg: Message) -> Message:
    """What an error policy gets of a refused message: its first ``PAYLOAD_HEAD_BYTES`` of payload, topic, content
    type, timestamp and first properties, each cut to a fixed length (a few tens of KiB at most)."""
    return Message(
        payload=msg.payload[:PAYLOAD_HEAD_BYTES],
        topic=msg.topic[:TEXT_HEAD_CHARS],
        content_type=None if msg.content_type is None else msg.content_type[:TEXT_HEAD_CHARS],
        properties=tuple((k[:TEXT_HEAD_CHARS], v[:TEXT_HEAD_CHARS]) for k, v in msg.properties[:KEPT_PROPERTIES]),
        timestamp_ms=msg.timestamp_ms,
    )


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a source refused a message (``too large: ...``, with where it was read when the source knows), and the
    size of the payload it had: the pipeline's error policy reports both."""

    reason: str
    payload_size: int


def check(msg: Message, limit: int | None, where: str = "") -> tuple[Message, Refusal | None]:
    """``(msg, None)`` when it fits ``limit`` (None: no limit), else what is kept of it and why it was refused."""
    if limit is None:
        return msg, None
    reason = refusal(msg, limit)
    if reason is None:
        return msg, None
    return kept_of(msg), Refusal(f"{reason} ({where})" if where else reason, len(msg.payload))
