"""One graph node's lifecycle, written once for every operator world.

A ``Node`` owns one instance of one operator at a time and replaces it when a call traps, times out or runs out of
memory, because wasmtime refuses further calls into an instance that trapped. Such a failure fails that one item
(``OperatorFailure``), never the process. A node that keeps failing backs off before each new instance and reports
``degraded`` (and its ``last_error``); during a back-off its items fail at once instead of blocking the graph.

What varies between worlds (``wasmflow:operator``, AIO's ``wasm-graph:processor``/``tinykube-graph:processor``)
is behind a ``WorldAdapter`` (``engine/worlds/``): which export is the operator, which host interfaces are linked,
how ``init`` is called and how values cross. The adapter binds the per-message call once per instance (``Bound``),
so the node's hot path is the same few lines for every world: deadline, fuel, the bound call, metrics.

Failures the node tells apart (``_call``):

* ``codec.ErrorResult``: the operator answered ``err``: the item fails, the instance is healthy.
* ``codec.PayloadTooLarge``: refused before the call: the instance is untouched.
* ``InstanceSpoiledError``: a host function found the call cannot go on (an import wasmflow does not serve, a buffer too
  large to pass): the guest trapped, the instance is replaced.
* ``WasmtimeError``: a trap, a deadline, fuel, memory (``sandbox.classify_failure``): the instance is replaced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Protocol

from wasmtime import Engine, Store, WasmtimeError
from wasmtime.component import Component, Instance, Linker

from wasmflow.engine import codec, ffi, sandbox
from wasmflow.engine.guestlog import GuestLog
from wasmflow.engine.metrics import EngineMetrics, LatencySeries
from wasmflow.errors import EngineError, OperatorFailure

log = logging.getLogger(__name__)

#: Payload conversion allowance added to the per-message deadline (see Node._deadline_for).
CONVERSION_FREE_BYTES = 64 * 1024
CONVERSION_SECONDS_PER_BYTE = 4e-7
#: wasmtime-py's own conversion, one Python object per byte, when the fast codec is off.
PLAIN_SECONDS_PER_BYTE = 4e-6

FAILURE_KINDS = ("trap", "timeout", "memory", "error")


@dataclass(frozen=True)
class Backoff:
    """When a node that keeps failing may try a fresh instance again.

    The first ``free`` consecutive failures are replaced at once (one bad message should cost nothing more); after
    that the delay doubles from ``initial`` up to ``maximum`` and the node is ``degraded`` until a call succeeds.
    """

    free: int = 3
    initial: float = 0.1
    maximum: float = 10.0

    def delay(self, consecutive_failures: int) -> float:
        if consecutive_failures <= self.free:
            return 0.0
        return min(self.maximum, self.initial * 2.0 ** (consecutive_failures - self.free - 1))


class InstanceSpoiledError(EngineError):
    """Raised by a world's host function when the call cannot go on: the guest traps and the node replaces the
    instance, failing the item with ``kind`` (``trap``, ``memory``) and this error's text."""

    kind = "trap"


class Compilable(Protocol):
    """What ``EngineHost.compile`` reads of a node's spec, whatever its world."""

    @property
    def node(self) -> str: ...

    @property
    def component(self) -> bytes: ...

    @property
    def fuel(self) -> int | None: ...

    def content_digest(self) -> str: ...


class NodeHost(Protocol):
    """What a node and its adapter use of the process-wide host (``engine.host.EngineHost``)."""

    metrics: EngineMetrics | None
    backoff: Backoff
    epoch: int
    fast_codec: bool
    init_timeout_seconds: float

    def deadline_ticks(self, seconds: float) -> int: ...

    def compile(self, spec: Compilable) -> tuple[Engine, Component]: ...


class NodeSpec(Protocol):
    """What the lifecycle reads of a node's spec (each world's spec has more)."""

    @property
    def node(self) -> str: ...

    @property
    def component(self) -> bytes: ...

    @property
    def memory_bytes(self) -> int: ...

    @property
    def timeout_seconds(self) -> float: ...

    @property
    def fuel(self) -> int | None: ...

    @property
    def grants(self) -> frozenset[str]: ...


class Bound(Protocol):
    """A world's per-item call, bound to one instance once: ``call(*inputs)`` in the world's own values.

    Returns the operator's answer; an ``err`` raises ``codec.ErrorResult``, a trap ``WasmtimeError``.
    ``set_deadline`` sets the store's epoch deadline, in ticks from now, for the calls that follow; ``close`` frees
    what the binding holds outside the store.
    """

    def __call__(self, *inputs: Any) -> Any: ...

    def set_deadline(self, ticks: int) -> None: ...

    def close(self) -> None: ...


class WorldAdapter(Protocol):
    """What differs between operator worlds; one adapter per node (it may keep per-node host state)."""

    #: The operation this node runs (``map``, ``filter``, ``branch``, ``accumulate``, ``delay``).
    operation: str

    def linker(self, log: GuestLog) -> tuple[Linker, bool]:
        """The node's linker with the world's imports; also whether the store needs wasi:http."""
        ...

    def bind(self, store: Store, instance: Instance, fast: bool) -> Bound:
        """Call ``init`` on a fresh instance and bind its per-item call. EngineError when init refuses;
        WasmtimeError (and ``InstanceSpoiledError``) propagate for the node to classify."""
        ...

    def payload_size(self, inputs: Sequence[Any]) -> int:
        """The payload bytes of one call's inputs (the deadline's conversion allowance)."""
        ...

    def reset(self) -> None:
        """Forget per-instance host state (buffers) when an instance is discarded."""
        ...


@dataclass
class _Live:
    """One instance, with its bound call and the epoch deadline last set on its store."""

    store: Store
    instance: Instance
    call: Bound
    deadline_epoch: int = -1
    deadline_ticks: int = 0


class Node:
    """One graph node: calls its operator one item at a time (not thread-safe: one caller at a time)."""

    def __init__(
        self, host: NodeHost, spec: NodeSpec, adapter: WorldAdapter, engine: Engine, component: Component
    ) -> None:
        self.host = host
        self.spec = spec
        self.node = spec.node
        self.adapter = adapter
        self.operation = adapter.operation
        self._engine = engine
        self._component = component
        metrics = host.metrics
        self._log = GuestLog(
            spec.node,
            on_dropped=(metrics.guest_log_dropped.labels(spec.node).inc if metrics is not None else None),
        )
        self._linker, self._http = adapter.linker(self._log)
        self._limits = sandbox.StoreLimits.for_component(spec.memory_bytes, spec.component)
        self._deadline = host.deadline_ticks(spec.timeout_seconds)
        self._init_deadline = host.deadline_ticks(max(host.init_timeout_seconds, spec.timeout_seconds))
        self._fast = host.fast_codec and ffi.FAST_PATH
        self._conversion_seconds_per_byte = CONVERSION_SECONDS_PER_BYTE if self._fast else PLAIN_SECONDS_PER_BYTE
        self._payload_size = adapter.payload_size
        self._live: _Live | None = None
        self._failures = 0
        self._retry_at = 0.0
        self._last_failure = ("trap", "")
        self._closed = False
        self._fuel = spec.fuel
        self._m_seconds: LatencySeries | None = None
        if metrics is not None:
            self._m_failures = {k: metrics.failures.labels(spec.node, k) for k in FAILURE_KINDS}
            self._m_seconds = metrics.process_seconds.labels(spec.node)
            self._m_instantiations = metrics.instantiations.labels(spec.node)
            self._m_degraded = metrics.degraded.labels(spec.node)
            self._m_degraded.set(0)

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Create the first instance; failures here are the node's start failing (EngineError)."""
        self._live = self._instantiate()

    def _instantiate(self) -> _Live:
        """A fresh store and instance, ``init`` called. EngineError names the node and what went wrong."""
        spec = self.spec
        self.adapter.reset()
        store = sandbox.init_store(
            self._engine,
            self._limits,
            spec.grants,
            self._log,
            http=self._http,
            init_deadline=self._init_deadline,
            fuel=spec.fuel is not None,
        )
        self._log.begin_call()
        try:
            instance = self._linker.instantiate(store, self._component)
            call = self.adapter.bind(store, instance, self._fast)
        except InstanceSpoiledError as exc:
            store.close()
            raise EngineError(f"node {spec.node!r}: init failed: {exc}") from exc
        except WasmtimeError as exc:
            store.close()
            kind, text = sandbox.classify_failure(exc, self._log.recent)
            raise EngineError(f"node {spec.node!r}: cannot start the operator ({kind}): {text}") from exc
        except BaseException:
            store.close()
            raise
        if self.host.metrics is not None:
            self._m_instantiations.inc()
        return _Live(store, instance, call)

    @property
    def degraded(self) -> bool:
        """True while the node keeps failing (its instance is being replaced with back-off)."""
        return self._failures > self.host.backoff.free

    @property
    def last_error(self) -> str | None:
        """``kind: text`` of the failure that made the node degraded, while it is (for ``/readyz``)."""
        if not self.degraded:
            return None
        kind, text = self._last_failure
        return f"{kind}: {text}"

    def close(self) -> None:
        """Drop the instance; idempotent. Further calls raise EngineError."""
        self._closed = True
        self._discard()

    def _discard(self) -> None:
        """Free the instance's store now, while Python can still take the WASI output it flushes on the way out
        (a store left to the garbage collector may be freed during interpreter shutdown, when it cannot)."""
        live, self._live = self._live, None
        if live is not None:
            live.call.close()
            live.store.close()
        self.adapter.reset()
        self._log.flush()

    # -- calls: the world's values in, the operator's answer out -----------------------------------------------

    def map(self, value: Any) -> Any:
        if self.operation != "map":
            raise self._wrong_operation("map")
        return self._call(value)

    def filter(self, value: Any) -> bool:
        if self.operation != "filter":
            raise self._wrong_operation("filter")
        result: bool = self._call(value)
        return result

    def branch(self, value: Any, *timestamp: Any) -> bool:
        """``branch(msg)`` in our world; ``branch(data, timestamp)`` in AIO's, whose operators see the HLC."""
        if self.operation != "branch":
            raise self._wrong_operation("branch")
        result: bool = self._call(value, *timestamp)
        return result

    def accumulate(self, state: Any, value: Any) -> Any:
        """``accumulate(state, msg)`` in our world; ``accumulate(staged, items)`` in AIO's."""
        if self.operation != "accumulate":
            raise self._wrong_operation("accumulate")
        return self._call(state, value)

    def delay(self, value: Any, timestamp: Any) -> Any:
        """The timestamp the item is held until (AIO's ``delay``)."""
        if self.operation != "delay":
            raise self._wrong_operation("delay")
        return self._call(value, timestamp)

    def _wrong_operation(self, operation: str) -> EngineError:
        return EngineError(f"node {self.node!r} is a {self.operation} operator, not {operation}")

    def _call(self, *inputs: Any) -> Any:
        """One call: the hot path of the data plane (each line here is paid per item and node)."""
        if self._closed:
            raise EngineError(f"node {self.node!r} is closed")
        live = self._live or self._replace()
        ticks = self._deadline_for(inputs)
        epoch = self.host.epoch
        if epoch != live.deadline_epoch or ticks != live.deadline_ticks:
            # A deadline set in this tick for as many ticks is still the right one: skipping the C call is worth
            # a microsecond per message (the ticker's one-tick race is within deadline_ticks' slack).
            live.call.set_deadline(ticks)
            live.deadline_epoch, live.deadline_ticks = epoch, ticks
        if self._fuel is not None:
            live.store.set_fuel(self._fuel)
        self._log.begin_call()
        started = perf_counter()
        try:
            value = live.call(*inputs)
        except codec.ErrorResult as exc:
            self._observe(started)
            if self._failures:
                self._recovered()  # the operator answered: the instance is healthy
            raise self._fail("error", exc.text, discard=False) from None
        except codec.PayloadTooLarge as exc:  # refused before the call: the instance is untouched
            self._observe(started)
            raise self._fail("memory", exc.text, discard=False) from None
        except InstanceSpoiledError as exc:
            self._observe(started)
            raise self._fail(exc.kind, str(exc), discard=True) from exc
        except WasmtimeError as exc:
            kind_, text = sandbox.classify_failure(exc, self._log.recent)
            self._observe(started)
            raise self._fail(kind_, text, discard=True) from exc
        self._observe(started)
        if self._failures:
            self._recovered()
        return value

    def _deadline_for(self, inputs: tuple[Any, ...]) -> int:
        """The epoch deadline of one call. wasmtime converts a binary payload value by value (about 0.16 s per MiB
        on the test machines) before the guest runs, and that time counts toward the deadline: large payloads get
        an allowance for it so the limit stays a limit on the operator's own work."""
        size = self._payload_size(inputs)
        if size <= CONVERSION_FREE_BYTES:
            return self._deadline
        return self._deadline + self.host.deadline_ticks(size * self._conversion_seconds_per_byte)

    def _observe(self, started: float) -> None:
        if self._m_seconds is not None:
            self._m_seconds.observe(perf_counter() - started)

    def _fail(self, kind: str, text: str, *, discard: bool) -> OperatorFailure:
        if self.host.metrics is not None:
            self._m_failures[kind].inc()
        if discard:
            self._discard()
            self._failures += 1
            self._last_failure = (kind, text)
            self._retry_at = time.monotonic() + self.host.backoff.delay(self._failures)
            if self.degraded:
                log.warning("node %r failed %d times in a row (last: %s: %s)", self.node, self._failures, kind, text)
                if self.host.metrics is not None:
                    self._m_degraded.set(1)
        return OperatorFailure(self.node, kind, text)

    def _recovered(self) -> None:
        if self.degraded:
            log.info("node %r recovered", self.node)
        self._failures = 0
        if self.host.metrics is not None:
            self._m_degraded.set(0)

    def _replace(self) -> _Live:
        """A fresh instance after a failure, unless the node is backing off (then this item fails at once)."""
        wait = self._retry_at - time.monotonic()
        if wait > 0:
            kind, text = self._last_failure
            raise self._fail(
                kind,
                f"instance unavailable for {wait:.2f}s after {self._failures} failures in a row (last: {text})",
                discard=False,
            )
        try:
            self._live = self._instantiate()
        except EngineError as exc:
            raise self._fail("trap", f"cannot replace the failed instance: {exc}", discard=True) from exc
        return self._live
