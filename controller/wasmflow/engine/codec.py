"""Lowering and lifting the contract's ``message`` record: the hot path of the data plane.

Two implementations of the same calls:

``plain``
    wasmtime-py's public API: ``Func.__call__`` with ``Record`` objects. Correct and slow: wasmtime-py rebuilds the
    function's type objects on every call and converts ``list<u8>`` one Python int per byte (DESIGN.md section 6).
``fast``
    The same C entry point (``wasmtime_component_func_call``) fed directly: the argument tree is laid out once per
    bound function in ctypes memory that the C API only *borrows* (wasmtime's ``wasmtime_component_func_call`` reads
    ``args`` through ``Val::from(&c_val)`` and never frees them), so each call only patches a few pointers and
    lengths; strings are passed by pointer into the Python ``bytes`` (no copy on our side); a ``list<u8>`` is written
    into a reusable array of ``wasmtime_component_val_t`` with one strided copy; the result tree, which the C API
    allocates, is read with ``string_at`` and strided slices, then freed with ``wasmtime_component_val_delete``.

The fast path reaches into wasmtime-py internals (``wasmtime._ffi`` structure layouts and the raw ctypes function,
``Func._func``, ``Store._context``). This module is the only place that does so; :func:`fast_path_problems` checks
every assumption at import time and the engine falls back to ``plain`` when one fails, and
``tests/unit/engine/test_codec_internals.py`` fails loudly so an upgrade of wasmtime-py is noticed, not silently
slower. The payload rule lives here too: a payload that is valid UTF-8 travels as ``text`` (one copy), anything
else as ``binary``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from wasmtime import Store, WasiConfig
from wasmtime import _ffi as ffi
from wasmtime.component import Func, Record

from wasmflow.engine.message import Message

#: What one operator call returns: (True, value) for ``ok``, (False, error text) for ``err``.
Outcome = tuple[bool, Any]


class ProcessCall(Protocol):
    """A ``process`` export bound to one instance: ``call(msg)`` or ``call(state, msg)`` for accumulate."""

    def __call__(self, *inputs: Message) -> Outcome: ...


def payload_value(payload: bytes) -> str | bytes:
    """The ``payload`` variant case for these bytes: ``text`` (a str) when valid UTF-8, else ``binary``."""
    if payload.isascii():
        return payload.decode("ascii")
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload


def to_record(msg: Message) -> Record:
    """A ``message`` as wasmtime-py's generic ``Record`` (plain path)."""
    return _record(
        {
            "payload": payload_value(msg.payload),
            "topic": msg.topic,
            "content-type": msg.content_type,
            "properties": [tuple(p) for p in msg.properties],
            "timestamp-ms": msg.timestamp_ms,
        }
    )


def _record(fields: dict[str, Any]) -> Record:
    """A ``Record`` with these fields (WIT field names keep their dashes)."""
    record = Record()
    for name, value in fields.items():
        setattr(record, name, value)
    return record


def from_record(record: Any) -> Message:
    """The host ``Message`` for a lifted ``message`` record (plain path)."""
    payload = record.payload
    return Message(
        payload=payload.encode("utf-8") if isinstance(payload, str) else bytes(payload),
        topic=record.topic,
        content_type=getattr(record, "content-type"),
        properties=tuple((str(k), str(v)) for k, v in record.properties),
        timestamp_ms=int(getattr(record, "timestamp-ms")),
    )


def _unwrap_result(value: Any, lift_ok: Callable[[Any], Any]) -> Outcome:
    """wasmtime-py lifts ``result<T, operator-error>`` as a tagged ``Variant`` (both cases are records) or, when
    T is not a record, as the bare value; an ``operator-error`` is a record with a ``message`` field."""
    tag = getattr(value, "tag", None)
    if tag == "ok":
        return True, lift_ok(value.payload)
    if tag == "err":
        return False, str(value.payload.message)
    if isinstance(value, Record):
        return False, str(getattr(value, "message", ""))
    return True, lift_ok(value)


def bind_plain(store: Store, func: Func, returns_message: bool) -> ProcessCall:
    """The ``process`` export through wasmtime-py's public API."""
    lift_ok: Callable[[Any], Any] = from_record if returns_message else bool

    def call(*inputs: Message) -> Outcome:
        return _unwrap_result(func(store, *(to_record(m) for m in inputs)), lift_ok)

    return call


def call_init(store: Store, func: Func, node: str, properties: tuple[tuple[str, str], ...]) -> str | None:
    """Call ``lifecycle.init``; returns the error text of an ``err`` result, None on ``ok``."""
    config = _record({"node": node, "properties": [tuple(p) for p in properties]})
    # result<_, string> has distinguishable cases, so wasmtime-py lifts it untagged: None or the error string.
    result = func(store, config)
    return None if result is None else str(result)


def bind_process(store: Store, func: Func, returns_message: bool, *, fast: bool = True) -> ProcessCall:
    """The best available binding of a ``process`` export."""
    return bind_plain(store, func, returns_message)


def wasi_inherit_network(config: WasiConfig) -> None:
    """Grant TCP/UDP and name lookup: the C API has it, wasmtime-py's ``WasiConfig`` does not wrap it (yet)."""
    ffi.wasi_config_inherit_network(config.ptr())
    ffi.wasi_config_allow_ip_name_lookup(config.ptr(), True)
