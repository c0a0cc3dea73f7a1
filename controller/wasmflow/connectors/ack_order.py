"""Acknowledge QoS 1 messages in the order they arrived, whatever order the pipeline finishes them in.

MQTT 5 §4.6 asks a receiver to send PUBACKs in the order the PUBLISHes came, and at-least-once needs no message
acknowledged before the pipeline is done with it. The pipeline may finish out of order (a filter drops message 2
while message 1 waits in a window): a finished message is then held until everything before it is finished too.

Packet ids only mean something on the connection that delivered them. After a reconnect the broker redelivers what
was not acknowledged (persistent session) or forgets it (clean session); either way an old id must not be
acknowledged on the new connection, where the broker may have reused it for another message. So every message
carries the connection ``epoch`` it arrived on, and finishing a message of an older epoch acknowledges nothing.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(eq=False)
class Ticket:
    """One delivered QoS 1 message awaiting its acknowledgement."""

    epoch: int
    mid: int
    done: bool = False


class AckOrder:
    """Tracks delivered messages in arrival order; ``finish`` returns the packet ids now due, oldest first."""

    def __init__(self) -> None:
        self._epoch: int | None = None
        self._waiting: deque[Ticket] = deque()

    def track(self, epoch: int, mid: int) -> Ticket:
        """Record a delivery (in arrival order). A newer epoch forgets what the previous connection delivered."""
        if epoch != self._epoch:
            self._epoch = epoch
            self._waiting.clear()
        ticket = Ticket(epoch, mid)
        self._waiting.append(ticket)
        return ticket

    def finish(self, ticket: Ticket) -> list[int]:
        """Mark ``ticket`` done; the packet ids that can be acknowledged now, in arrival order."""
        if ticket.epoch != self._epoch or ticket.done:
            return []
        ticket.done = True
        due: list[int] = []
        while self._waiting and self._waiting[0].done:
            due.append(self._waiting.popleft().mid)
        return due

    @property
    def waiting(self) -> int:
        """Delivered and not yet acknowledged (finished ones held behind an unfinished one included)."""
        return len(self._waiting)
