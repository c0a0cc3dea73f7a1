"""Run a validated graph: one asyncio task per node, bounded queues between nodes, at-least-once acknowledgement.

- Backpressure: each node has a bounded queue; a slow sink fills its queue, then its producers wait, up to the
  sources, which stop reading (for MQTT QoS 1 the broker keeps the unacknowledged messages).
- Order: each node handles its queue in order with one task, so messages from one source keep their order.
- Sinks keep a bounded window of sends in flight (``sink_window``): for MQTT QoS 1 a send takes one PUBACK round
  trip, and awaiting them one by one caps a pipeline at one message per round trip. Sends start in queue order
  (a sink's ``send`` must take its place in line before its first await, as ``MqttSink`` does); each releases its
  tracker only when it has returned, so at-least-once and the source's acknowledgement order are unchanged.
- Windows: an accumulate node acknowledges what it folded when its window closes. Over MQTT QoS 1 the broker
  stops at the source's Receive Maximum of unacknowledged messages, so the worker sizes that for the graph's
  count windows (api/frontends/dataflow.py refuses a count window no Receive Maximum covers), and a window closes early,
  saying so, when a source has its whole budget outstanding (``_watch_budgets``): no window waits forever.
- At-least-once: every input carries a tracker; forking to N successors adds N-1 to it, every terminal event
  (delivered to a sink, filtered, dropped, dead-lettered, folded into a window that was then delivered) releases
  one; at zero the source's ``ack`` runs.
- Failure: an ``OperatorFailure`` fails that one message; it goes to the node's error policy (drop and count, or a
  dead-letter sink with an envelope saying which node failed and why) and the node goes on. Anything else a task
  ends with (a sink's message refused by the broker, a failed dead-letter publish, a bug) stops the whole graph:
  every task is supervised (engine/supervision.py) and ``run()`` raises ``NodeError`` naming the node. A broker
  outage is not a failure: a sink waits for the reconnect and resends (connectors/mqtt.py).
- Operators run inline on the event loop: wasmtime calls are CPU-bound and a Store must not be used by two threads
  at once, so a thread pool would add contention and no throughput on the cores a worker gets.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from wasmflow.api.dataflow import DataflowSpec, ErrorAction, ErrorPolicy, Node, NodeType
from wasmflow.api.graph import Graph, Step
from wasmflow.engine.message import Message, empty_state
from wasmflow.engine.metrics import EngineMetrics
from wasmflow.engine.ports import InFlightBudget, Sink, Source
from wasmflow.engine.stats import NodeStats
from wasmflow.engine.supervision import NodeError, Supervisor
from wasmflow.errors import OperatorFailure, WasmflowError

log = logging.getLogger(__name__)

QUEUE_SIZE = 64
#: The failure kind of a message a source refused (engine/limits.py).
TOO_LARGE = "too-large"
#: How often the pipeline looks whether a source has its whole in-flight budget outstanding (windows then close).
BUDGET_CHECK_SECONDS = 0.2
#: Sends a sink node keeps in flight at once (for MQTT QoS 1: PUBLISHes awaiting their PUBACK).
SINK_WINDOW = 32


class Operator(Protocol):
    def map(self, msg: Message) -> Message: ...
    def filter(self, msg: Message) -> bool: ...
    def branch(self, msg: Message) -> bool: ...
    def accumulate(self, state: Message, msg: Message) -> Message: ...


class Tracker:
    """Counts what is still outstanding for one input message; acks it when nothing is."""

    __slots__ = ("_ack", "pending")

    def __init__(self, ack: Callable[[], Any]) -> None:
        self._ack = ack
        self.pending = 1

    async def release(self) -> None:
        self.pending -= 1
        if self.pending == 0:
            await self._ack()


@dataclass
class Envelope:
    message: Message
    trackers: tuple[Tracker, ...]

    def fork(self, ways: int) -> None:
        for tracker in self.trackers:
            tracker.pending += ways - 1

    async def release(self) -> None:
        for tracker in self.trackers:
            await tracker.release()


@dataclass
class _Window:
    state: Message | None = None
    trackers: list[Tracker] = field(default_factory=list)
    count: int = 0
    opened: float = 0.0


def dead_letter_envelope(
    node: str, failure: OperatorFailure, message: Message, *, payload_size: int | None = None
) -> Message:
    """The message a dead-letter sink receives: who failed, why, and the original message (nothing lost).

    A message a source refused as too large (``payload_size`` given) comes with the start of its payload only:
    ``payloadTruncated`` is true and ``payloadSize`` is the size it had (engine/limits.py).
    """
    body: dict[str, Any] = {
        "node": node,
        "kind": failure.kind,
        "error": failure.message,
        "topic": message.topic,
        "properties": [list(p) for p in message.properties],
        "contentType": message.content_type,
        "timestampMs": message.timestamp_ms,
    }
    try:
        body["payload"] = message.payload.decode("utf-8")
    except UnicodeDecodeError:
        body["payloadBase64"] = base64.b64encode(message.payload).decode()
    if payload_size is not None:
        body["payloadSize"] = payload_size
        body["payloadTruncated"] = payload_size > len(message.payload)
    return Message(
        payload=json.dumps(body, separators=(",", ":")).encode(),
        topic=message.topic,
        content_type="application/json",
        properties=(("wasmflow-failed-node", node), ("wasmflow-failure", failure.kind)),
        timestamp_ms=message.timestamp_ms,
    )


class Pipeline:
    """One running graph. ``run()`` returns when every source is exhausted and everything in flight is delivered."""

    def __init__(
        self,
        spec: DataflowSpec,
        graph: Graph,
        *,
        operators: Mapping[str, Operator],
        sources: Mapping[str, Source],
        sinks: Mapping[str, Sink],
        dead_letters: Mapping[tuple[str, str], Sink] | None = None,
        metrics: EngineMetrics | None = None,
        queue_size: int = QUEUE_SIZE,
        sink_window: int = SINK_WINDOW,
    ) -> None:
        if sink_window < 1:
            raise ValueError(f"a sink window needs room for at least one send, got {sink_window}")
        self.spec = spec
        self.graph = graph
        self.nodes: dict[str, Node] = {n.name: n for n in spec.nodes}
        self.operators = operators
        self.sources = sources
        self.sinks = sinks
        self.dead_letters = dict(dead_letters or {})
        self.metrics = metrics
        self.sink_window = sink_window
        self.queues: dict[str, asyncio.Queue[Envelope | None]] = {
            name: asyncio.Queue(maxsize=queue_size) for name in graph.order if graph.step(name) is not Step.SOURCE
        }
        self.stats: dict[str, NodeStats] = {name: NodeStats() for name in graph.order}
        self.windows: dict[str, _Window] = {}
        #: Envelopes a sink took from its queue whose send has not finished (their PUBACKs will acknowledge inputs).
        self._sends_in_flight = 0
        self._supervisor = Supervisor()

    # ---- running ------------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until the sources end (or ``drain()`` stops them), then deliver everything in flight and return.

        Every task is supervised (engine/supervision.py): when one fails (a sink's message refused, a dead-letter
        publish failing, a bug), the rest are cancelled and ``run()`` raises ``NodeError`` naming the node.
        """
        supervisor = self._supervisor = Supervisor()
        workers = {
            name: supervisor.spawn(self._node_loop(name), node=name, doing=self._doing(name)) for name in self.queues
        }
        for name, node in self.nodes.items():
            if node.type is NodeType.ACCUMULATE and node.window and node.window.duration_seconds:
                supervisor.spawn(self._window_ticker(name), node=name, doing="closing its window on time")
        budgeted = {name: s for name, s in self.sources.items() if isinstance(s, InFlightBudget)}
        if budgeted and any(node.type is NodeType.ACCUMULATE for node in self.nodes.values()):
            supervisor.spawn(self._watch_budgets(budgeted), node="(windows)", doing="watching the in-flight budget")
        feeders = [
            supervisor.spawn(self._feed(name), node=name, doing="reading from its source")
            for name in self.graph.sources
        ]
        try:
            await supervisor.guard(self._finish(feeders, workers))
        finally:
            await supervisor.close()

    async def _finish(self, feeders: list[asyncio.Task[None]], workers: dict[str, asyncio.Task[None]]) -> None:
        await asyncio.gather(*feeders)
        # Sources are done: shut nodes down in topological order so each sees everything its inputs sent.
        for name in self.graph.order:
            if name in self.queues:
                await self.queues[name].put(None)
                await workers[name]

    def _doing(self, name: str) -> str:
        kind = self.graph.step(name)
        if kind is Step.SINK:
            return "sending messages to its sink"
        return f"running its {kind.value} operator"

    async def drain(self) -> None:
        """Stop the sources; ``run()`` then finishes what is in flight and returns (SIGTERM).

        Each source ends its ``messages()`` itself once stopped, after handing over what it must not leave
        behind (an MQTT shared subscription: everything the broker had already delivered), so the feeders keep
        reading until then.
        """
        await asyncio.gather(*(source.stop() for source in self.sources.values()))

    async def _feed(self, name: str) -> None:
        async for inbound in self.sources[name].messages():
            self._count_in(name)
            tracker = Tracker(inbound.ack)
            if inbound.refused is not None:  # too large: to the Dataflow's error policy, then acknowledged
                failure = OperatorFailure(name, TOO_LARGE, inbound.refused.reason)
                envelope = Envelope(inbound.message, (tracker,))
                await self._failed(name, self.nodes[name], envelope, failure, inbound.refused.payload_size)
                continue
            await self._emit(name, Envelope(inbound.message, (tracker,)), arm=None)

    async def _emit(self, name: str, envelope: Envelope, arm: bool | None) -> None:
        targets = [e.target for e in self.graph.outputs[name] if arm is None or e.arm is arm]
        if not targets:
            await envelope.release()
            return
        self.stats[name].emitted += 1
        if self.metrics:
            self.metrics.messages_out.labels(name).inc()
        envelope.fork(len(targets))
        for target in targets:
            await self.queues[target].put(envelope)

    def _count_in(self, name: str) -> None:
        self.stats[name].received += 1
        if self.metrics:
            self.metrics.messages_in.labels(name).inc()

    async def _node_loop(self, name: str) -> None:
        node = self.nodes[name]
        queue = self.queues[name]
        if node.type is NodeType.SINK:
            await self._sink_loop(name, queue)
            return
        while True:
            envelope = await queue.get()
            if envelope is None:
                if node.type is NodeType.ACCUMULATE:
                    await self._close_window(name)
                return
            self._count_in(name)
            await self._operate(name, node, envelope)

    async def _sink_loop(self, name: str, queue: asyncio.Queue[Envelope | None]) -> None:
        """Start one send per envelope, in queue order, with at most ``sink_window`` unfinished; return once all
        have finished (the end of the queue: drain and SIGTERM wait for every PUBACK here).

        A failed send fails the graph at once (the supervisor hears of it when the send ends, not when the next
        message comes): the failed message is never acknowledged (nor, by the source's arrival order, anything
        after it from the same connection), and the node takes no new message. Sends still in flight then are
        abandoned unacknowledged (the broker delivers those inputs again), as is everything behind them.
        """
        room = asyncio.Semaphore(self.sink_window)
        in_flight: set[asyncio.Task[None]] = set()
        failures: list[BaseException] = []

        def settled(task: asyncio.Task[None]) -> None:
            self._sends_in_flight -= 1
            in_flight.discard(task)
            room.release()
            if not task.cancelled() and (error := task.exception()) is not None:
                failures.append(error)
                # At once, not when the next message comes (there may be none): the graph stops, loudly.
                self._supervisor.fail(NodeError(name, "sending a message to its sink", error))

        try:
            while True:
                envelope = await queue.get()
                if failures:
                    raise failures[0]
                if envelope is None:
                    break
                self._count_in(name)
                self._sends_in_flight += 1  # from leaving the queue to its done-callback: never seen as idle
                await room.acquire()
                if failures:
                    raise failures[0]
                task = asyncio.create_task(self._deliver(name, envelope), name=f"send:{name}")
                in_flight.add(task)
                task.add_done_callback(settled)
            if in_flight:
                await asyncio.wait(set(in_flight))
            if failures:
                raise failures[0]
        finally:
            for task in list(in_flight):
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)

    async def _deliver(self, name: str, envelope: Envelope) -> None:
        await self.sinks[name].send(envelope.message)
        self.stats[name].emitted += 1
        if self.metrics:
            self.metrics.messages_out.labels(name).inc()
        await envelope.release()

    async def _operate(self, name: str, node: Node, envelope: Envelope) -> None:
        operator = self.operators[name]
        started = time.perf_counter()
        try:
            if node.type is NodeType.MAP:
                result: Message | bool = operator.map(envelope.message)
            elif node.type is NodeType.FILTER:
                result = operator.filter(envelope.message)
            elif node.type is NodeType.BRANCH:
                result = operator.branch(envelope.message)
            else:
                await self._accumulate(name, node, operator, envelope)
                return
        except OperatorFailure as failure:
            await self._failed(name, node, envelope, failure)
            return
        finally:
            self.stats[name].latencies.add(time.perf_counter() - started)
        if node.type is NodeType.MAP:
            assert isinstance(result, Message)
            await self._emit(name, Envelope(result, envelope.trackers), arm=None)
        elif node.type is NodeType.FILTER:
            if result:
                await self._emit(name, envelope, arm=None)
            else:
                self._dropped(name, "filtered")
                await envelope.release()
        else:
            await self._emit(name, envelope, arm=bool(result))

    async def _accumulate(self, name: str, node: Node, operator: Operator, envelope: Envelope) -> None:
        window = self.windows.setdefault(name, _Window())
        state = window.state or empty_state(envelope.message.topic)
        folded = operator.accumulate(state, envelope.message)  # OperatorFailure: the window keeps its state
        if window.count == 0:
            window.opened = time.monotonic()
        window.state = folded
        window.trackers.extend(envelope.trackers)
        window.count += 1
        assert node.window is not None
        if node.window.count is not None and window.count >= node.window.count:
            await self._close_window(name)

    async def _close_window(self, name: str) -> None:
        window = self.windows.pop(name, None)
        if window is None or window.state is None:
            return
        await self._emit(name, Envelope(window.state, tuple(window.trackers)), arm=None)

    async def _window_ticker(self, name: str) -> None:
        node = self.nodes[name]
        assert node.window is not None and node.window.duration_seconds is not None
        duration = node.window.duration_seconds
        while True:
            await asyncio.sleep(min(duration, 0.5) / 2)
            window = self.windows.get(name)
            if window and window.count and time.monotonic() - window.opened >= duration:
                # Runs between messages of the node's own task (same loop, no await inside the fold): no race.
                await self._close_window(name)

    async def _watch_budgets(self, sources: Mapping[str, InFlightBudget]) -> None:
        """Close the open windows early when a source has its whole in-flight budget outstanding.

        The broker sends a QoS 1 source at most its Receive Maximum of unacknowledged messages, and a window
        acknowledges what it folded only when it closes: a window that needs more than the budget allows (a
        filter before it discarding most messages, a duration window on a busy topic, windows in series) would
        wait forever. The worker sizes the budget for the graph's count windows, so this is the exception, and
        it is logged. Checked every ``BUDGET_CHECK_SECONDS`` (not per message).
        """
        warned: set[str] = set()
        while True:
            await asyncio.sleep(BUDGET_CHECK_SECONDS)
            full = [
                name
                for name, source in sources.items()
                if (budget := source.in_flight_budget) is not None and source.unacknowledged >= budget
            ]
            if not full or not self._stuck():
                continue
            for name in [name for name, window in self.windows.items() if window.count]:
                if name not in warned:
                    warned.add(name)
                    log.warning(
                        "node %r: window closed early: source %s has its whole in-flight budget (%d messages) "
                        "unacknowledged, and the broker sends no more until some are (logged once per node)",
                        name,
                        full[0],
                        sources[full[0]].in_flight_budget,
                    )
                self.stats[name].windows_closed_early += 1
                await self._close_window(name)

    def _stuck(self) -> bool:
        """Nothing but the open windows holds the outstanding inputs: no queue has work and no send awaits its
        PUBACK. A full budget alone is not enough: right after a window closes, its output is on its way to the
        sink and will acknowledge everything it folded, and closing the next window then would cut it short."""
        return self._sends_in_flight == 0 and all(queue.empty() for queue in self.queues.values())

    async def _failed(
        self, name: str, node: Node, envelope: Envelope, failure: OperatorFailure, payload_size: int | None = None
    ) -> None:
        stats = self.stats[name]
        stats.failures[failure.kind] = stats.failures.get(failure.kind, 0) + 1
        policy: ErrorPolicy = node.error_policy or self.spec.error_policy
        log.warning("%s (policy: %s)", failure, policy.action.value)
        if policy.action is ErrorAction.DEAD_LETTER and policy.endpoint and policy.topic:
            sink = self.dead_letters[(policy.endpoint, policy.topic)]
            try:
                await sink.send(dead_letter_envelope(name, failure, envelope.message, payload_size=payload_size))
            except WasmflowError as exc:  # the failed message is not acknowledged: the broker delivers it again
                doing = f"sending a failed message to the dead-letter topic {policy.topic!r}"
                raise NodeError(name, doing, exc) from exc
            stats.dead_lettered += 1
            if self.metrics:
                self.metrics.dead_lettered.labels(name).inc()
        else:
            self._dropped(name, failure.kind)
        await envelope.release()

    def _dropped(self, name: str, reason: str) -> None:
        self.stats[name].dropped += 1
        if self.metrics:
            self.metrics.dropped.labels(name, reason).inc()
