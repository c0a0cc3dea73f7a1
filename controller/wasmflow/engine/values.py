"""The values of each world at a graph's edges (engine/steps.py ``Values``): ours is the ``Message`` itself; AIO's
is its data model, stamped with the item's HLC timestamp."""

from __future__ import annotations

from typing import Any

from wasmflow.engine.aio_model import AioMessage, Hlc, from_message, to_message
from wasmflow.engine.message import Message, empty_state


class MessageValues:
    """``wasmflow:operator``: the message is the value; nothing to convert."""

    converts = False

    def inbound(self, message: Message, timestamp: Any) -> Message:
        return message

    def outbound(self, value: Message, timestamp: Any, node: str) -> Message:
        return value

    def empty(self, first: Message, timestamp: Any) -> Message:
        return empty_state(first.topic)


class AioValues:
    """AIO's worlds: a source's message becomes an ``AioMessage`` stamped with its HLC; a sink sends it back."""

    converts = True

    def inbound(self, message: Message, timestamp: Hlc) -> AioMessage:
        return from_message(message, timestamp)

    def outbound(self, value: Any, timestamp: Hlc, node: str) -> Message:
        return to_message(value, timestamp, default_topic=node)

    def empty(self, first: Any, timestamp: Hlc) -> AioMessage:
        return AioMessage(b"", b"", timestamp)


MESSAGES = MessageValues()
AIO_VALUES = AioValues()
