"""The message that flows between the nodes of a graph, as the host sees it.

It mirrors the contract's ``message`` record (WIT ``wasmflow:operator/types``) with the payload as plain bytes:
whether the bytes cross into the guest as ``text`` or ``binary`` is the codec's business, not the graph's.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Message:
    """One message: immutable, so a fan-out can hand the same object to several nodes."""

    payload: bytes
    topic: str
    content_type: str | None = None
    #: User properties in order; keys may repeat (MQTT v5 user properties).
    properties: tuple[tuple[str, str], ...] = ()
    #: Source time in milliseconds since the Unix epoch (UTC).
    timestamp_ms: int = 0
