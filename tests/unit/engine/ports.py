"""Small in-process sources and sinks (engine/ports.py protocols) for driving the runtime in tests: real ports, no
broker. Each records what a test needs to see (acks, sends in flight) and waits on events, never on the clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from wasmflow.engine.message import Message
from wasmflow.engine.ports import Inbound


class ListSource:
    """Yields ``messages`` and ends; counts the acknowledgements (``acked``)."""

    def __init__(self, messages: Sequence[Message]) -> None:
        self.messages_ = list(messages)
        self.acked = 0

    async def _ack(self) -> None:
        self.acked += 1

    async def messages(self) -> AsyncIterator[Inbound]:
        for message in self.messages_:
            yield Inbound(message, self._ack)

    async def stop(self) -> None:
        return None


class BudgetSource(ListSource):
    """Like a QoS 1 subscription whose broker stops at ``budget`` unacknowledged messages: yields ``messages``, then
    waits until stopped (it never ends by itself)."""

    def __init__(self, messages: Sequence[Message], budget: int) -> None:
        super().__init__(messages)
        self.budget = budget
        self.stopped = asyncio.Event()

    @property
    def in_flight_budget(self) -> int | None:
        return self.budget

    @property
    def unacknowledged(self) -> int:
        return len(self.messages_) - self.acked

    async def messages(self) -> AsyncIterator[Inbound]:
        async for inbound in super().messages():
            yield inbound
        await self.stopped.wait()

    async def stop(self) -> None:
        self.stopped.set()


class ListSink:
    """Keeps what it was sent; ``arrived`` is set at every send."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.arrived = asyncio.Event()

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        self.arrived.set()

    async def close(self) -> None:
        return None


class GatedSink(ListSink):
    """A sink whose sends all wait for ``gate`` (a broker holding its PUBACKs): ``waiting`` counts the sends started
    and not finished, ``peak`` the most at once; ``full`` is set once ``expect`` sends wait at the same time."""

    def __init__(self, expect: int) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.expect = expect
        self.full = asyncio.Event()
        self.waiting = 0
        self.peak = 0

    async def send(self, message: Message) -> None:
        self.waiting += 1
        self.peak = max(self.peak, self.waiting)
        if self.waiting >= self.expect:
            self.full.set()
        await self.gate.wait()
        self.waiting -= 1
        await super().send(message)
