"""Run a graph, whatever its front-end and world: one asyncio task per node, bounded queues between nodes,
at-least-once acknowledgement. What varies is the graph's time (engine/time.py) and its values (engine/steps.py
``Values``); every graph gets the same dead-letter, sink window, supervision and early window close.

- Steps (engine/steps.py): map, filter, branch, accumulate, delay call the node's operator with the world's value;
  concatenate is the runtime's own. Branch sends ``True``/``False`` to the edges of that arm.
- Time: with ``WindowTime`` an accumulate closes its window on count, duration, the end of the input or early
  (below); no progress marker flows but one per connection at its end. With ``FrontierTime`` every item carries an
  HLC timestamp and progress markers travel with the items: accumulate folds the items of one timestamp (in batches
  of ``ACCUMULATE_BATCH``) and emits when its input's progress passed it, in timestamp order; delay restamps (never
  earlier); concatenate holds each item until every input's progress passed it, so its output is in timestamp order.
- Backpressure: each node has a bounded queue; a slow sink fills its queue, then its producers wait, up to the
  sources, which stop reading (for MQTT QoS 1 the broker keeps the unacknowledged messages).
- Order: each node handles its queue in order with one task, so messages from one source keep their order.
- Sinks keep a bounded window of sends in flight (``sink_window``): for MQTT QoS 1 a send takes one PUBACK round
  trip, and awaiting them one by one caps a graph at one message per round trip. Sends start in queue order (a
  sink's ``send`` takes its place in line before its first await, as ``MqttSink`` does); each releases its tracker
  only when it has returned, so at-least-once and the source's acknowledgement order are unchanged.
- Windows acknowledge what they folded when they close. Over MQTT QoS 1 the broker stops at a source's Receive
  Maximum of unacknowledged messages, so the worker sizes that for the graph's windows, and a window closes early,
  saying so, when a source has its whole budget outstanding and nothing else holds it (``_watch_budgets``).
- At-least-once: every input carries a tracker; forking to N successors adds N-1 to it, every terminal event
  (delivered to a sink, filtered, dropped, dead-lettered, folded into a window that was then delivered) releases
  one; at zero the source's ``ack`` runs.
- Failure: an ``OperatorFailure`` fails that one item; it goes to the node's error policy (drop and count, or a
  dead-letter sink with an envelope saying which node failed and why) and the node goes on. Anything else a task
  ends with (a sink's message refused by the broker, a failed dead-letter publish, a bug) stops the whole graph:
  every task is supervised (engine/supervision.py) and ``run()`` raises ``NodeError`` naming the node.
- Operators run inline on the event loop: wasmtime calls are CPU-bound and a Store must not be used by two threads
  at once, so a thread pool would add contention and no throughput on the cores a worker gets.
"""

from __future__ import annotations

import asyncio
import base64
import heapq
import itertools
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from wasmflow.api.dataflow import ErrorAction, ErrorPolicy
from wasmflow.api.graph import Edge, Graph, GraphNode
from wasmflow.engine.message import Message
from wasmflow.engine.metrics import EngineMetrics
from wasmflow.engine.ports import InFlightBudget, Sink, Source
from wasmflow.engine.stats import NodeStats
from wasmflow.engine.steps import OperatorNode, Step, Values
from wasmflow.engine.supervision import NodeError, Supervisor
from wasmflow.engine.time import (
    END,
    CountWindow,
    Frontier,
    FrontierTime,
    HlcClock,
    Key,
    StampWindow,
    Time,
    WindowTime,
    key,
)
from wasmflow.engine.values import MESSAGES
from wasmflow.errors import EngineError, OperatorFailure, WasmflowError

log = logging.getLogger(__name__)

QUEUE_SIZE = 64
#: The failure kind of a message a source refused (engine/limits.py).
TOO_LARGE = "too-large"
#: How often the runtime looks whether a source has its whole in-flight budget outstanding (windows then close).
BUDGET_CHECK_SECONDS = 0.2
#: Sends a sink node keeps in flight at once (for MQTT QoS 1: PUBLISHes awaiting their PUBACK).
SINK_WINDOW = 32
#: Items of one timestamp handed to an accumulate per call (bounds the list that crosses into the module).
ACCUMULATE_BATCH = 64


class Tracker:
    """Counts what is still outstanding for one input message; acks it when nothing is."""

    __slots__ = ("_ack", "pending")

    def __init__(self, ack: Callable[[], Awaitable[None]]) -> None:
        self._ack = ack
        self.pending = 1

    async def release(self) -> None:
        self.pending -= 1
        if self.pending == 0:
            await self._ack()


class Item:
    """One item in flight: the world's value, its timestamp (None without timestamps) and its inputs' trackers."""

    __slots__ = ("timestamp", "trackers", "value")

    def __init__(self, value: Any, timestamp: Any, trackers: tuple[Tracker, ...]) -> None:
        self.value = value
        self.timestamp = timestamp
        self.trackers = trackers

    async def release(self) -> None:
        for tracker in self.trackers:
            await tracker.release()


class Progress:
    """A progress marker on one input ``port``: every later item there has a timestamp above ``frontier``."""

    __slots__ = ("frontier", "port")

    def __init__(self, port: int, frontier: Key) -> None:
        self.port = port
        self.frontier = frontier


Entry = Item | Progress


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


class _Wiring:
    """A node's outputs resolved once: the queues of every edge and of each arm, and each edge's port."""

    __slots__ = ("all", "arms", "edges")

    def __init__(self, outputs: tuple[Edge, ...], queues: Mapping[str, asyncio.Queue[Entry]]) -> None:
        self.all = [queues[o.target] for o in outputs]
        self.arms = {arm: [queues[o.target] for o in outputs if o.arm is None or o.arm is arm] for arm in (True, False)}
        self.edges = [(queues[o.target], o.port) for o in outputs]


class Runtime:
    """One running graph. ``run()`` returns when every source is exhausted and everything in flight is delivered.

    ``operators`` are ``OperatorNode``s (engine/steps.py); typed ``Any`` until every node class implements the
    whole Protocol (today's ``host.OperatorNode`` has no ``delay``, ``aio_host.AioOperatorNode`` no ``degraded``).
    """

    def __init__(
        self,
        graph: Graph,
        *,
        error_policy: ErrorPolicy | None = None,
        operators: Mapping[str, Any],
        sources: Mapping[str, Source],
        sinks: Mapping[str, Sink],
        dead_letters: Mapping[tuple[str, str], Sink] | None = None,
        metrics: EngineMetrics | None = None,
        time: Time | None = None,
        values: Values = MESSAGES,
        queue_size: int = QUEUE_SIZE,
        sink_window: int = SINK_WINDOW,
    ) -> None:
        if sink_window < 1:
            raise ValueError(f"a sink window needs room for at least one send, got {sink_window}")
        self.graph = graph
        self.time: Time = time or WindowTime()
        self.timed = isinstance(self.time, FrontierTime)
        for name in graph.order:
            if graph.nodes[name].step is Step.DELAY and not self.timed:
                raise EngineError(f"node {name!r}: a delay needs timestamps (the graph's time has none)")
        self.operators: Mapping[str, OperatorNode] = operators
        self.sources = sources
        self.sinks = sinks
        self.dead_letters = dict(dead_letters or {})
        self.metrics = metrics
        self.values = values
        self.sink_window = sink_window
        self.queues: dict[str, asyncio.Queue[Entry]] = {
            name: asyncio.Queue(maxsize=queue_size) for name in graph.order if graph.nodes[name].step is not Step.SOURCE
        }
        self._wiring = {name: _Wiring(graph.outputs.get(name, ()), self.queues) for name in graph.order}
        #: Each node's error policy: its own, else the graph's; None drops and counts.
        self.policies = {name: graph.nodes[name].error_policy or error_policy for name in graph.order}
        self.stats: dict[str, NodeStats] = {name: NodeStats() for name in graph.order}
        #: Open windows: one per accumulate node (count/duration time), or one per timestamp (frontier time).
        self.windows: dict[str, CountWindow] = {}
        self.stamped: dict[str, dict[Key, StampWindow]] = {}
        #: Items a concatenate holds until its progress passes their timestamp (a heap per node).
        self._held: dict[str, list[tuple[Key, int, Item]]] = {}
        #: Items a sink took from its queue whose send has not finished (their PUBACKs will acknowledge inputs).
        self._sends_in_flight = 0
        self._stopping = asyncio.Event()
        self._supervisor = Supervisor()

    # ---- running ------------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until the sources end (or ``drain()`` stops them), then deliver everything in flight and return.

        Every task is supervised (engine/supervision.py): when one fails (a sink's message refused, a dead-letter
        publish failing, a bug), the rest are cancelled and ``run()`` raises ``NodeError`` naming the node.
        """
        supervisor = self._supervisor = Supervisor()
        nodes = self.graph.nodes
        workers = [supervisor.spawn(self._node_loop(name), node=name, doing=self._doing(name)) for name in self.queues]
        for name, node in nodes.items():
            if node.step is Step.ACCUMULATE and node.window and node.window.duration_seconds and not self.timed:
                supervisor.spawn(self._window_ticker(name), node=name, doing="closing its window on time")
        budgeted = {name: s for name, s in self.sources.items() if isinstance(s, InFlightBudget)}
        if budgeted and any(node.step is Step.ACCUMULATE for node in nodes.values()):
            supervisor.spawn(self._watch_budgets(budgeted), node="(windows)", doing="watching the in-flight budget")
        feeders = [
            supervisor.spawn(self._feed(name), node=name, doing="reading from its source")
            for name in self.graph.sources
        ]
        try:
            await supervisor.guard(self._finish(feeders, workers))
        finally:
            await supervisor.close()

    @staticmethod
    async def _finish(feeders: list[asyncio.Task[None]], workers: list[asyncio.Task[None]]) -> None:
        # Each node ends when every input has sent its end (progress END), after handing on what it holds.
        await asyncio.gather(*feeders)
        await asyncio.gather(*workers)

    def _doing(self, name: str) -> str:
        kind = self.graph.nodes[name].step
        if kind is Step.SINK:
            return "sending messages to its sink"
        return f"running its {kind.value} step"

    async def drain(self) -> None:
        """Stop the sources; ``run()`` then finishes what is in flight and returns (SIGTERM).

        Each source ends its ``messages()`` itself once stopped, after handing over what it must not leave
        behind (an MQTT shared subscription: everything the broker had already delivered), so the feeders keep
        reading until then.
        """
        self._stopping.set()
        await asyncio.gather(*(source.stop() for source in self.sources.values()))

    # ---- sources --------------------------------------------------------------------------------------------

    async def _feed(self, name: str) -> None:
        if self.timed:
            await self._feed_stamped(name)
        else:
            await self._feed_plain(name)
        await self._progress(name, END)

    async def _feed_plain(self, name: str) -> None:
        outputs = self._wiring[name].all
        convert = self.values.inbound if self.values.converts else None
        async for inbound in self.sources[name].messages():
            self._count_in(name)
            tracker = Tracker(inbound.ack)
            if inbound.refused is not None:  # too large: to the graph's error policy, then acknowledged
                await self._refused(
                    name, inbound.message, tracker, inbound.refused.reason, inbound.refused.payload_size
                )
                continue
            value = inbound.message if convert is None else convert(inbound.message, None)
            await self._emit(name, Item(value, None, (tracker,)), outputs)

    async def _feed_stamped(self, name: str) -> None:
        assert isinstance(self.time, FrontierTime)
        clock = HlcClock(name, physical=time.time_ns if self.time.physical_clock else None)
        outputs = self._wiring[name].all
        # Stamping and sending happen under one lock, so the idle ticker's progress never overtakes an item.
        lock = asyncio.Lock()
        ticker = None
        if self.time.physical_clock:
            ticker = self._supervisor.spawn(self._idle(name, clock, lock), node=name, doing="advancing its idle time")
        try:
            async for inbound in self.sources[name].messages():
                self._count_in(name)
                tracker = Tracker(inbound.ack)
                if inbound.refused is not None:
                    await self._refused(
                        name, inbound.message, tracker, inbound.refused.reason, inbound.refused.payload_size
                    )
                    continue
                event_ns = inbound.message.timestamp_ms * 1_000_000 if inbound.message.timestamp_ms > 0 else None
                async with lock:
                    stamp = clock.stamp(event_ns)
                    await self._emit(
                        name, Item(self.values.inbound(inbound.message, stamp), stamp, (tracker,)), outputs
                    )
                    await self._progress(name, key(stamp))
                if self._stopping.is_set():
                    break
        finally:
            if ticker is not None:
                ticker.cancel()

    async def _idle(self, name: str, clock: HlcClock, lock: asyncio.Lock) -> None:
        """Advance an idle source's progress to its clock (the physical time has passed, so no earlier item can
        still come: the next one is stamped after it by the HLC rule)."""
        assert isinstance(self.time, FrontierTime)
        while True:
            await asyncio.sleep(self.time.idle_seconds)
            async with lock:
                await self._progress(name, key(clock.stamp()))

    async def _refused(self, name: str, message: Message, tracker: Tracker, reason: str, size: int) -> None:
        failure = OperatorFailure(name, TOO_LARGE, reason)
        await self._failed(name, Item(message, None, (tracker,)), failure, payload_size=size, message=message)

    # ---- sending --------------------------------------------------------------------------------------------

    async def _emit(self, name: str, item: Item, targets: list[asyncio.Queue[Entry]]) -> None:
        if not targets:
            await item.release()
            return
        self.stats[name].emitted += 1
        if self.metrics:
            self.metrics.messages_out.labels(name).inc()
        if len(targets) > 1:
            for tracker in item.trackers:
                tracker.pending += len(targets) - 1
        for queue in targets:
            await queue.put(item)

    async def _progress(self, name: str, frontier: Key) -> None:
        for queue, port in self._wiring[name].edges:
            await queue.put(Progress(port, frontier))

    def _count_in(self, name: str) -> None:
        self.stats[name].received += 1
        if self.metrics:
            self.metrics.messages_in.labels(name).inc()

    # ---- nodes ----------------------------------------------------------------------------------------------

    async def _node_loop(self, name: str) -> None:
        node = self.graph.nodes[name]
        if node.step is Step.SINK:
            await self._sink_loop(name, node)
            return
        queue = self.queues[name]
        step = self._step(name, node)
        on_progress = self._on_progress(name, node)
        frontier = Frontier(len(self.graph.inputs.get(name, ())))
        count_in = self._count_in
        while True:
            entry = await queue.get()
            if entry.__class__ is Item:
                count_in(name)
                await step(entry)
                continue
            assert isinstance(entry, Progress)
            advanced = frontier.advance(entry.port, entry.frontier)
            if advanced is None:
                continue
            await on_progress(advanced)
            await self._progress(name, advanced)
            if advanced == END:
                return

    def _step(self, name: str, node: GraphNode) -> Callable[[Item], Awaitable[None]]:
        """The coroutine that runs ``node``'s step on one item, its operator and outputs bound once."""
        kind = node.step
        if kind is Step.CONCATENATE:
            return self._concatenate_step(name)
        if kind is Step.ACCUMULATE:
            return self._stage_step(name) if self.timed else self._accumulate_step(name, node)
        operator = self.operators[name]
        latencies = self.stats[name].latencies
        wiring = self._wiring[name]
        outputs, on_true, on_false = wiring.all, wiring.arms[True], wiring.arms[False]
        emit, failed = self._emit, self._failed
        timed = self.timed

        if kind is Step.MAP:
            call_map = operator.map

            async def map_step(item: Item) -> None:
                started = time.perf_counter()
                try:
                    value = call_map(item.value)
                except OperatorFailure as failure:
                    latencies.add(time.perf_counter() - started)
                    await failed(name, item, failure)
                    return
                latencies.add(time.perf_counter() - started)
                await emit(name, Item(value, item.timestamp, item.trackers), outputs)

            return map_step
        if kind is Step.FILTER:
            call_filter = operator.filter

            async def filter_step(item: Item) -> None:
                started = time.perf_counter()
                try:
                    keep = call_filter(item.value)
                except OperatorFailure as failure:
                    latencies.add(time.perf_counter() - started)
                    await failed(name, item, failure)
                    return
                latencies.add(time.perf_counter() - started)
                if keep:
                    await emit(name, item, outputs)
                else:
                    self._dropped(name, "filtered")
                    await item.release()

            return filter_step
        if kind is Step.BRANCH:
            call_branch = operator.branch

            async def branch_step(item: Item) -> None:
                started = time.perf_counter()
                try:
                    arm = call_branch(item.value, item.timestamp) if timed else call_branch(item.value)
                except OperatorFailure as failure:
                    latencies.add(time.perf_counter() - started)
                    await failed(name, item, failure)
                    return
                latencies.add(time.perf_counter() - started)
                await emit(name, item, on_true if arm else on_false)

            return branch_step
        assert kind is Step.DELAY
        call_delay = operator.delay

        async def delay_step(item: Item) -> None:
            started = time.perf_counter()
            try:
                delayed = call_delay(item.value, item.timestamp)
                if key(delayed) < key(item.timestamp):
                    raise OperatorFailure(
                        name, "error", f"delay moved the timestamp back ({delayed} < {item.timestamp})"
                    )
            except OperatorFailure as failure:
                latencies.add(time.perf_counter() - started)
                await failed(name, item, failure)
                return
            latencies.add(time.perf_counter() - started)
            await emit(name, Item(item.value, delayed, item.trackers), outputs)

        return delay_step

    def _on_progress(self, name: str, node: GraphNode) -> Callable[[Key], Awaitable[None]]:
        """What ``node`` does when its input's progress moves: windows and held items up to it are handed on."""
        kind = node.step
        if kind is Step.ACCUMULATE and self.timed:
            return lambda frontier: self._close_stamped(name, frontier)
        if kind is Step.ACCUMULATE:

            async def at_end(frontier: Key) -> None:
                if frontier == END:
                    await self._close_window(name)

            return at_end
        if kind is Step.CONCATENATE:
            return lambda frontier: self._release_held(name, frontier)

        async def nothing(frontier: Key) -> None:
            return None

        return nothing

    # -- concatenate --

    def _concatenate_step(self, name: str) -> Callable[[Item], Awaitable[None]]:
        """Hold each item until every input's progress passed its timestamp (timestamp order out); without
        timestamps, a concatenate is a merge: items go on as they come."""
        outputs = self._wiring[name].all
        if not self.timed:

            async def merge(item: Item) -> None:
                await self._emit(name, item, outputs)

            return merge
        held = self._held.setdefault(name, [])
        arrivals = itertools.count()

        async def hold(item: Item) -> None:
            heapq.heappush(held, (key(item.timestamp), next(arrivals), item))

        return hold

    async def _release_held(self, name: str, frontier: Key) -> None:
        held = self._held.get(name)
        outputs = self._wiring[name].all
        while held and held[0][0] <= frontier:
            await self._emit(name, heapq.heappop(held)[2], outputs)

    # -- accumulate: count/duration windows --

    def _accumulate_step(self, name: str, node: GraphNode) -> Callable[[Item], Awaitable[None]]:
        operator = self.operators[name]
        latencies = self.stats[name].latencies
        limit = node.window.count if node.window else None
        empty = self.values.empty

        async def accumulate_step(item: Item) -> None:
            window = self.windows.get(name)
            if window is None:
                window = self.windows[name] = CountWindow()
            state = window.state if window.state is not None else empty(item.value, item.timestamp)
            started = time.perf_counter()
            try:
                folded = operator.accumulate(state, item.value)  # OperatorFailure: the window keeps its state
            except OperatorFailure as failure:
                latencies.add(time.perf_counter() - started)
                await self._failed(name, item, failure)
                return
            latencies.add(time.perf_counter() - started)
            if window.count == 0:
                window.opened = time.monotonic()
            window.state = folded
            window.trackers.extend(item.trackers)
            window.count += 1
            if limit is not None and window.count >= limit:
                await self._close_window(name)

        return accumulate_step

    async def _close_window(self, name: str) -> None:
        window = self.windows.pop(name, None)
        if window is None or window.state is None:
            return
        await self._emit(name, Item(window.state, None, tuple(window.trackers)), self._wiring[name].all)

    async def _window_ticker(self, name: str) -> None:
        window_spec = self.graph.nodes[name].window
        assert window_spec is not None and window_spec.duration_seconds is not None
        duration = window_spec.duration_seconds
        while True:
            await asyncio.sleep(min(duration, 0.5) / 2)
            window = self.windows.get(name)
            if window and window.count and time.monotonic() - window.opened >= duration:
                # Runs between items of the node's own task (same loop, no await inside the fold): no race.
                await self._close_window(name)

    # -- accumulate: one window per timestamp --

    def _stage_step(self, name: str) -> Callable[[Item], Awaitable[None]]:
        windows = self.stamped.setdefault(name, {})

        async def stage(item: Item) -> None:
            stamp = key(item.timestamp)
            window = windows.get(stamp)
            if window is None:
                window = windows[stamp] = StampWindow(item.timestamp)
            window.pending.append(item.value)
            window.trackers.extend(item.trackers)
            if len(window.pending) >= ACCUMULATE_BATCH and not await self._folded(name, window):
                del windows[stamp]

        return stage

    async def _folded(self, name: str, window: StampWindow) -> bool:
        """Fold the window's pending items; False when the operator failed: the window's inputs then go to the
        error policy (the caller forgets the window, whether it was closing or only folding a full batch)."""
        if not window.pending:
            return True
        staged = window.staged if window.staged is not None else self.values.empty(None, window.timestamp)
        started = time.perf_counter()
        try:
            window.staged = self.operators[name].accumulate(staged, window.pending)
        except OperatorFailure as failure:
            value = window.pending[-1]
            await self._failed(name, Item(value, window.timestamp, tuple(window.trackers)), failure)
            return False
        finally:
            self.stats[name].latencies.add(time.perf_counter() - started)
        window.pending = []
        return True

    async def _close_stamped(self, name: str, frontier: Key) -> None:
        windows = self.stamped.get(name, {})
        outputs = self._wiring[name].all
        for stamp in sorted(k for k in windows if k <= frontier):
            window = windows.pop(stamp)
            if not await self._folded(name, window):
                continue
            await self._emit(name, Item(window.staged, window.timestamp, tuple(window.trackers)), outputs)

    # -- early close --

    async def _watch_budgets(self, sources: Mapping[str, InFlightBudget]) -> None:
        """Close the open windows early when a source has its whole in-flight budget outstanding.

        The broker sends a QoS 1 source at most its Receive Maximum of unacknowledged messages, and a window
        acknowledges what it folded only when it closes: a window that needs more than the budget allows (a
        filter before it discarding most messages, a duration window on a busy topic, windows in series, a
        timestamp window whose progress waits on a quiet source) would wait forever. The worker sizes the budget
        for the graph's windows, so this is the exception, and it is logged. Checked every
        ``BUDGET_CHECK_SECONDS`` (not per message).
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
            open_windows = [name for name, window in self.windows.items() if window.count]
            open_windows += [name for name, windows in self.stamped.items() if windows]
            for name in open_windows:
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
                if name in self.stamped:
                    await self._close_stamped(name, END)
                else:
                    await self._close_window(name)

    def _stuck(self) -> bool:
        """Nothing but the open windows holds the outstanding inputs: no queue has work and no send awaits its
        PUBACK. A full budget alone is not enough: right after a window closes, its output is on its way to the
        sink and will acknowledge everything it folded, and closing the next window then would cut it short."""
        return self._sends_in_flight == 0 and all(queue.empty() for queue in self.queues.values())

    # ---- sinks ----------------------------------------------------------------------------------------------

    async def _sink_loop(self, name: str, node: GraphNode) -> None:
        """Start one send per item, in queue order, with at most ``sink_window`` unfinished; return once all
        have finished (the end of the input: drain and SIGTERM wait for every PUBACK here).

        A failed send fails the graph at once (the supervisor hears of it when the send ends, not when the next
        item comes): the failed message is never acknowledged (nor, by the source's arrival order, anything
        after it from the same connection), and the node takes no new item. Sends still in flight then are
        abandoned unacknowledged (the broker delivers those inputs again), as is everything behind them.
        """
        queue = self.queues[name]
        frontier = Frontier(len(self.graph.inputs.get(name, ())))
        room = asyncio.Semaphore(self.sink_window)
        in_flight: set[asyncio.Task[None]] = set()
        failures: list[BaseException] = []

        def settled(task: asyncio.Task[None]) -> None:
            self._sends_in_flight -= 1
            in_flight.discard(task)
            room.release()
            if not task.cancelled() and (error := task.exception()) is not None:
                failures.append(error)
                # At once, not when the next item comes (there may be none): the graph stops, loudly.
                self._supervisor.fail(NodeError(name, "sending a message to its sink", error))

        try:
            while True:
                entry = await queue.get()
                if failures:
                    raise failures[0]
                if entry.__class__ is not Item:
                    assert isinstance(entry, Progress)
                    if frontier.advance(entry.port, entry.frontier) == END:
                        break
                    continue
                assert isinstance(entry, Item)
                self._count_in(name)
                self._sends_in_flight += 1  # from leaving the queue to its done-callback: never seen as idle
                await room.acquire()
                if failures:
                    raise failures[0]
                task = asyncio.create_task(self._deliver(name, entry), name=f"send:{name}")
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

    async def _deliver(self, name: str, item: Item) -> None:
        values = self.values
        message = values.outbound(item.value, item.timestamp, name) if values.converts else item.value
        await self.sinks[name].send(message)
        self.stats[name].emitted += 1
        if self.metrics:
            self.metrics.messages_out.labels(name).inc()
        await item.release()

    # ---- failures -------------------------------------------------------------------------------------------

    async def _failed(
        self,
        name: str,
        item: Item,
        failure: OperatorFailure,
        *,
        payload_size: int | None = None,
        message: Message | None = None,
    ) -> None:
        stats = self.stats[name]
        stats.failures[failure.kind] = stats.failures.get(failure.kind, 0) + 1
        policy = self.policies[name]
        if policy is not None and policy.action is ErrorAction.DEAD_LETTER and policy.endpoint and policy.topic:
            log.warning("%s (policy: %s)", failure, policy.action.value)
            if message is None:
                values = self.values
                message = values.outbound(item.value, item.timestamp, name) if values.converts else item.value
            sink = self.dead_letters[(policy.endpoint, policy.topic)]
            try:
                await sink.send(dead_letter_envelope(name, failure, message, payload_size=payload_size))
            except WasmflowError as exc:  # the failed message is not acknowledged: the broker delivers it again
                doing = f"sending a failed message to the dead-letter topic {policy.topic!r}"
                raise NodeError(name, doing, exc) from exc
            stats.dead_lettered += 1
            if self.metrics:
                self.metrics.dead_lettered.labels(name).inc()
        else:
            log.warning("%s (%s)", failure, "dropped" if policy is None else f"policy: {policy.action.value}")
            self._dropped(name, failure.kind)
        await item.release()

    def _dropped(self, name: str, reason: str) -> None:
        self.stats[name].dropped += 1
        if self.metrics:
            self.metrics.dropped.labels(name, reason).inc()
