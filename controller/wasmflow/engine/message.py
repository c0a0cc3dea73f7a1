"""The message that flows through a graph: the host-side twin of the contract's ``message`` record."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Message:
    """One message. ``payload`` is always bytes on the host; the codec picks ``text`` or ``binary`` for the guest."""

    payload: bytes
    topic: str
    content_type: str | None = None
    properties: tuple[tuple[str, str], ...] = ()
    timestamp_ms: int = 0


def empty_state(topic: str) -> Message:
    """The state an accumulate window starts from (see the WIT's accumulate comment)."""
    return Message(payload=b"", topic=topic)
