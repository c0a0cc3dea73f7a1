"""The steps of a graph and what the runtime calls on a node to run them, whatever the node's world.

A step is what a node does with one item: map, filter, branch, accumulate, delay (operator steps, a call into the
node's module) and concatenate (the runtime's own: merge inputs in time order, no module). The runtime
(engine/runtime.py) never converts values: an item carries the world's value (our ``Message``, AIO's data model),
the world adapter converts at the sources and sinks, and a node takes and returns its world's values. The item's
timestamp is the time's (engine/time.py): none for count/duration windows, an HLC for AIO's timestamp frontier.

``OperatorNode`` is the contract between the runtime and the node lifecycle (engine/node.py and its world
adapters, engine/worlds/): one method per operator step, called with the world's value; the steps whose AIO
operators see the item's timestamp (branch, delay) get it when the time has one. A node that does not run a step
raises ``EngineError`` when called for it (a graph check refuses such a graph before it runs).
"""

from __future__ import annotations

from typing import Any, Protocol

from wasmflow.api.graph import Step
from wasmflow.engine.message import Message

__all__ = ["OperatorNode", "Step", "Values"]


class OperatorNode(Protocol):
    """What the runtime calls on a node, one item at a time, from the event loop (never two calls at once).

    Values are the world's (``Message`` for ``wasmflow:operator``; ``DataModel`` for AIO). ``timestamp`` is the
    item's time stamp when the graph's time has one (AIO: an ``Hlc``); a world whose operator does not see it is
    never passed one. ``OperatorFailure`` from any call fails that one item (the error policy: drop or
    dead-letter); anything else fails the graph.
    """

    @property
    def node(self) -> str:
        """The node's name (metrics labels, failures)."""
        ...

    @property
    def degraded(self) -> bool:
        """True while the node keeps failing and its instance is replaced with back-off (``/readyz``)."""
        ...

    def map(self, value: Any) -> Any:
        """The item's new value."""
        ...

    def filter(self, value: Any) -> bool:
        """Whether the item goes on."""
        ...

    def branch(self, value: Any, *timestamp: Any) -> bool:
        """Which arm the item takes (``branch(msg)`` ours; ``branch(data, timestamp)`` AIO's)."""
        ...

    def accumulate(self, state: Any, value: Any) -> Any:
        """The window's new state: ``accumulate(state, msg)`` one item at a time (count/duration windows);
        ``accumulate(staged, items)`` a batch of one timestamp's items (AIO)."""
        ...

    def delay(self, value: Any, timestamp: Any) -> Any:
        """The timestamp the item is held until (never earlier than ``timestamp``; AIO only)."""
        ...

    def close(self) -> None:
        """Free the instance; idempotent."""
        ...


class Values(Protocol):
    """The world's values at the edges of a graph: what a source's ``Message`` becomes, what a sink sends.

    The runtime calls it once per item at a source and once at a sink (and for a dead-letter envelope), never per
    node. ``converts`` is False for a world whose value is the ``Message`` itself (ours): then it is not called.
    """

    converts: bool

    def inbound(self, message: Message, timestamp: Any) -> Any:
        """The value a source's message becomes, stamped ``timestamp`` (None without timestamps)."""
        ...

    def outbound(self, value: Any, timestamp: Any, node: str) -> Message:
        """The message a sink sends for ``value`` (``node``: the sink's name, a topic when the value has none)."""
        ...

    def empty(self, first: Any, timestamp: Any) -> Any:
        """The state an accumulate window starts from, given its first item."""
        ...
