"""What an operator instance can reach, and how its failures are told apart.

Every import a component declares is linked, but only granted ones work (DESIGN.md section 3): WASI comes from
wasmtime's own implementation with a ``WasiConfig`` that, by default, has no preopened directory, no environment,
no network and an empty stdin; grants open exactly one of those each. Which import needs which grant is the
contract's knowledge (``wasmflow.contract.capabilities``); this module only applies it. Guest stdout and stderr
go to the node's rate-limited log, never to the worker's own streams.

Our operators (``host``) and AIO's (``aio_host``) share this sandbox and the steps that set up one instance of it
(``node_linker``, ``init_store``, ``export_func``); what they call once it runs is theirs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from wasmtime import Engine, Store, WasiConfig, WasmtimeError
from wasmtime.component import Component, Func, Instance, Linker

from wasmflow.contract import parts
from wasmflow.contract.capabilities import Capability, ImportClass, ImportVerdict, classify_import
from wasmflow.engine import ffi
from wasmflow.engine.guestlog import GuestLog
from wasmflow.errors import EngineError

LOGGING_INTERFACE = "wasmflow:operator/logging@0.1.0"


def import_verdicts(engine: Engine, component: Component) -> list[ImportVerdict]:
    """How the host treats each import of ``component``."""
    return [classify_import(name) for name in component.type.imports(engine)]


def refuse_unknown_imports(node: str, verdicts: Iterable[ImportVerdict]) -> None:
    """A component importing something no host provides cannot be linked: say which imports, naming the node."""
    unknown = sorted(v.name for v in verdicts if v.kind is ImportClass.UNKNOWN)
    if unknown:
        raise EngineError(f"node {node!r}: the component imports what the host does not provide: {', '.join(unknown)}")


def imports_http(verdicts: Iterable[ImportVerdict]) -> bool:
    """True when the component imports wasi:http (componentize-js components do)."""
    return any(v.capability is Capability.HTTP for v in verdicts)


def build_linker(engine: Engine, log: GuestLog, *, http: bool) -> Linker:
    """WASI 0.2 (and wasmtime's wasi:http when ``http``) plus our ``logging`` import, bound to one node's log."""
    linker = Linker(engine)
    try:
        linker.add_wasip2()
        if http:
            linker.add_wasi_http()
        with linker.root() as root, root.add_instance(LOGGING_INTERFACE) as logging_instance:

            def guest_log(_store: object, level: str, message: str) -> None:
                log.log(level, message)

            logging_instance.add_func("log", guest_log)
    except WasmtimeError as exc:
        raise EngineError(f"node {log.node!r}: cannot link the host interfaces: {exc}") from exc
    return linker


def node_linker(
    engine: Engine,
    component: Component,
    log: GuestLog,
    grants: frozenset[str],
    define: Callable[[Linker], None] | None = None,
) -> tuple[Linker, bool]:
    """The linker of one node, after refusing imports no grant can serve; also whether the store needs wasi:http.

    ``define`` adds the caller's own host interfaces (AIO's). wasi:http is wasmtime's only when it is imported and
    granted: wasmtime's implementation needs an HTTP context in the store, and a call without one panics inside
    wasmtime and aborts the whole process (SIGABRT). Imported but not granted, its functions are linked as traps
    instead, last, once everything else is defined: such a call fails its message and the instance is replaced,
    as for any other trap (componentize-js components import wasi:http whether or not they call ``fetch``).
    """
    verdicts = import_verdicts(engine, component)
    refuse_unknown_imports(log.node, verdicts)
    http = imports_http(verdicts)
    granted = http and Capability.HTTP.value in grants
    linker = build_linker(engine, log, http=granted)
    if define is not None:
        define(linker)
    if http and not granted:
        try:
            linker.define_unknown_imports_as_traps(component)
        except WasmtimeError as exc:
            raise EngineError(f"node {log.node!r}: cannot link wasi:http as denied: {exc}") from exc
    return linker, granted


def wasi_config(grants: frozenset[str], log: GuestLog) -> WasiConfig:
    """The WASI context of one instance: denied unless granted; stdout/stderr always to the node's log."""
    config = WasiConfig()
    config.stdout_custom = log.stream("stdout", logging.INFO)
    config.stderr_custom = log.stream("stderr", logging.WARNING)
    if Capability.ENVIRONMENT in grants:
        config.inherit_env()
    if Capability.STDIO in grants:
        config.inherit_stdin()
    if Capability.NETWORK in grants:
        ffi.wasi_inherit_network(config)
    # Capability.FILESYSTEM is reserved (capabilities.py): no directory is mounted for operators yet.
    return config


@dataclass(frozen=True)
class StoreLimits:
    """What one operator instance may allocate, as a whole.

    wasmtime's store limits are per linear memory and per table, not per store: an instance with six memories under
    a 64 MiB limit could hold 384 MiB. So ``memories`` is the number of linear memories the component defines
    (``for_component``: one for every toolchain we know, two for a composed component, one per core module that has
    its own) and each may grow to an equal share of ``memory_bytes``, which stays the bound on all of an instance's
    linear memory together. The engine has no GC heap (``capabilities.restrict_features``). Tables are host memory
    outside ``memory_bytes`` (8 bytes an element): at most ``tables`` of at most ``table_elements`` each, 32 MiB in
    all by default (componentize-py needs 2 tables under 10,000 elements). ``instances`` bounds the core instances
    (componentize-py needs 14; a composed component adds the other part's and the fused adapters').
    """

    memory_bytes: int
    memories: int = 1
    tables: int = 4
    table_elements: int = 1_000_000
    instances: int = 100

    @classmethod
    def for_component(cls, memory_bytes: int, component: bytes) -> StoreLimits:
        """The limits of an instance of ``component``: ``memory_bytes`` split between the memories it defines."""
        return cls(memory_bytes=memory_bytes, memories=parts.memory_count(component))

    @property
    def memory_bytes_each(self) -> int:
        """The most one linear memory may grow to: an equal share of ``memory_bytes``."""
        return self.memory_bytes // max(1, self.memories)


def new_store(engine: Engine, limits: StoreLimits, wasi: WasiConfig, *, http: bool) -> Store:
    """A fresh store for one instance of one operator."""
    store = Store(engine)
    store.set_limits(
        memory_size=limits.memory_bytes_each,
        table_elements=limits.table_elements,
        instances=limits.instances,
        tables=limits.tables,
        memories=limits.memories,
    )
    store.set_wasi(wasi)
    if http:
        store.set_wasi_http()
    return store


#: Fuel while instantiating and in ``init``: set-up is bounded by the init deadline, fuel limits messages.
INIT_FUEL = 10**15


def init_store(
    engine: Engine,
    limits: StoreLimits,
    grants: frozenset[str],
    log: GuestLog,
    *,
    http: bool,
    init_deadline: int,
    fuel: bool,
) -> Store:
    """A fresh store ready for instantiation and ``init``: its WASI as granted, wasi:http's context when
    ``node_linker`` linked wasmtime's wasi:http, the init deadline, and fuel enough for set-up when the node
    meters fuel."""
    store = new_store(engine, limits, wasi_config(grants, log), http=http)
    store.set_epoch_deadline(init_deadline)
    if fuel:
        store.set_fuel(INIT_FUEL)
    return store


def export_func(store: Store, instance: Instance, interface: str, name: str, node: str) -> Func:
    """``interface#name`` of an instance; EngineError naming the node when the component lacks it."""
    index = instance.get_export_index(store, interface)
    func_index = instance.get_export_index(store, name, index) if index is not None else None
    func = instance.get_func(store, func_index) if func_index is not None else None
    if func is None:
        raise EngineError(f"node {node!r}: the component has no function {interface}#{name}")
    return func


#: Guest output that accompanies an allocation failure in the toolchains we know (CPython, Rust, SpiderMonkey).
_OOM_MARKERS = ("MemoryError", "memory allocation of", "out of memory", "Out of memory", "allocation failed")


def classify_failure(exc: WasmtimeError, recent_output: Callable[[], str]) -> tuple[str, str]:
    """(kind, text) for a failed call: ``timeout`` (epoch deadline or fuel), ``memory`` or ``trap``.

    wasmtime cannot tell us that a ``memory.grow`` was refused by the store limit (the C API builds its limiter
    without ``trap_on_grow_failure``): the guest sees -1 and its allocator gives up, usually with a trap. So a trap
    is a ``memory`` failure when wasmtime says so or when the guest's own output for this call reports an
    allocation failure.
    """
    text = str(exc)
    denied = _UNGRANTED_CALL.search(text)
    if denied is not None:
        return "trap", _denied_text(denied["function"])
    if "wasm trap: interrupt" in text:
        return "timeout", "the per-message time limit was exceeded"
    if "all fuel consumed" in text:
        return "timeout", "the per-message fuel budget was exhausted"
    count = _COUNT_LIMIT.search(text)
    if count is not None:
        what, most = _COUNT_LIMITS[count["what"]]
        return "memory", f"the component creates more {what} than one operator instance may have ({most})"
    if "memory" in text and "limit" in text:
        return "memory", _first_line(text)
    if any(marker in recent_output() for marker in _OOM_MARKERS):
        return "memory", "the operator ran out of memory (limit reached): " + _first_line(text)
    return "trap", _first_line(text)


#: How wasmtime refuses an instance that creates more memories, tables or core instances than ``StoreLimits`` allow.
_COUNT_LIMIT = re.compile(r"resource limit exceeded: (?P<what>memory|table|instance) count too high")
_COUNT_LIMITS = {
    "memory": (
        "linear memories",
        "as many as the component defines: limits.memory bounds all of an instance's linear memory together",
    ),
    "table": ("tables", f"at most {StoreLimits.tables}"),
    "instance": ("core instances", f"at most {StoreLimits.instances}"),
}

#: How wasmtime reports a call to an import ``define_unknown_imports_as_traps`` linked (``node_linker``).
_UNGRANTED_CALL = re.compile(r"unknown import: `(?P<function>[^`]{1,300})` has not been defined")


def _denied_text(function: str) -> str:
    """What a dead letter says when the operator called an import it was not granted (``iface#func``)."""
    verdict = classify_import(function.partition("#")[0])
    grant = f"grant {verdict.capability.value!r} to allow it" if verdict.capability is not None else "not granted"
    return f"denied: the operator called {function}, which the WasmModule does not grant ({grant})"


def _first_line(text: str) -> str:
    """wasmtime error texts carry a backtrace after the cause; keep the cause."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    causes = [line for line in lines if line.startswith("wasm trap") or "trap" in line]
    return (causes[-1] if causes else lines[0] if lines else "trap")[:500]
