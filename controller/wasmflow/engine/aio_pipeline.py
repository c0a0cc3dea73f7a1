"""Run an AIO graph definition with AIO's timely semantics, on our sources and sinks.

Every item carries a hybrid-logical-clock timestamp, issued by its source (``HlcClock``: from the message's source
time, so a replay gives the same stamps). Along every connection travels, in order with the items, the source's
*progress*: "every later item on this connection has a timestamp above F". That is what lets time-based operators
know a timestamp is complete without a cluster protocol:

- map, filter and branch keep the item's timestamp; branch sends ``false`` to arm "False", ``true`` to "True".
- delay replaces the timestamp with the one its module returns (never earlier: that fails the item); windows are
  built by delaying items to their window's boundary.
- accumulate folds the items of one timestamp (in batches, starting from an empty staged message) and emits the
  staged item when its input's progress has passed that timestamp, in timestamp order.
- concatenate merges its inputs in timestamp order: it holds each item until every input's progress has passed its
  timestamp, so the merged stream is the same however the inputs' items interleave in time (the order AIO keeps).
  Its progress, like any node's with several inputs, is the least of them.
- at the end of the input, progress goes to infinity: every open window is emitted.
- with the physical clock on (workers), an idle source still advances its progress to the clock every
  ``idle_seconds``, so a window closes on time even when no message follows it.

Acknowledgement is the pipeline's: an input is acked once everything derived from it reached a sink or was dropped
(an accumulate holds its items' trackers until the window is emitted). An operator's failure fails that item
(dropped and counted) and the graph goes on; anything else a task ends with (a sink's message refused, a state
store error, a bug) stops the graph with ``NodeError`` naming the node, as in engine/pipeline.py.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from wasmflow.api.graph import Graph, Step
from wasmflow.engine.aio_host import AioOperatorNode
from wasmflow.engine.aio_model import AioMessage, DataModel, Hlc, HlcClock, from_message, to_message
from wasmflow.engine.metrics import EngineMetrics
from wasmflow.engine.pipeline import TOO_LARGE, Tracker
from wasmflow.engine.ports import Sink, Source
from wasmflow.engine.stats import NodeStats
from wasmflow.engine.supervision import NodeError, Supervisor
from wasmflow.errors import OperatorFailure, WasmflowError

log = logging.getLogger(__name__)

QUEUE_SIZE = 64
#: Items of one timestamp handed to an accumulate per call (bounds the list that crosses into the module).
ACCUMULATE_BATCH = 64

Key = tuple[int, int, int]
#: Progress past every timestamp: the end of the input.
END: Key = (2**64, 0, 0)


def key(ts: Hlc) -> Key:
    return (ts.secs, ts.nanos, ts.counter)


@dataclass
class _Item:
    data: DataModel
    timestamp: Hlc
    trackers: tuple[Tracker, ...]

    async def release(self) -> None:
        for tracker in self.trackers:
            await tracker.release()


@dataclass(frozen=True)
class _Progress:
    frontier: Key


@dataclass
class _Window:
    timestamp: Hlc
    staged: DataModel | None = None
    pending: list[DataModel] = field(default_factory=list)
    trackers: list[Tracker] = field(default_factory=list)


class AioPipeline:
    """One running AIO graph; ``run()`` returns when the sources are exhausted and everything is delivered."""

    def __init__(
        self,
        graph: Graph,
        *,
        operators: Mapping[str, AioOperatorNode],
        sources: Mapping[str, Source],
        sinks: Mapping[str, Sink],
        metrics: EngineMetrics | None = None,
        physical_clock: bool = False,
        idle_seconds: float = 1.0,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.graph = graph
        self.operators = operators
        self.sources = sources
        self.sinks = sinks
        self.metrics = metrics
        self.physical_clock = physical_clock
        self.idle_seconds = idle_seconds
        self.queues: dict[str, asyncio.Queue[tuple[int, _Item | _Progress]]] = {
            name: asyncio.Queue(maxsize=queue_size) for name in graph.order if name not in graph.sources
        }
        self.stats: dict[str, NodeStats] = {name: NodeStats() for name in graph.order}
        self._stopping = asyncio.Event()
        self._supervisor = Supervisor()

    async def run(self) -> None:
        """Run until the sources end (or ``drain()``), deliver what is in flight, return; ``NodeError`` (naming
        the node) when a task fails for a reason an item's failure does not cover (engine/supervision.py)."""
        supervisor = self._supervisor = Supervisor()
        workers = [supervisor.spawn(self._node(name), node=name, doing=self._doing(name)) for name in self.queues]
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
        await asyncio.gather(*feeders)
        await asyncio.gather(*workers)

    def _doing(self, name: str) -> str:
        kind = self.graph.step(name)
        return "sending messages to its sink" if kind is Step.SINK else f"running its {kind.value} operation"

    async def drain(self) -> None:
        self._stopping.set()
        await asyncio.gather(*(source.stop() for source in self.sources.values()))

    # -- sending -----------------------------------------------------------------------------------------------

    async def _emit(self, name: str, item: _Item, arm: bool | None = None) -> None:
        edges = [e for e in self.graph.outputs[name] if arm is None or e.arm is arm]
        if not edges:
            await item.release()
            return
        self.stats[name].emitted += 1
        if self.metrics:
            self.metrics.messages_out.labels(name).inc()
        for tracker in item.trackers:
            tracker.pending += len(edges) - 1
        for edge in edges:
            await self.queues[edge.target].put((edge.port, item))

    async def _progress(self, name: str, frontier: Key) -> None:
        for edge in self.graph.outputs[name]:
            await self.queues[edge.target].put((edge.port, _Progress(frontier)))

    def _count_in(self, name: str) -> None:
        self.stats[name].received += 1
        if self.metrics:
            self.metrics.messages_in.labels(name).inc()

    async def _feed(self, name: str) -> None:
        clock = HlcClock(name, physical=time.time_ns if self.physical_clock else None)
        # Stamping and sending happen under one lock, so the idle ticker's progress never overtakes an item.
        lock = asyncio.Lock()
        ticker = None
        if self.physical_clock:
            ticker = self._supervisor.spawn(self._idle(name, clock, lock), node=name, doing="advancing its idle time")
        try:
            async for inbound in self.sources[name].messages():
                self._count_in(name)
                if inbound.refused is not None:  # too large (engine/limits.py): dropped, counted, acknowledged
                    failure = OperatorFailure(name, TOO_LARGE, inbound.refused.reason)
                    await self._failed(name, [Tracker(inbound.ack).release], failure)
                    continue
                event_ns = inbound.message.timestamp_ms * 1_000_000 if inbound.message.timestamp_ms > 0 else None
                async with lock:
                    stamp = clock.stamp(event_ns)
                    item = _Item(from_message(inbound.message, stamp), stamp, (Tracker(inbound.ack),))
                    await self._emit(name, item)
                    await self._progress(name, key(stamp))
                if self._stopping.is_set():
                    break
        finally:
            if ticker is not None:
                ticker.cancel()
        async with lock:
            await self._progress(name, END)

    async def _idle(self, name: str, clock: HlcClock, lock: asyncio.Lock) -> None:
        """Advance an idle source's progress to its clock (the physical time has passed, so no earlier item can
        still come: the next one is stamped after it by the HLC rule)."""
        while True:
            await asyncio.sleep(self.idle_seconds)
            async with lock:
                await self._progress(name, key(clock.stamp()))

    # -- nodes -------------------------------------------------------------------------------------------------

    async def _node(self, name: str) -> None:
        kind = self.graph.step(name)
        queue = self.queues[name]
        frontiers = [(-1, 0, 0)] * len(self.graph.inputs[name])
        current = min(frontiers)
        windows: dict[Key, _Window] = {}
        held: list[tuple[Key, int, _Item]] = []
        arrivals = itertools.count()
        while True:
            port, entry = await queue.get()
            if isinstance(entry, _Progress):
                frontiers[port] = max(frontiers[port], entry.frontier)
                frontier = min(frontiers)
                if frontier > current:
                    current = frontier
                    if kind is Step.ACCUMULATE:
                        await self._close_windows(name, windows, frontier)
                    while held and held[0][0] <= frontier:
                        await self._emit(name, heapq.heappop(held)[2])
                    await self._progress(name, frontier)
                if current == END:
                    return
                continue
            self._count_in(name)
            if kind is Step.SINK:
                sink_message = to_message(entry.data, entry.timestamp, default_topic=name)
                try:
                    await self.sinks[name].send(sink_message)
                except WasmflowError as exc:  # not acknowledged: the broker delivers the input again
                    raise NodeError(name, "sending a message to its sink", exc) from exc
                self.stats[name].emitted += 1
                if self.metrics:
                    self.metrics.messages_out.labels(name).inc()
                await entry.release()
            elif kind is Step.CONCATENATE:
                heapq.heappush(held, (key(entry.timestamp), next(arrivals), entry))
            elif kind is Step.ACCUMULATE:
                await self._stage(name, windows, entry)
            else:
                await self._operate(name, kind, entry)

    async def _operate(self, name: str, kind: Step, item: _Item) -> None:
        operator = self.operators[name]
        started = time.perf_counter()
        try:
            if kind is Step.MAP:
                await self._emit(name, _Item(operator.map(item.data), item.timestamp, item.trackers))
            elif kind is Step.FILTER:
                if operator.filter(item.data):
                    await self._emit(name, item)
                else:
                    self._dropped(name, "filtered")
                    await item.release()
            elif kind is Step.BRANCH:
                await self._emit(name, item, arm=operator.branch(item.data, item.timestamp))
            elif kind is Step.DELAY:
                delayed = operator.delay(item.data, item.timestamp)
                if key(delayed) < key(item.timestamp):
                    raise OperatorFailure(
                        name, "error", f"delay moved the timestamp back ({delayed} < {item.timestamp})"
                    )
                await self._emit(name, _Item(item.data, delayed, item.trackers))
        except OperatorFailure as failure:
            await self._failed(name, [item.release], failure)
        finally:
            self.stats[name].latencies.add(time.perf_counter() - started)

    async def _stage(self, name: str, windows: dict[Key, _Window], item: _Item) -> None:
        window = windows.setdefault(key(item.timestamp), _Window(item.timestamp))
        window.pending.append(item.data)
        window.trackers.extend(item.trackers)
        if len(window.pending) >= ACCUMULATE_BATCH and not await self._folded(name, window):
            del windows[key(item.timestamp)]

    async def _folded(self, name: str, window: _Window) -> bool:
        """Fold the window's pending items; False when the operator failed, the window's inputs then released as
        dropped (the caller forgets the window, whether it was closing or only folding a full batch)."""
        try:
            self._fold(name, window)
        except OperatorFailure as failure:
            await self._failed(name, [t.release for t in window.trackers], failure)
            return False
        return True

    def _fold(self, name: str, window: _Window) -> None:
        """Fold the window's pending items into its staged value (OperatorFailure: see ``_folded``)."""
        if not window.pending:
            return
        staged = window.staged if window.staged is not None else AioMessage(b"", b"", window.timestamp)
        started = time.perf_counter()
        try:
            window.staged = self.operators[name].accumulate(staged, window.pending)
        finally:
            self.stats[name].latencies.add(time.perf_counter() - started)
        window.pending = []

    async def _close_windows(self, name: str, windows: dict[Key, _Window], frontier: Key) -> None:
        for stamp in sorted(k for k in windows if k <= frontier):
            window = windows.pop(stamp)
            if not await self._folded(name, window):
                continue
            assert window.staged is not None
            await self._emit(name, _Item(window.staged, window.timestamp, tuple(window.trackers)))

    async def _failed(self, name: str, releases: list, failure: OperatorFailure) -> None:  # type: ignore[type-arg]
        stats = self.stats[name]
        stats.failures[failure.kind] = stats.failures.get(failure.kind, 0) + 1
        log.warning("%s (dropped)", failure)
        self._dropped(name, failure.kind)
        for release in releases:
            await release()

    def _dropped(self, name: str, reason: str) -> None:
        self.stats[name].dropped += 1
        if self.metrics:
            self.metrics.dropped.labels(name, reason).inc()
