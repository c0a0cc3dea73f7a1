"""Host-side values of Azure IoT Operations (AIO) graphs: the hybrid logical clock and the ``data-model`` cases.

Everything an AIO graph carries is stamped with a hybrid logical clock (HLC): wall time (seconds, nanoseconds),
then a counter that orders items of the same wall time, then the id of the node that stamped it. HLC values are
totally ordered by (wall time, counter, node id); ``HlcClock`` issues stamps by the HLC rules, so the stamps a
clock issues only ever grow, even when the wall clock or the event times it is fed go backwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from wasmflow.engine.message import Message

NANOS_PER_SECOND = 1_000_000_000


@dataclass(frozen=True, slots=True, order=True)
class Hlc:
    """One hybrid-logical-clock stamp (AIO's ``hybrid-logical-clock`` record)."""

    secs: int
    nanos: int
    counter: int = 0
    node_id: str = ""

    @classmethod
    def from_ms(cls, ms: int, counter: int = 0, node_id: str = "") -> Hlc:
        return cls(ms // 1000, (ms % 1000) * 1_000_000, counter, node_id)

    @property
    def wall_ns(self) -> int:
        return self.secs * NANOS_PER_SECOND + self.nanos

    @property
    def ms(self) -> int:
        return self.wall_ns // 1_000_000


class HlcClock:
    """Issues HLC stamps for one node: ``stamp(event_ns)`` follows the HLC send/receive rule.

    The new wall time is the largest of the last stamp's, the event's (when the item carries one) and the physical
    clock's (when ``physical`` is given); when that is the last stamp's wall time, the counter goes up instead.
    Sources of ``wasmflow run`` pass no physical clock, so a replay of the same input gets the same stamps.
    """

    def __init__(self, node_id: str, physical: Callable[[], int] | None = time.time_ns) -> None:
        self.node_id = node_id
        self._physical = physical
        self.last = Hlc(0, 0, 0, node_id)

    def stamp(self, event_ns: int | None = None) -> Hlc:
        candidates = [self.last.wall_ns]
        if event_ns is not None:
            candidates.append(event_ns)
        if self._physical is not None:
            candidates.append(self._physical())
        wall = max(candidates)
        counter = self.last.counter + 1 if wall == self.last.wall_ns else 0
        self.last = Hlc(wall // NANOS_PER_SECOND, wall % NANOS_PER_SECOND, counter, self.node_id)
        return self.last

    def observe(self, other: Hlc) -> Hlc:
        """Merge a stamp seen from elsewhere (a state-store version): the next stamp is after both."""
        if other > self.last:
            self.last = Hlc(other.secs, other.nanos, other.counter, self.node_id)
        return self.stamp()


@dataclass(frozen=True, slots=True)
class InlineSchema:
    name: str
    content: str


#: A message's schema: a schema-registry reference, or the schema itself.
Schema = str | InlineSchema


@dataclass(frozen=True, slots=True)
class AioMessage:
    """AIO's ``message`` record (topic and payload as bytes, as AIO keeps them)."""

    payload: bytes
    topic: bytes
    timestamp: Hlc
    content_type: str | None = None
    properties: tuple[tuple[str, str], ...] = ()
    schema: Schema | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """AIO's ``snapshot`` record: one frame of a media stream."""

    timestamp: Hlc
    format: str
    width: int
    height: int
    frame: bytes


#: AIO's ``data-model`` variant: bare bytes, a message, or a snapshot.
DataModel = bytes | AioMessage | Snapshot


def from_message(message: Message, timestamp: Hlc) -> AioMessage:
    """The AIO message for a message from one of our sources, stamped ``timestamp``."""
    return AioMessage(
        payload=message.payload,
        topic=message.topic.encode(),
        timestamp=timestamp,
        content_type=message.content_type,
        properties=message.properties,
    )


def to_message(data: DataModel, timestamp: Hlc, default_topic: str) -> Message:
    """The message a sink writes for ``data`` leaving the graph at ``timestamp``."""
    if isinstance(data, AioMessage):
        return Message(
            payload=data.payload,
            topic=data.topic.decode("utf-8", "replace") or default_topic,
            content_type=data.content_type,
            properties=data.properties,
            timestamp_ms=data.timestamp.ms or timestamp.ms,
        )
    if isinstance(data, Snapshot):
        return Message(
            payload=data.frame,
            topic=default_topic,
            content_type=data.format or None,
            properties=(("width", str(data.width)), ("height", str(data.height))),
            timestamp_ms=data.timestamp.ms or timestamp.ms,
        )
    return Message(payload=data, topic=default_topic, timestamp_ms=timestamp.ms)
