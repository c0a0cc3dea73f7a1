"""The two ports of a pipeline: where messages come from and where they go. Connectors implement them.

A source yields ``Inbound`` messages, each with an ``ack`` that the pipeline calls once every message derived from
it has been handed to its sinks (or dropped on purpose): that is what makes QoS 1 at-least-once. A sink's ``send``
returns only when the message is durably handed over (for MQTT QoS 1: after the PUBACK).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from wasmflow.engine.limits import Refusal
from wasmflow.engine.message import Message


async def _no_ack() -> None:
    return None


@dataclass(frozen=True)
class Inbound:
    """One message from a source. ``refused`` is set when the source refused it (too large: engine/limits.py):
    ``message`` is then only what is kept of it, for the error policy, and it is acknowledged like any other."""

    message: Message
    ack: Callable[[], Awaitable[None]] = _no_ack
    refused: Refusal | None = None


class Source(Protocol):
    """Yields messages until exhausted (a file) or stopped (a broker subscription)."""

    def messages(self) -> AsyncIterator[Inbound]: ...

    async def stop(self) -> None: ...


class Sink(Protocol):
    async def send(self, message: Message) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class InFlightBudget(Protocol):
    """A source whose broker stops sending while ``unacknowledged`` is at ``in_flight_budget`` (MQTT QoS 1 and its
    Receive Maximum). The pipeline reads both to keep accumulate windows from waiting on each other forever."""

    @property
    def in_flight_budget(self) -> int | None: ...

    @property
    def unacknowledged(self) -> int: ...
