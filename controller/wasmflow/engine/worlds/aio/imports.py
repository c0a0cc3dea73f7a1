"""The host side of AIO's imports: ``types`` (the buffer resource), ``logger``, ``metrics``, ``state-store``,
``hybrid-logical-clock``; and the imports wasmflow cannot serve, linked so that every call fails naming them.

Each is defined under the exact name the component imports (package and version included), so a component built
against either published package links. Host functions never raise into the guest for its own mistakes: they
answer with AIO's error cases (``metrics-error``, ``state-store-error``), as AIO's host does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wasmtime import Engine, Store, StoreContext
from wasmtime.component import Component, Linker, LinkerInstance, ResourceAny, ResourceType, Variant
from wasmtime.component import FuncType as ComponentFuncType

from wasmflow.contract.aio_names import DENIED, aio_interface
from wasmflow.contract.capabilities import split_name
from wasmflow.engine import codec, ffi
from wasmflow.engine.guestlog import GuestLog
from wasmflow.engine.node import InstanceSpoiledError
from wasmflow.engine.worlds.aio.codec import BUFFER_TYPE, BufferTable, record
from wasmflow.engine.worlds.aio.metrics import AioMetrics, MetricsError
from wasmflow.engine.worlds.aio.model import Hlc
from wasmflow.engine.worlds.aio.state import SetCondition, StateStore, StateStoreError, StateStoreTimeout

_LEVELS = {"trace": "trace", "debug": "debug", "info": "info", "warn": "warn", "error": "error", "critical": "error"}
_DENIED_TYPE_BASE = 0xA1D0


class DeniedImportError(InstanceSpoiledError):
    """The operator called an import wasmflow links but does not serve (the command invoker, the schema registry):
    the call traps and the node replaces the instance."""


class BufferTooLargeError(InstanceSpoiledError):
    """``buffer.read`` of a buffer wasmtime cannot pass as list<u8> in one call: the call traps (``memory``)."""

    kind = "memory"


@dataclass
class AioHostContext:
    """What one node's host functions reach."""

    node: str
    log: GuestLog
    buffers: BufferTable
    metrics: AioMetrics | None
    state: StateStore


def define_aio_imports(engine: Engine, component: Component, linker: Linker, context: AioHostContext) -> None:
    """Define every AIO interface ``component`` imports; EngineError names one the host does not know."""
    with linker.root() as root:
        for name, extern in component.type.imports(engine).items():
            base, version = split_name(name)
            found = aio_interface(base, version)
            if found is None:
                continue
            interface = found[1]
            with root.add_instance(name) as instance:
                if interface == "types":
                    _types(instance, context)
                elif interface == "logger":
                    _logger(instance, context)
                elif interface == "metrics":
                    _metrics(instance, context)
                elif interface == "state-store":
                    _state_store(instance, context)
                elif interface in DENIED:
                    _denied(engine, instance, name, extern.ty)
                # hybrid-logical-clock and state-store-types hold types only: the empty instance is enough.


def _types(instance: LinkerInstance, context: AioHostContext) -> None:
    def dropped(_store: object, rep: int) -> None:
        context.buffers.drop(rep)

    def read(store: Store | StoreContext, handle: ResourceAny) -> bytes:
        """Every AIO payload a module reads crosses here as list<u8>, text or not: over codec.MAX_BINARY_BYTES the
        read fails (PayloadTooLarge, the call traps) before anything is built."""
        data = context.buffers.read(handle.to_host(store).rep)
        if len(data) > codec.MAX_BINARY_BYTES:  # wasmtime would trap after ~80 bytes of host memory per byte
            raise BufferTooLargeError(codec.PayloadTooLarge(len(data), "buffer.read: the buffer is", "").text)
        return data

    instance.add_resource("buffer", BUFFER_TYPE, dropped)
    if ffi.FAST_PATH:  # one strided copy instead of one Python object per byte (16 KiB: 65 ms -> µs)
        ffi.add_bytes_method(instance, "[method]buffer.read", read)
    else:
        instance.add_func("[method]buffer.read", read)


def _logger(instance: LinkerInstance, context: AioHostContext) -> None:
    def log(_store: Store, level: str, where: str, message: str) -> None:
        context.log.log(_LEVELS.get(level, "info"), f"[{where}] {message}" if where else message)

    instance.add_func("log", log)


def _labels(labels: list[Any] | None) -> list[tuple[str, str]]:
    return [(str(label.key), str(label.value)) for label in labels or []]


def _metrics(instance: LinkerInstance, context: AioHostContext) -> None:
    def failed(exc: MetricsError) -> Variant:
        return Variant(exc.kind, str(exc))

    def add_to_counter(_store: Store, name: str, value: Any, labels: list[Any] | None) -> Variant | None:
        amount: Any = value.payload if isinstance(value, Variant) else value
        if context.metrics is None:
            return None
        try:
            context.metrics.add_to_counter(context.node, name, int(amount), _labels(labels))
        except MetricsError as exc:
            return failed(exc)
        return None

    def record_to_histogram(_store: Store, name: str, value: Any, labels: list[Any] | None) -> Variant | None:
        amount: Any = value.payload if isinstance(value, Variant) else value
        if context.metrics is None:
            return None
        try:
            context.metrics.record_to_histogram(context.node, name, float(amount), _labels(labels))
        except MetricsError as exc:
            return failed(exc)
        return None

    instance.add_func("add-to-counter", add_to_counter)
    instance.add_func("record-to-histogram", record_to_histogram)


def _hlc_in(value: Any) -> Hlc | None:
    if value is None:
        return None
    wall = value.timestamp
    return Hlc(int(wall.secs), int(wall.nanos), int(value.counter), str(getattr(value, "node-id")))


def _hlc_out(value: Hlc | None) -> Any:
    if value is None:
        return None
    return record(timestamp=record(secs=value.secs, nanos=value.nanos), counter=value.counter, node_id=value.node_id)


def _state_store(instance: LinkerInstance, context: AioHostContext) -> None:
    store = context.state

    def guarded(call: Callable[[], Any]) -> Any:
        """The store's own failures become AIO's ``state-store-error`` for the operator to handle, never a trap."""
        try:
            return call()
        except StateStoreTimeout:
            return Variant("timeout")
        except StateStoreError as exc:
            return Variant("request-error", str(exc))

    def get(_store: Store, key: bytes, _timeout: Any) -> Any:
        value, version = store.get(bytes(key))
        return record(response=value, version=_hlc_out(version))

    def set_(_store: Store, key: bytes, value: bytes, _timeout: Any, fencing: Any, options: Any) -> Any:
        expires = options.expires
        seconds = None if expires is None else int(expires.seconds) + int(expires.nanos) / 1e9

        def run() -> Any:
            done, version = store.set(
                bytes(key), bytes(value), _hlc_in(fencing), SetCondition(options.conditions), seconds
            )
            return record(response=done, version=_hlc_out(version))

        return guarded(run)

    def delete(_store: Store, key: bytes, fencing: Any, _timeout: Any) -> Any:
        def run() -> Any:
            count, version = store.delete(bytes(key), _hlc_in(fencing))
            return record(response=count, version=_hlc_out(version))

        return guarded(run)

    def vdelete(_store: Store, key: bytes, value: bytes, fencing: Any, _timeout: Any) -> Any:
        def run() -> Any:
            count, version = store.delete(bytes(key), _hlc_in(fencing), bytes(value))
            return record(response=count, version=_hlc_out(version))

        return guarded(run)

    instance.add_func("get", get)
    instance.add_func("set", set_)
    instance.add_func("del", delete)
    instance.add_func("vdel", vdelete)


def _denied(engine: Engine, instance: LinkerInstance, name: str, ty: Any) -> None:
    """Resources and functions of an import wasmflow does not serve: linked, and each call fails saying which."""
    exports = ty.exports(engine) if hasattr(ty, "exports") else {}
    for index, (item, extern) in enumerate(exports.items()):
        if isinstance(extern.ty, ResourceType):
            instance.add_resource(item, ResourceType.host(_DENIED_TYPE_BASE + index), _ignore_drop)
        elif isinstance(extern.ty, ComponentFuncType):
            instance.add_func(item, _refuse(name, item))


def _ignore_drop(_store: object, _rep: int) -> None:
    return None


def _refuse(interface: str, function: str) -> Callable[..., Any]:
    def refuse(_store: Store, *_args: Any) -> Any:
        raise DeniedImportError(
            f"{interface} {function}: wasmflow does not provide this AIO host interface (it links it so the module "
            "loads, but every call fails)"
        )

    return refuse


log = logging.getLogger(__name__)
