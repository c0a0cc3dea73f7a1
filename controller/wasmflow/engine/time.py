"""The time of a running graph: what closes an accumulate window, and whether progress markers flow.

Two times, chosen per graph (engine/runtime.py runs either):

- ``WindowTime`` (our Dataflows): items carry no timestamp; an accumulate window closes after ``count`` items, after
  ``duration`` seconds on the clock, at the end of the input, or early when a source's in-flight budget is full.
  No progress marker flows while the graph runs: each connection carries one, the end, when its producer is done.
- ``FrontierTime`` (AIO's semantics): every item carries a hybrid-logical-clock timestamp issued by its source
  (``HlcClock``: from the message's source time, so a replay gives the same stamps), and along every connection
  travels, in order with the items, the producer's *progress*: "every later item here has a timestamp above F".
  That lets accumulate (one window per timestamp), delay and concatenate know a timestamp is complete without a
  cluster protocol. With the physical clock on (workers), an idle source still advances its progress every
  ``idle_seconds``, so a window closes on time when no message follows it.

Keys order HLC timestamps (``key``); ``END`` is progress past every timestamp: the end of the input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from wasmflow.engine.aio_model import Hlc, HlcClock

Key = tuple[int, int, int]
#: Progress before any timestamp: nothing is known yet.
START: Key = (-1, 0, 0)
#: Progress past every timestamp: the end of the input.
END: Key = (2**64, 0, 0)

__all__ = [
    "END",
    "START",
    "CountWindow",
    "Frontier",
    "FrontierTime",
    "Hlc",
    "HlcClock",
    "Key",
    "StampWindow",
    "Time",
    "WindowTime",
    "key",
]


class Stamped(Protocol):
    """An HLC timestamp, as far as ordering goes."""

    @property
    def secs(self) -> int: ...

    @property
    def nanos(self) -> int: ...

    @property
    def counter(self) -> int: ...


def key(ts: Stamped) -> Key:
    """The order of HLC timestamps: seconds, nanoseconds, then the logical counter."""
    return (ts.secs, ts.nanos, ts.counter)


@dataclass(frozen=True)
class WindowTime:
    """Count/duration windows; no timestamps, no progress markers but the end of each connection."""

    progress = False


@dataclass(frozen=True)
class FrontierTime:
    """HLC timestamps and a progress frontier on every connection (AIO's timely semantics).

    ``physical_clock``: stamp from the wall clock when a message has no source time, and advance an idle source's
    progress every ``idle_seconds`` (workers); off, a replay of the same input gives the same output (tests, files).
    """

    physical_clock: bool = False
    idle_seconds: float = 1.0
    progress = True


Time = WindowTime | FrontierTime


class Frontier:
    """A node's progress: the least of its inputs' (a node with several inputs waits for the slowest)."""

    __slots__ = ("current", "ports")

    def __init__(self, inputs: int) -> None:
        self.ports = [START] * max(inputs, 1)
        self.current = START

    def advance(self, port: int, frontier: Key) -> Key | None:
        """Take ``port``'s new progress; the node's new frontier when it moved, else None."""
        self.ports[port] = max(self.ports[port], frontier)
        least = min(self.ports)
        if least > self.current:
            self.current = least
            return least
        return None


@dataclass(slots=True)
class CountWindow:
    """An open count/duration window: the folded state and the trackers of what it folded."""

    state: Any = None
    trackers: list[Any] = field(default_factory=list)
    count: int = 0
    opened: float = 0.0


@dataclass(slots=True)
class StampWindow:
    """An open window of one timestamp: the staged value so far and the items not folded yet (folded in batches)."""

    timestamp: Any
    staged: Any = None
    pending: list[Any] = field(default_factory=list)
    trackers: list[Any] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.trackers)
