"""The execution host: one wasmtime Engine per process, one Store per operator instance.

Isolation per operator: a memory cap (store limits), a per-message deadline (epoch interruption, ticked by one
background thread) and optionally fuel, no WASI capability beyond the grant (no preopens, no environment, no
network), guest stdout/stderr and the ``logging`` import routed to Python logging, rate-limited per node.

A trap, a timeout, a memory overrun or an ``err`` result fails that one message: ``OperatorFailure`` is raised,
the instance is thrown away (after a trap an instance refuses further calls) and a fresh one is created for the
next message, with a backoff when a node keeps failing.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime import component as cm

from wasmflow.contract.capabilities import ImportClass, classify_import
from wasmflow.contract.signatures import OperatorKind
from wasmflow.contract.wit import interface_name
from wasmflow.engine import codec
from wasmflow.engine.compile_cache import load_or_compile
from wasmflow.engine.message import Message
from wasmflow.engine.metrics import EngineMetrics
from wasmflow.errors import EngineError, OperatorFailure

log = logging.getLogger(__name__)

TICK_SECONDS = 0.005
#: Consecutive failures after which a node is reported degraded and re-instantiation backs off.
DEGRADED_AFTER = 5
MAX_BACKOFF_SECONDS = 5.0
#: Log records per node per second beyond which guest logs are dropped (and counted in one summary line).
LOG_RATE_PER_SECOND = 20
#: Fuel metering is on in the engine (so a WasmModule may set `limits.fuel`); others get a budget that never ends.
UNLIMITED_FUEL = 2**62


@dataclass(frozen=True)
class OperatorSpec:
    """Everything needed to run one node's operator."""

    node: str
    kind: OperatorKind
    component: bytes
    digest: str = ""
    memory_bytes: int = 64 * 2**20
    timeout_seconds: float = 0.1
    fuel: int | None = None
    grants: frozenset[str] = frozenset()
    configuration: tuple[tuple[str, str], ...] = ()

    def content_digest(self) -> str:
        return self.digest or "sha256:" + hashlib.sha256(self.component).hexdigest()


class _RateLimitedLog:
    """Per-node guest logging with a simple per-second budget."""

    def __init__(self, node: str) -> None:
        self.node = node
        #: The tail of what the guest wrote to stderr during the current call: tells a memory overrun from a trap
        #: (CPython in the guest reports MemoryError there before it aborts).
        self.stderr_tail = ""
        self.logger = logging.getLogger(f"wasmflow.guest.{node}")
        self.window = 0
        self.count = 0
        self.dropped = 0

    def stderr(self, data: bytes) -> None:
        if sys.is_finalizing():
            return  # stores dropped at interpreter exit may still flush: Python can no longer log then
        text = bytes(data).decode("utf-8", "replace")
        self.stderr_tail = (self.stderr_tail + text)[-4096:]
        self.emit(logging.WARNING, text)

    def stdout(self, data: bytes) -> None:
        if not sys.is_finalizing():
            self.emit(logging.INFO, bytes(data).decode("utf-8", "replace"))

    def emit(self, level: int, text: str) -> None:
        now = int(time.monotonic())
        if now != self.window:
            if self.dropped:
                self.logger.warning("[%s] %d guest log records dropped (rate limit)", self.node, self.dropped)
            self.window, self.count, self.dropped = now, 0, 0
        self.count += 1
        if self.count > LOG_RATE_PER_SECOND:
            self.dropped += 1
            return
        self.logger.log(level, "[%s] %s", self.node, text.rstrip("\n"))


_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}


class EngineHost:
    """Owns the wasmtime Engine, the epoch ticker thread and the compiled-component cache."""

    def __init__(self, *, cache_dir: Path | None = None, metrics: EngineMetrics | None = None) -> None:
        config = wasmtime.Config()
        config.epoch_interruption = True
        config.consume_fuel = True
        self.settings = "epoch+fuel;cranelift-speed"
        self.engine = wasmtime.Engine(config)
        self.cache_dir = cache_dir
        self.metrics = metrics
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="wasmflow-epoch", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            self.engine.increment_epoch()

    def compile(self, spec: OperatorSpec) -> cm.Component:
        """The compiled component for ``spec`` (from the disk cache when possible)."""
        try:
            component, outcome = load_or_compile(
                self.engine, spec.component, spec.content_digest(), self.settings, self.cache_dir
            )
        except wasmtime.WasmtimeError as exc:
            raise EngineError(f"node {spec.node!r}: the component does not compile: {exc}") from exc
        if self.metrics:
            self.metrics.compile_cache.labels(outcome).inc()
        return component

    def load(self, spec: OperatorSpec) -> OperatorNode:
        """Compile (or load from cache), instantiate and ``init`` the operator of one node."""
        return OperatorNode(self, spec, self.compile(spec))

    def close(self) -> None:
        self._stop.set()
        self._ticker.join(timeout=1)

    def __enter__(self) -> EngineHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Instance:
    """One Store + instance of a component, with the exported functions looked up once."""

    def __init__(self, host: EngineHost, spec: OperatorSpec, component: cm.Component, guest_log: _RateLimitedLog):
        self.store = wasmtime.Store(host.engine)
        # Instance and table caps keep a hostile component from multiplying itself inside one store.
        self.store.set_limits(memory_size=spec.memory_bytes, instances=64, tables=64, memories=16)
        wasi = wasmtime.WasiConfig()
        wasi.stdout_custom = guest_log.stdout
        wasi.stderr_custom = guest_log.stderr
        # Nothing else: no preopened directory, no environment, no argv, no stdin, no network (denied by default).
        self.store.set_wasi(wasi)
        self.store.set_epoch_deadline(1_000_000)
        self.store.set_fuel(spec.fuel or UNLIMITED_FUEL)
        linker = _linker(host.engine, component, guest_log)
        try:
            self.instance = linker.instantiate(self.store, component)
        except wasmtime.WasmtimeError as exc:
            raise EngineError(f"node {spec.node!r}: instantiation failed: {exc}") from exc
        self.process = _export_func(self.instance, self.store, interface_name(spec.kind.value), "process", spec.node)
        self.init = _export_func(self.instance, self.store, interface_name("lifecycle"), "init", spec.node)


def _export_func(instance: cm.Instance, store: wasmtime.Store, interface: str, name: str, node: str) -> cm.Func:
    iface = instance.get_export_index(store, interface)
    index = instance.get_export_index(store, name, iface) if iface is not None else None
    func = instance.get_func(store, index) if index is not None else None
    if func is None:
        raise EngineError(f"node {node!r}: the component does not export {interface} {name}")
    return func


def _linker(engine: wasmtime.Engine, component: cm.Component, guest_log: _RateLimitedLog) -> cm.Linker:
    linker = cm.Linker(engine)
    # WASI first: define_unknown_imports_as_traps would otherwise shadow semver-matched WASI imports.
    linker.add_wasip2()
    linker.add_wasi_http()
    imports = component.type.imports(engine)

    def log_fn(_store: Any, level: Any, message: str) -> None:
        guest_log.emit(_LEVELS.get(str(level).lower(), logging.INFO), message)

    with linker.root() as root:
        for name in imports:
            if classify_import(name).kind is not ImportClass.CONTRACT:
                continue
            with root.add_instance(name) as instance:
                if name.startswith("wasmflow:operator/logging@"):
                    instance.add_func("log", log_fn)
    # No define_unknown_imports_as_traps: in wasmtime-py 50 it shadows the semver-matched WASI imports (a 0.2.9
    # import would then trap as "unknown"). Imports that are really unknown are refused by the contract check;
    # should one get here, instantiation fails and names it.
    return linker


def _classify_trap(exc: Exception, stderr_tail: str) -> str:
    text = str(exc).lower()
    code = getattr(exc, "trap_code", None)
    if code == wasmtime.TrapCode.INTERRUPT or "interrupt" in text or "epoch" in text:
        return "timeout"
    if code == wasmtime.TrapCode.OUT_OF_FUEL or "all fuel consumed" in text:
        return "timeout"
    if "MemoryError" in stderr_tail or ("memory" in text and ("grow" in text or "out of" in text or "limit" in text)):
        return "memory"
    return "trap"


class OperatorNode:
    """One graph node's operator: an instance plus the policy to replace it after a failure. One caller at a time."""

    def __init__(self, host: EngineHost, spec: OperatorSpec, component: cm.Component) -> None:
        self.host = host
        self.spec = spec
        self.component = component
        self.guest_log = _RateLimitedLog(spec.node)
        self.consecutive_failures = 0
        self._not_before = 0.0
        self._instance: _Instance | None = None
        self._instance = self._new_instance()

    @property
    def degraded(self) -> bool:
        return self.consecutive_failures >= DEGRADED_AFTER

    def _new_instance(self) -> _Instance:
        wait = self._not_before - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        instance = _Instance(self.host, self.spec, self.component, self.guest_log)
        if self.host.metrics:
            self.host.metrics.instantiations.labels(self.spec.node).inc()
        args = codec.params(1)
        codec.lower_configuration(self.spec.node, self.spec.configuration, args[0])
        outcome = self._guarded(instance, instance.init, args, "unit")
        if not outcome.ok:
            raise EngineError(f"node {self.spec.node!r}: init refused the configuration: {outcome.error}")
        return instance

    def _guarded(self, instance: _Instance, func: cm.Func, args: Any, expect: str) -> codec.Outcome:
        instance.store.set_epoch_deadline(max(1, int(self.spec.timeout_seconds / TICK_SECONDS) + 1))
        instance.store.set_fuel(self.spec.fuel or UNLIMITED_FUEL)
        self.guest_log.stderr_tail = ""
        try:
            return codec.call(instance.store, func, args, expect)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            kind = _classify_trap(exc, self.guest_log.stderr_tail)
            raise OperatorFailure(self.spec.node, kind, _first_line(str(exc))) from exc

    def _call(self, args: Any, expect: str) -> codec.Outcome:
        instance = self._instance or self._new_instance()
        self._instance = instance
        try:
            outcome = self._guarded(instance, instance.process, args, expect)
        except OperatorFailure as failure:
            self._instance = None  # a trapped instance refuses further calls: replace it for the next message
            self._failed(failure.kind)
            raise
        if not outcome.ok:
            self._failed("error")
            raise OperatorFailure(self.spec.node, "error", outcome.error)
        self.consecutive_failures = 0
        if self.host.metrics:
            self.host.metrics.degraded.labels(self.spec.node).set(0)
        return outcome

    def _failed(self, kind: str) -> None:
        self.consecutive_failures += 1
        if self.host.metrics:
            self.host.metrics.failures.labels(self.spec.node, kind).inc()
            self.host.metrics.degraded.labels(self.spec.node).set(1 if self.degraded else 0)
        if kind != "error" and self.consecutive_failures > 1:
            backoff = min(MAX_BACKOFF_SECONDS, 0.01 * 2 ** (self.consecutive_failures - 2))
            self._not_before = time.monotonic() + backoff

    def map(self, msg: Message) -> Message:
        args = codec.params(1)
        codec.lower_message(msg, args[0])
        value = self._call(args, "message").value
        assert isinstance(value, Message)
        return value

    def filter(self, msg: Message) -> bool:
        args = codec.params(1)
        codec.lower_message(msg, args[0])
        return bool(self._call(args, "bool").value)

    def branch(self, msg: Message) -> bool:
        return self.filter(msg)

    def accumulate(self, state: Message, msg: Message) -> Message:
        args = codec.params(2)
        codec.lower_message(state, args[0])
        codec.lower_message(msg, args[1])
        value = self._call(args, "message").value
        assert isinstance(value, Message)
        return value

    def close(self) -> None:
        """Drop the instance (and its store) now rather than at interpreter exit."""
        self._instance = None


def _first_line(text: str) -> str:
    """wasmtime puts the reason last ("Caused by: wasm trap: ..."); the backtrace lines are noise here."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "trap"
