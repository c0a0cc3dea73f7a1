"""A bounded hand-over from one producer thread (paho's network thread) to one asyncio consumer.

Bounded, so a slow pipeline pushes back: when it is full the producer thread waits, stops reading its socket, and
the broker keeps the rest. Cheap under load: waking an asyncio loop from another thread costs a write to its
self-pipe (and a wake-up of the loop), so the producer does it only when the consumer is actually waiting, not for
every item (about 4 µs a message saved at the rates MQTT reaches here).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Handoff(Generic[T]):
    """``put`` from the producer thread (blocks while full), ``await get()`` on the loop (None once closed)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a hand-over needs room for at least one item")
        self.capacity = capacity
        self._items: deque[T] = deque()
        self._lock = threading.Condition(threading.Lock())
        self._consumer_waiting = False
        self._closed = False
        #: Closed to the producer only: the consumer still gets what is inside, then None.
        self._finishing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = asyncio.Event()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop the consumer runs on (set before the producer starts)."""
        self._loop = loop

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> bool:
        """Add ``item``, waiting while full; False (item not taken) once closed."""
        with self._lock:
            while len(self._items) >= self.capacity and not (self._closed or self._finishing):
                self._lock.wait()
            if self._closed or self._finishing:
                return False
            self._items.append(item)
            wake, self._consumer_waiting = self._consumer_waiting, False
        if wake:
            self._wake()
        return True

    async def get(self) -> T | None:
        """The next item in order; None once closed (items still inside are left: nobody takes them)."""
        while True:
            with self._lock:
                if self._closed:
                    return None
                if self._items:
                    item = self._items.popleft()
                    if len(self._items) == self.capacity - 1:
                        self._lock.notify()  # the producer may be waiting for room
                    return item
                if self._finishing:
                    return None
                self._consumer_waiting = True
                self._ready.clear()
            await self._ready.wait()

    def close(self) -> None:
        """Release a waiting producer (its item is refused) and end the consumer's ``get``."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._wake()

    def finish(self) -> None:
        """Refuse the producer from now on (a waiting one too), but let the consumer take what is inside first."""
        with self._lock:
            self._finishing = True
            self._lock.notify_all()
        self._wake()

    def _wake(self) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._ready.set)
        except RuntimeError:  # the loop is closed: no consumer left to wake
            return
