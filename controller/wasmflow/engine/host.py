"""The process-wide part of the engine: one wasmtime ``Engine`` per process, compiled components, the epoch ticker.

``EngineHost`` owns what is shared: the engine (compiled code is shared by every instance of a component), the
epoch ticker thread that enforces per-item time limits, and the compiled-component cache; it checks a component
against the contract from its compiled form. Each graph node is an ``engine.node.Node`` (one instance at a time,
limits, restart with back-off, metrics) over a world adapter (``engine/worlds/``); ``load`` builds one for our own
``wasmflow:operator`` world, ``start`` starts any node so that closing the host closes it.

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
from types import TracebackType
from typing import Self

from wasmtime import Config, Engine, WasmtimeError
from wasmtime.component import Component

from wasmflow.api.kinds import OperatorKind
from wasmflow.contract.capabilities import FEATURES, restrict_features
from wasmflow.contract.check import check_component
from wasmflow.contract.report import ContractReport
from wasmflow.engine import ffi
from wasmflow.engine.cache import CompiledCache, cache_key
from wasmflow.engine.metrics import EngineMetrics
from wasmflow.engine.node import Backoff, Compilable, Node
from wasmflow.engine.worlds.operator import OperatorAdapter
from wasmflow.errors import EngineError

__all__ = ["Backoff", "EngineHost", "OperatorNode", "OperatorSpec"]

#: Our world's node: the one node class (kept under this name for the modules that import it).
OperatorNode = Node

log = logging.getLogger(__name__)


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
        backoff: Backoff | None = None,
        fast_codec: bool = True,
    ) -> None:
        self.metrics = metrics
        self.cache = CompiledCache(cache_dir) if cache_dir is not None else None
        self.epoch_tick_seconds = epoch_tick_seconds
        self.init_timeout_seconds = init_timeout_seconds
        self.backoff = backoff if backoff is not None else Backoff()
        self.fast_codec = fast_codec
        self._profiles: dict[bool, _Profile] = {}
        self._lock = threading.Lock()
        self._compile_lock = threading.Lock()
        self._stop = threading.Event()
        self._closed = False
        self._nodes: weakref.WeakSet[Node] = weakref.WeakSet()
        #: Ticks since the host started, counted with the engines' epochs (read without the lock: an int).
        self.epoch = 0
        if fast_codec and not ffi.FAST_PATH:
            log.warning(
                "the fast message codec is off (%s): using wasmtime-py's own conversions", ffi.FAST_PATH_PROBLEMS
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

    def compile(self, spec: Compilable) -> tuple[Engine, Component]:
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

    def _compile_fresh(self, engine: Engine, spec: Compilable, key: str) -> Component:
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

    def load(self, spec: OperatorSpec) -> Node:
        """Compile (or load from cache), instantiate and ``init`` one node; EngineError when any of it fails."""
        if self._closed:
            raise EngineError(f"node {spec.node!r}: the engine host is closed")
        engine, component = self.compile(spec)
        adapter = OperatorAdapter(
            spec.node, spec.kind, engine, component, grants=spec.grants, configuration=spec.configuration
        )
        return self.start(Node(self, spec, adapter, engine, component))

    def start(self, node: Node) -> Node:
        """Create ``node``'s first instance (EngineError when it fails) and close it with the host."""
        if self._closed:
            raise EngineError(f"node {node.node!r}: the engine host is closed")
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
