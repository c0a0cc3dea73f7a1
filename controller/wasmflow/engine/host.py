"""Sandboxed operator instances: one wasmtime ``Engine`` per process, one ``Store`` per operator instance.

``EngineHost`` owns what is shared: the engine (compiled code is shared by every instance of a component), the
epoch ticker thread that enforces per-message time limits, and the compiled-component cache. ``OperatorNode`` is
one graph node: it owns one instance at a time and replaces it when a message traps, times out or runs out of
memory, because wasmtime refuses further calls into an instance that trapped. Such a failure fails that one
message (``OperatorFailure``), never the process. A node that keeps failing backs off before each new instance
and reports ``degraded``; during a back-off its messages fail at once instead of blocking the graph.

Fuel changes the compiled code, so operators that ask for fuel get a second engine configured for it (created on
first use); "one engine per process" is one engine per engine configuration.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import math
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from types import TracebackType
from typing import Any, Self

from wasmtime import Config, Engine, Store, WasmtimeError
from wasmtime.component import Component, Instance

from wasmflow.api.kinds import OperatorKind
from wasmflow.contract.capabilities import FEATURES, restrict_features, split_name
from wasmflow.contract.check import check_component
from wasmflow.contract.report import ContractReport
from wasmflow.engine import codec, sandbox
from wasmflow.engine.cache import CompiledCache, cache_key
from wasmflow.engine.guestlog import GuestLog
from wasmflow.engine.message import Message
from wasmflow.engine.metrics import EngineMetrics, LatencySeries
from wasmflow.errors import EngineError, OperatorFailure

log = logging.getLogger(__name__)

CONTRACT_PACKAGE = "wasmflow:operator"
#: Contract versions the host accepts (operator.wit: same major.minor).
CONTRACT_VERSION_PREFIX = "0.1."
#: Payload conversion allowance added to the per-message deadline (see OperatorNode._deadline_for).
_CONVERSION_FREE_BYTES = 64 * 1024
_CONVERSION_SECONDS_PER_BYTE = 4e-7
#: wasmtime-py's own conversion, one Python object per byte, when the fast codec is off.
_PLAIN_SECONDS_PER_BYTE = 4e-6


@dataclass(frozen=True)
class OperatorSpec:
    """Everything the engine needs to run one graph node."""

    node: str
    kind: OperatorKind
    component: bytes
    #: ``sha256:<hex>`` of ``component`` (the compiled-cache key); computed when empty.
    digest: str = ""
    memory_bytes: int = 64 * 2**20
    timeout_seconds: float = 0.1
    fuel: int | None = None
    grants: frozenset[str] = frozenset()
    configuration: tuple[tuple[str, str], ...] = ()

    def content_digest(self) -> str:
        return self.digest or "sha256:" + hashlib.sha256(self.component).hexdigest()


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


@dataclass
class _Profile:
    """One engine configuration: the engine, and its settings as a cache-key string."""

    engine: Engine
    settings: str
    components: dict[str, Component] = field(default_factory=dict)


class EngineHost:
    """The process-wide part of the engine; use one per process, as a context manager or with ``close()``."""

    def __init__(
        self,
        *,
        cache_dir: Path | None,
        metrics: EngineMetrics | None = None,
        epoch_tick_seconds: float = 0.005,
        init_timeout_seconds: float = 10.0,
        backoff: Backoff = Backoff(),
        fast_codec: bool = True,
    ) -> None:
        self.metrics = metrics
        self.cache = CompiledCache(cache_dir) if cache_dir is not None else None
        self.epoch_tick_seconds = epoch_tick_seconds
        self.init_timeout_seconds = init_timeout_seconds
        self.backoff = backoff
        self.fast_codec = fast_codec
        self._profiles: dict[bool, _Profile] = {}
        self._lock = threading.Lock()
        self._compile_lock = threading.Lock()
        self._stop = threading.Event()
        self._closed = False
        self._nodes: weakref.WeakSet[OperatorNode] = weakref.WeakSet()
        #: Ticks since the host started, counted with the engines' epochs (read without the lock: an int).
        self.epoch = 0
        if fast_codec and not codec.FAST_PATH:
            log.warning(
                "the fast message codec is off (%s): using wasmtime-py's own conversions", codec.FAST_PATH_PROBLEMS
            )
        self._profile(fuel=False)
        self._ticker = threading.Thread(target=self._tick, name="wasmflow-epoch", daemon=True)
        self._ticker.start()
        atexit.register(self.close)

    # -- engines and the epoch ticker -------------------------------------------------------------------------

    def _profile(self, *, fuel: bool) -> _Profile:
        with self._lock:
            profile = self._profiles.get(fuel)
            if profile is None:
                config = Config()
                config.epoch_interruption = True
                config.consume_fuel = fuel
                restrict_features(config)
                settings = f"epoch_interruption=1;consume_fuel={int(fuel)};{FEATURES}"
                profile = _Profile(Engine(config), settings)
                self._profiles[fuel] = profile
            return profile

    def _tick(self) -> None:
        """Advance every engine's epoch, then ``epoch``; a store's deadline is a number of ticks from when it was
        set. A reader that sees ``epoch`` unchanged since it set a deadline has lost at most this one tick."""
        while not self._stop.wait(self.epoch_tick_seconds):
            with self._lock:
                engines = [p.engine for p in self._profiles.values()]
            for engine in engines:
                engine.increment_epoch()
            self.epoch += 1

    def deadline_ticks(self, seconds: float) -> int:
        """Ticks for a time limit: rounded up, plus one because the current tick is already partly gone."""
        return max(1, math.ceil(seconds / self.epoch_tick_seconds)) + 1

    # -- compiling ---------------------------------------------------------------------------------------------

    def compile(self, spec: OperatorSpec) -> tuple[Engine, Component]:
        """The compiled component for ``spec`` (memory, then disk cache, then a compile that fills both)."""
        profile = self._profile(fuel=spec.fuel is not None)
        with self._lock:
            component = profile.components.get(spec.content_digest())
        if component is not None:
            return profile.engine, component
        key = cache_key(spec.content_digest(), profile.settings)
        component = self._from_disk(profile.engine, key)
        if component is None:
            # One compile at a time: a compile already uses every core, and a componentize-py component peaks at
            # ~370 MiB while compiling (three at once would overrun a worker's default 512Mi limit).
            with self._compile_lock:
                with self._lock:
                    component = profile.components.get(spec.content_digest())
                if component is None:
                    component = self._compile_fresh(profile.engine, spec, key)
        with self._lock:
            profile.components[spec.content_digest()] = component
        return profile.engine, component

    def check(self, spec: OperatorSpec, *, strict: bool = False) -> ContractReport:
        """``spec``'s component against the contract, read from its compiled form here (cached): no second compile."""
        engine, component = self.compile(spec)
        return check_component(
            spec.component,
            grants=spec.grants,
            strict=strict,
            expected_kind=spec.kind,
            engine=engine,
            component=component,
        )

    def _from_disk(self, engine: Engine, key: str) -> Component | None:
        if self.cache is None:
            return None
        path, corrupt = self.cache.find(key)
        if corrupt and self.metrics is not None:
            self.metrics.compile_cache.labels("corrupt").inc()
        if path is None:
            return None
        try:
            component = Component.deserialize_file(engine, str(path))
        except WasmtimeError as exc:
            log.warning("compiled cache entry %s refused by wasmtime (%s): recompiling", path, exc)
            self.cache.discard(path)
            if self.metrics is not None:
                self.metrics.compile_cache.labels("corrupt").inc()
            return None
        if self.metrics is not None:
            self.metrics.compile_cache.labels("hit").inc()
        return component

    def _compile_fresh(self, engine: Engine, spec: OperatorSpec, key: str) -> Component:
        started = time.perf_counter()
        try:
            component = Component(engine, spec.component)
        except WasmtimeError as exc:
            raise EngineError(
                f"node {spec.node!r}: cannot compile the component {spec.content_digest()}: {exc}"
            ) from exc
        if self.metrics is not None:
            self.metrics.compile_cache.labels("miss").inc()
            self.metrics.compile_seconds.observe(time.perf_counter() - started)
        if self.cache is not None:
            self.cache.store(key, component.serialize())
        return component

    # -- nodes -------------------------------------------------------------------------------------------------

    def load(self, spec: OperatorSpec) -> OperatorNode:
        """Compile (or load from cache), instantiate and ``init`` one node; EngineError when any of it fails."""
        if self._closed:
            raise EngineError(f"node {spec.node!r}: the engine host is closed")
        engine, component = self.compile(spec)
        node = OperatorNode(self, spec, engine, component)
        node.start()
        self._nodes.add(node)
        return node

    def close(self) -> None:
        """Close every node loaded here and stop the ticker; idempotent (also runs at interpreter exit)."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        for node in list(self._nodes):
            node.close()
        self._stop.set()
        if self._ticker is not threading.current_thread():
            self._ticker.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


@dataclass
class _Live:
    """One instance of one operator, with its bound ``process`` call and the epoch deadline last set on its store."""

    store: Store
    instance: Instance
    process: codec.ProcessCall
    deadline_epoch: int = -1
    deadline_ticks: int = 0


def _export_name(engine: Engine, component: Component, interface: str) -> str | None:
    """The exact export name of ``wasmflow:operator/<interface>@0.1.x`` in this component."""
    wanted = f"{CONTRACT_PACKAGE}/{interface}"
    for name in component.type.exports(engine):
        base, version = split_name(name)
        if base == wanted and version is not None and version.startswith(CONTRACT_VERSION_PREFIX):
            return name
    return None


class OperatorNode:
    """One graph node: calls its operator one message at a time (not thread-safe: one caller at a time)."""

    def __init__(self, host: EngineHost, spec: OperatorSpec, engine: Engine, component: Component) -> None:
        self.host = host
        self.spec = spec
        self.node = spec.node
        self.kind = spec.kind
        self._engine = engine
        self._component = component
        metrics = host.metrics
        self._log = GuestLog(
            spec.node,
            on_dropped=(metrics.guest_log_dropped.labels(spec.node).inc if metrics is not None else None),
        )
        lifecycle = _export_name(engine, component, "lifecycle")
        operator = _export_name(engine, component, spec.kind.value)
        if lifecycle is None or operator is None:
            missing = [n for n, v in (("lifecycle", lifecycle), (spec.kind.value, operator)) if v is None]
            raise EngineError(
                f"node {spec.node!r}: the component does not export "
                + ", ".join(f"{CONTRACT_PACKAGE}/{m}@0.1.x" for m in missing)
            )
        self._lifecycle_name = lifecycle
        self._operator_name = operator
        self._linker, self._http = sandbox.node_linker(engine, component, self._log, spec.grants)
        self._limits = sandbox.StoreLimits.for_component(spec.memory_bytes, spec.component)
        self._deadline = host.deadline_ticks(spec.timeout_seconds)
        self._init_deadline = host.deadline_ticks(max(host.init_timeout_seconds, spec.timeout_seconds))
        self._returns_message = spec.kind in (OperatorKind.MAP, OperatorKind.ACCUMULATE)
        fast = host.fast_codec and codec.FAST_PATH
        self._conversion_seconds_per_byte = _CONVERSION_SECONDS_PER_BYTE if fast else _PLAIN_SECONDS_PER_BYTE
        self._live: _Live | None = None
        self._failures = 0
        self._retry_at = 0.0
        self._last_failure = ("trap", "")
        self._closed = False
        self._fuel = spec.fuel
        self._m_seconds: LatencySeries | None = None
        if metrics is not None:
            self._m_failures = {
                k: metrics.failures.labels(spec.node, k) for k in ("trap", "timeout", "memory", "error")
            }
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
            init = sandbox.export_func(store, instance, self._lifecycle_name, "init", spec.node)
            process = sandbox.export_func(store, instance, self._operator_name, "process", spec.node)
            error = codec.call_init(store, init, spec.node, spec.configuration)
        except WasmtimeError as exc:
            store.close()
            kind, text = sandbox.classify_failure(exc, self._log.recent)
            raise EngineError(f"node {spec.node!r}: cannot start the operator ({kind}): {text}") from exc
        except BaseException:
            store.close()
            raise
        if error is not None:
            store.close()
            raise EngineError(f"node {spec.node!r}: init refused the configuration: {error}")
        if self.host.metrics is not None:
            self._m_instantiations.inc()
        return _Live(
            store, instance, codec.bind_process(store, process, self._returns_message, fast=self.host.fast_codec)
        )

    @property
    def degraded(self) -> bool:
        """True while the node keeps failing (its instance is being replaced with back-off)."""
        return self._failures > self.host.backoff.free

    def close(self) -> None:
        """Drop the instance; idempotent. Further calls raise EngineError."""
        self._closed = True
        self._discard()

    def _discard(self) -> None:
        """Free the instance's store now, while Python can still take the WASI output it flushes on the way out
        (a store left to the garbage collector may be freed during interpreter shutdown, when it cannot)."""
        live, self._live = self._live, None
        if live is not None:
            live.process.close()
            live.store.close()
        self._log.flush()

    # -- calls -------------------------------------------------------------------------------------------------

    def map(self, msg: Message) -> Message:
        if self.kind is not OperatorKind.MAP:
            raise self._wrong_kind(OperatorKind.MAP)
        result: Message = self._call(msg)
        return result

    def filter(self, msg: Message) -> bool:
        if self.kind is not OperatorKind.FILTER:
            raise self._wrong_kind(OperatorKind.FILTER)
        result: bool = self._call(msg)
        return result

    def branch(self, msg: Message) -> bool:
        if self.kind is not OperatorKind.BRANCH:
            raise self._wrong_kind(OperatorKind.BRANCH)
        result: bool = self._call(msg)
        return result

    def accumulate(self, state: Message, msg: Message) -> Message:
        if self.kind is not OperatorKind.ACCUMULATE:
            raise self._wrong_kind(OperatorKind.ACCUMULATE)
        result: Message = self._call(state, msg)
        return result

    def _wrong_kind(self, kind: OperatorKind) -> EngineError:
        return EngineError(f"node {self.node!r} is a {self.kind.value} operator, not {kind.value}")

    def _call(self, *inputs: Message) -> Any:
        """One call: the hot path of the data plane (each line here is paid per message and node)."""
        if self._closed:
            raise EngineError(f"node {self.node!r} is closed")
        live = self._live or self._replace()
        ticks = self._deadline_for(inputs)
        epoch = self.host.epoch
        if epoch != live.deadline_epoch or ticks != live.deadline_ticks:
            # A deadline set in this tick for as many ticks is still the right one: skipping the C call is worth
            # a microsecond per message (the ticker's one-tick race is within deadline_ticks' slack).
            live.process.set_deadline(ticks)
            live.deadline_epoch, live.deadline_ticks = epoch, ticks
        if self._fuel is not None:
            live.store.set_fuel(self._fuel)
        self._log.begin_call()
        started = perf_counter()
        try:
            value = live.process(*inputs)
        except codec.ErrorResult as exc:
            self._observe(started)
            if self._failures:
                self._recovered()  # the operator answered: the instance is healthy
            raise self._fail("error", exc.text, discard=False) from None
        except codec.PayloadTooLarge as exc:  # refused before the call: the instance is untouched
            self._observe(started)
            raise self._fail("memory", exc.text, discard=False) from None
        except WasmtimeError as exc:
            kind_, text = sandbox.classify_failure(exc, self._log.recent)
            self._observe(started)
            raise self._fail(kind_, text, discard=True) from exc
        self._observe(started)
        if self._failures:
            self._recovered()
        return value

    def _deadline_for(self, inputs: tuple[Message, ...]) -> int:
        """The epoch deadline of one call. wasmtime converts a binary payload value by value (about 0.16 s per MiB
        on the test machines) before the guest runs, and that time counts toward the deadline: large payloads get
        an allowance for it so the limit stays a limit on the operator's own work."""
        size = len(inputs[0].payload) if len(inputs) == 1 else sum(len(m.payload) for m in inputs)
        if size <= _CONVERSION_FREE_BYTES:
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
        """A fresh instance after a failure, unless the node is backing off (then this message fails at once)."""
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
