"""Lowering and lifting the contract's ``message`` record: the hot path of the data plane.

Why not wasmtime-py's generic ``Func.__call__``: it rebuilds the function's type objects on every call (the record
field list, the variant cases...) and converts ``list<u8>`` one Python object per byte (DESIGN.md section 6). For
our one record type we know the layout, so this module writes the C API's value tree itself. Three paths:

``FastProcess`` (the default for ``process``)
    The argument tree is laid out once per bound function in ctypes memory that the C API only *borrows*
    (``wasmtime_component_func_call`` reads ``args`` through ``Val::from(&c_val)`` and never frees them), so a call
    only patches pointers and lengths with one ``struct.pack_into``; strings are passed by pointer into the Python
    ``bytes`` (no copy on our side); a ``list<u8>`` is written into a reusable array of 32-byte
    ``wasmtime_component_val_t`` with one strided copy; the result tree, which the C API allocates, is read with
    slices of one memory view, and left in place: the next call assigns its result over it, which frees it. The
    three C functions of a call are called through integer-address prototypes of their own (no pointer objects to
    convert), and the epoch deadline is set only when it changes (see ``OperatorNode._call``).
``lower_message`` / ``lift_message`` / ``call``
    The same C tree built with the C API's own allocating constructors (one allocation per node, freed after the
    call): simpler, slower, used for ``init`` and as an independent oracle in the tests.
``PlainProcess``
    wasmtime-py's public API with ``Record`` objects: the fallback when the internals below do not hold.

The first two reach into wasmtime-py internals (``wasmtime._ffi`` layouts and raw functions, ``Func._func``,
``Store._context``) and, for ``FastProcess``, CPython's ``bytes`` layout. This module is the only place that does;
:func:`fast_path_problems` checks every assumption at import time, the host falls back to ``PlainProcess`` when one
fails, and ``tests/unit/engine/test_codec_internals.py`` fails loudly so an upgrade of wasmtime-py is noticed, not
silently slower. The payload rule lives here too: valid UTF-8 travels as ``text`` (one copy), the rest as ``binary``.

Host memory of a ``binary`` payload (measured, ``tests/unit/hostile/test_codec_memory.py``): the C API wants one
32-byte C value per byte, and wasmtime turns each into a 48-byte Rust value before copying it into the guest, both
ways, so an echo peaks at ~160 bytes per payload byte while it runs, ~96 of them inside wasmtime. This module's share
(the two C arrays) lives only during the call: arrays for payloads over ``SCRATCH_BYTES`` and results over it are
freed as soon as the call returns (they used to stay until the next call: ~65 bytes per byte, per node). wasmtime
itself caps what one call may copy (its "hostcall fuel", 128 MiB, spent at 48 per list element): a binary payload
over ``MAX_BINARY_BYTES`` would trap only after the host had built ~80 bytes per byte of it, so it is refused
before anything is built (``PayloadTooLarge``).
"""

from __future__ import annotations

import ctypes
import struct
import sys
from collections.abc import Callable
from ctypes import byref
from typing import Any, Protocol

from wasmtime import Store, WasiConfig, WasmtimeError, _bindings
from wasmtime import _ffi as ffi
from wasmtime import component as cm
from wasmtime.component import Func, Record
from wasmtime.component._enter import enter_wasm, maybe_raise_last_exn

from wasmflow.engine.message import Message

Val = ffi.wasmtime_component_val_t
VAL_SIZE = ctypes.sizeof(Val)
VALUE_OFFSET = Val.of.offset
U8 = ffi.WASMTIME_COMPONENT_U8.value
STRING = ffi.WASMTIME_COMPONENT_STRING.value
LIST = ffi.WASMTIME_COMPONENT_LIST.value
RECORD = ffi.WASMTIME_COMPONENT_RECORD.value
VARIANT = ffi.WASMTIME_COMPONENT_VARIANT.value
OPTION = ffi.WASMTIME_COMPONENT_OPTION.value
RESULT = ffi.WASMTIME_COMPONENT_RESULT.value
TUPLE = ffi.WASMTIME_COMPONENT_TUPLE.value
U64 = ffi.WASMTIME_COMPONENT_U64.value
BOOL = ffi.WASMTIME_COMPONENT_BOOL.value

MESSAGE_FIELDS = (b"payload", b"topic", b"content-type", b"properties", b"timestamp-ms")
#: The largest binary payload lowered into a guest. wasmtime 50 traps a call once it has copied 128 MiB of "hostcall
#: fuel" (a list<u8> spends 48 per byte: from ~2.67 MiB on); below that with room for the rest of the message.
MAX_BINARY_BYTES = 5 * 2**19
#: Binary payloads up to this size reuse one C value array per argument (2 MiB); results up to it are left in place
#: until the next call frees them. Anything larger is freed as soon as the call returns.
SCRATCH_BYTES = 64 * 2**10


class PayloadTooLarge(Exception):  # noqa: N818 - an answer about one message, as ErrorResult is
    """A binary payload over ``MAX_BINARY_BYTES``: refused before it is lowered (the call would trap anyway)."""

    def __init__(self, size: int, what: str = "binary payload", note: str = " (a text payload may be larger)") -> None:
        self.size = size
        self.text = (
            f"{what} too large: {size} bytes > {MAX_BINARY_BYTES} bytes, the most wasmtime passes as list<u8> in "
            f"one call{note}"
        )
        super().__init__(self.text)


def check_binary(payload: bytes) -> None:
    """PayloadTooLarge when ``payload`` would cross as a list<u8> larger than wasmtime takes."""
    if len(payload) > MAX_BINARY_BYTES and not _is_utf8(payload):
        raise PayloadTooLarge(len(payload))


def _vec(data: bytes) -> Any:
    return ffi.bytes_to_capi(data)


def _read_vec(vec: Any) -> bytes:
    if not vec.size:
        return b""
    return ctypes.string_at(vec.data, vec.size)


def _set_string(val: Any, data: bytes) -> None:
    val.kind = STRING
    val.of.string = _vec(data)


def _set_bytes_list(val: Any, data: bytes) -> None:
    raw = ffi.wasmtime_component_vallist_t()
    ffi.wasmtime_component_vallist_new_uninit(byref(raw), len(data))
    if data:
        view = memoryview(
            (ctypes.c_ubyte * (len(data) * VAL_SIZE)).from_address(ctypes.addressof(raw.data.contents))
        ).cast("B")
        view[0::VAL_SIZE] = bytes([U8]) * len(data)
        view[VALUE_OFFSET::VAL_SIZE] = data
    val.kind = LIST
    val.of.list = raw


#: The list<u8> writer, for other host functions that return bytes (engine/aio_imports.py).
set_bytes_list = _set_bytes_list


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def lower_message(msg: Message, val: Any) -> None:
    """Write ``msg`` into ``val`` (a ``wasmtime_component_val_t``) as the contract's ``message`` record."""
    record = ffi.wasmtime_component_valrecord_t()
    ffi.wasmtime_component_valrecord_new_uninit(byref(record), 5)
    entries = record.data
    for i, name in enumerate(MESSAGE_FIELDS):
        entries[i].name = _vec(name)
    # payload: variant { text(string), binary(list<u8>) }
    inner = Val()
    if _is_utf8(msg.payload):
        _set_string(inner, msg.payload)
        case = b"text"
    else:
        if len(msg.payload) > MAX_BINARY_BYTES:
            raise PayloadTooLarge(len(msg.payload))
        _set_bytes_list(inner, msg.payload)
        case = b"binary"
    payload = entries[0].val
    payload.kind = VARIANT
    payload.of.variant.discriminant = _vec(case)
    payload.of.variant.val = ffi.wasmtime_component_val_new(byref(inner))
    _set_string(entries[1].val, msg.topic.encode())
    content_type = entries[2].val
    content_type.kind = OPTION
    if msg.content_type is None:
        content_type.of.option = ctypes.POINTER(Val)()
    else:
        some = Val()
        _set_string(some, msg.content_type.encode())
        content_type.of.option = ffi.wasmtime_component_val_new(byref(some))
    properties = entries[3].val
    pairs = ffi.wasmtime_component_vallist_t()
    ffi.wasmtime_component_vallist_new_uninit(byref(pairs), len(msg.properties))
    for i, (key, value) in enumerate(msg.properties):
        tup = ffi.wasmtime_component_valtuple_t()
        ffi.wasmtime_component_valtuple_new_uninit(byref(tup), 2)
        _set_string(tup.data[0], key.encode())
        _set_string(tup.data[1], value.encode())
        pairs.data[i].kind = TUPLE
        pairs.data[i].of.tuple = tup
    properties.kind = LIST
    properties.of.list = pairs
    timestamp = entries[4].val
    timestamp.kind = U64
    timestamp.of.u64 = msg.timestamp_ms
    val.kind = RECORD
    val.of.record = record


def _lift_payload(val: Any) -> bytes:
    inner = val.of.variant.val.contents
    if inner.kind == STRING:
        return _read_vec(inner.of.string)
    size = inner.of.list.size
    if not size:
        return b""
    view = memoryview(
        (ctypes.c_ubyte * (size * VAL_SIZE)).from_address(ctypes.addressof(inner.of.list.data.contents))
    ).cast("B")
    return bytes(view[VALUE_OFFSET::VAL_SIZE])


def lift_message(val: Any) -> Message:
    """Read a ``message`` record out of ``val`` (does not free it)."""
    entries = val.of.record.data
    content_type = entries[2].val.of.option
    properties = entries[3].val.of.list
    pairs = []
    for i in range(properties.size):
        tup = properties.data[i].of.tuple
        pairs.append((_read_vec(tup.data[0].of.string).decode(), _read_vec(tup.data[1].of.string).decode()))
    return Message(
        payload=_lift_payload(entries[0].val),
        topic=_read_vec(entries[1].val.of.string).decode(),
        content_type=_read_vec(content_type.contents.of.string).decode() if content_type else None,
        properties=tuple(pairs),
        timestamp_ms=int(entries[4].val.of.u64),
    )


def lower_configuration(node: str, properties: tuple[tuple[str, str], ...], val: Any) -> None:
    """Write the contract's ``configuration`` record."""
    record = ffi.wasmtime_component_valrecord_t()
    ffi.wasmtime_component_valrecord_new_uninit(byref(record), 2)
    record.data[0].name = _vec(b"node")
    _set_string(record.data[0].val, node.encode())
    record.data[1].name = _vec(b"properties")
    pairs = ffi.wasmtime_component_vallist_t()
    ffi.wasmtime_component_vallist_new_uninit(byref(pairs), len(properties))
    for i, (key, value) in enumerate(properties):
        tup = ffi.wasmtime_component_valtuple_t()
        ffi.wasmtime_component_valtuple_new_uninit(byref(tup), 2)
        _set_string(tup.data[0], key.encode())
        _set_string(tup.data[1], value.encode())
        pairs.data[i].kind = TUPLE
        pairs.data[i].of.tuple = tup
    record.data[1].val.kind = LIST
    record.data[1].val.of.list = pairs
    val.kind = RECORD
    val.of.record = record


class ErrorResult(Exception):  # noqa: N818 - an answer of the operator, not a failure of the instance
    """A bound ``process`` got ``err``: raised with its text, so the ``ok`` path returns the bare value."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class Outcome:
    """A lifted ``result<T, E>`` of ``call`` (the init path): ``ok`` with a value, or the error text."""

    __slots__ = ("error", "ok", "value")

    def __init__(self, ok: bool, value: Message | bool | None, error: str) -> None:
        self.ok = ok
        self.value = value
        self.error = error


def _lift_error(result: Any) -> str:
    """The text of an ``err``: a bare string (lifecycle) or the operator-error record's message."""
    if not result.of.result.val:
        return ""
    err = result.of.result.val.contents
    if err.kind == STRING:
        return _read_vec(err.of.string).decode()
    return _read_vec(err.of.record.data[0].val.of.string).decode()


def params(count: int) -> Any:
    """An array of ``count`` C values to lower the arguments into."""
    return (Val * count)()


def call(store: Any, func: cm.Func, args: Any, expect: str) -> Outcome:
    """Call ``func`` with the lowered ``args`` array and lift its ``result<expect, error>``.

    ``expect`` is ``message``, ``bool`` or ``unit``. The arguments are freed here, whatever happens.
    """
    count = len(args)
    result = Val()
    try:

        def run() -> Any:
            return ffi.wasmtime_component_func_call(byref(func._func), store._context(), args, count, byref(result), 1)

        enter_wasm(run)
    finally:
        for i in range(count):
            ffi.wasmtime_component_val_delete(byref(args[i]))
    try:
        if result.kind != RESULT:
            raise TypeError(f"expected a result from the guest, got value kind {result.kind}")
        if not result.of.result.is_ok:
            return Outcome(False, None, _lift_error(result))
        if expect == "unit":
            return Outcome(True, None, "")
        inner = result.of.result.val.contents
        if expect == "bool":
            return Outcome(True, bool(inner.of.boolean), "")
        return Outcome(True, lift_message(inner), "")
    finally:
        ffi.wasmtime_component_val_delete(byref(result))


# -- binding ``process`` ---------------------------------------------------------------------------------------


class ProcessCall(Protocol):
    """A ``process`` export bound to one instance: ``call(msg)``, or ``call(state, msg)`` for accumulate.

    Returns the message (map, accumulate) or the bool (filter, branch); an ``err`` raises ErrorResult, a trap
    WasmtimeError. ``set_deadline`` sets the store's epoch deadline, in ticks from now, for the calls that follow;
    ``close`` frees what the binding holds outside the store.
    """

    def __call__(self, *inputs: Message) -> Message | bool: ...

    def set_deadline(self, ticks: int) -> None: ...

    def close(self) -> None: ...


def bind_process(store: Store, func: Func, returns_message: bool, *, fast: bool = True) -> ProcessCall:
    """The best available binding of a ``process`` export: ``FastProcess`` unless disabled or unsupported here."""
    if fast and FAST_PATH:
        return FastProcess(store, func, len(func.type(store).params), returns_message)
    return PlainProcess(store, func, returns_message)


def call_init(store: Store, func: Func, node: str, properties: tuple[tuple[str, str], ...]) -> str | None:
    """Call ``lifecycle.init``; the error text of an ``err`` result, None on ``ok``."""
    if FAST_PATH:
        args = params(1)
        lower_configuration(node, properties, args[0])
        outcome = call(store, func, args, "unit")
        return None if outcome.ok else outcome.error
    # result<_, string> has distinguishable cases, so wasmtime-py lifts it untagged: None or the error string.
    result = func(store, _record({"node": node, "properties": [tuple(p) for p in properties]}))
    return None if result is None else str(result)


# -- the plain path: wasmtime-py's public API --------------------------------------------------------------------


def payload_value(payload: bytes) -> str | bytes:
    """The ``payload`` variant case for these bytes: ``text`` (a str) when valid UTF-8, else ``binary``."""
    if payload.isascii():
        return payload.decode("ascii")
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload


def _record(fields: dict[str, Any]) -> Record:
    """A ``Record`` with these fields (WIT field names keep their dashes)."""
    record = Record()
    for name, value in fields.items():
        setattr(record, name, value)
    return record


def to_record(msg: Message) -> Record:
    """A ``message`` as wasmtime-py's generic ``Record``."""
    return _record(
        {
            "payload": payload_value(msg.payload),
            "topic": msg.topic,
            "content-type": msg.content_type,
            "properties": [tuple(p) for p in msg.properties],
            "timestamp-ms": msg.timestamp_ms,
        }
    )


def from_record(record: Any) -> Message:
    """The host ``Message`` for a lifted ``message`` record."""
    payload = record.payload
    return Message(
        payload=payload.encode("utf-8") if isinstance(payload, str) else bytes(payload),
        topic=record.topic,
        content_type=getattr(record, "content-type"),
        properties=tuple((str(k), str(v)) for k, v in record.properties),
        timestamp_ms=int(getattr(record, "timestamp-ms")),
    )


class PlainProcess:
    """``process`` through wasmtime-py's public API.

    wasmtime-py lifts ``result<message, operator-error>`` as a tagged ``Variant`` (both cases are records) and
    ``result<bool, operator-error>`` untagged (the bool, or the error record).
    """

    def __init__(self, store: Store, func: Func, returns_message: bool) -> None:
        self._store = store
        self._func = func
        self._returns_message = returns_message

    def __call__(self, *inputs: Message) -> Message | bool:
        for msg in inputs:
            check_binary(msg.payload)
        value = self._func(self._store, *(to_record(m) for m in inputs))
        tag = getattr(value, "tag", None)
        if tag == "err" or (tag is None and isinstance(value, Record)):
            error = value.payload if tag == "err" else value
            raise ErrorResult(str(getattr(error, "message", "")))
        if tag == "ok":
            value = value.payload
        return from_record(value) if self._returns_message else bool(value)

    def set_deadline(self, ticks: int) -> None:
        self._store.set_epoch_deadline(ticks)

    def close(self) -> None:
        return


# -- the fast path -----------------------------------------------------------------------------------------------
#
# Layouts of the wasmtime C API (include/wasmtime/component/val.h) as wasmtime-py's ctypes bindings lay them out on
# a 64-bit little-endian machine; fast_path_problems() verifies every number used here.
#
#   wasmtime_component_val_t      32 bytes: kind u8 @0, union @8 (24 bytes)
#     string (wasm_name_t)        size @8, data @16
#     list / tuple / record       size @8, data @16
#     variant                     discriminant {size @8, data @16}, val* @24
#     option                      val* @8 (NULL: none)
#     result                      is_ok bool @8, val* @16
#     u64 / bool                  @8
#   wasmtime_component_valrecord_entry_t  48 bytes: name {size @0, data @8}, val @16

ENTRY_SIZE = 48
K_BOOL, K_U8, K_U64, K_STRING, K_LIST, K_RECORD, K_TUPLE, K_VARIANT, K_OPTION, K_RESULT = (
    0,
    2,
    8,
    12,
    13,
    14,
    15,
    16,
    18,
    19,
)

#: The five entries of one ``message`` record plus the payload and content-type values they point at (304 bytes).
_MESSAGE = struct.Struct(
    "="
    "QQB7xQQQ"  # payload: name, VARIANT, discriminant name, val* -> payload value
    "QQB7xQQ8x"  # topic: name, STRING size, data
    "QQB7xQ16x"  # content-type: name, OPTION val* (0 = none) -> content-type value
    "QQB7xQQ8x"  # properties: name, LIST size, data -> tuples
    "QQB7xQ16x"  # timestamp-ms: name, U64
    "B7xQQ8x"  # the payload value: STRING or LIST, size, data
    "B7xQQ8x"  # the content-type value: STRING, size, data
)
_PAYLOAD_VALUE = ENTRY_SIZE * 5
_CONTENT_TYPE_VALUE = _PAYLOAD_VALUE + 32
_VALUE = struct.Struct("=B7xQQQ")  # any value: kind, then the three words of the union
_ENTRY = struct.Struct("=QQB7xQQQ")  # a record entry: name size, name data, kind, the three words of the union
_PAIR = struct.Struct("=B7xQQ8xB7xQQ8x")  # two STRING values
#: What the host reads of a returned ``message`` record's five entries (names skipped: checked once per binding).
_MESSAGE_OUT = struct.Struct(
    "="
    "16xB7xQQQ"  # payload: VARIANT, discriminant size, data, val*
    "16xB7xQQ8x"  # topic: STRING size, data
    "16xB7xQ16x"  # content-type: OPTION val*
    "16xB7xQQ8x"  # properties: LIST size, data
    "16xB7xQ16x"  # timestamp-ms: U64
)

_string_at = ctypes.string_at
#: The whole address space as one byte view: results are read with ``struct.unpack_from(_MEM, address)`` and
#: slices, three times cheaper than a ``ctypes.string_at`` per field. Only addresses the C API just handed us
#: are ever read through it.
_MEM = memoryview((ctypes.c_char * sys.maxsize).from_address(0)).cast("B")
_BYTES_DATA = bytes.__basicsize__ - 1  # CPython: offset of ob_sval in a bytes object; verified at import


def _address_by_id(data: bytes) -> int:
    """Address of a bytes object's contents in CPython, without a ctypes call (~20x cheaper than ``cast``)."""
    return id(data) + _BYTES_DATA


def _bytes_layout_ok() -> bool:
    probe = b"wasmflow probe \\xff"
    address = _address_by_id(probe)
    return (
        sys.implementation.name == "cpython"
        and _string_at(address, len(probe)) == probe
        and _MEM[address : address + len(probe)].tobytes() == probe
    )


#: Only the fast path takes addresses of bytes, and it requires CPython's layout (fast_path_problems checks it).
_address: Callable[[bytes], int] = _address_by_id

# Constant names the C API reads by pointer; module constants, so they live as long as the process.
_N_PAYLOAD, _N_TOPIC, _N_CONTENT_TYPE, _N_PROPERTIES, _N_TIMESTAMP = MESSAGE_FIELDS
_N_TEXT, _N_BINARY = b"text", b"binary"
_BOOL_KIND = bytes([K_BOOL])
#: (size, address) of each constant name, as the record entries and the variant discriminant point at them.
_NP, _NT, _NC, _NR, _NS = ((len(name), _address(name)) for name in MESSAGE_FIELDS)
_TEXT, _BINARY = (len(_N_TEXT), _address(_N_TEXT)), (len(_N_BINARY), _address(_N_BINARY))


class FastProcess:
    """``process`` bound to one instance, its argument tree laid out once in memory the C API borrows."""

    def __init__(self, store: Store, func: Func, nargs: int, returns_message: bool) -> None:
        self._store = store  # keeps the context pointer below valid
        self._returns_message = returns_message
        self._blocks = [ctypes.create_string_buffer(_MESSAGE.size) for _ in range(nargs)]
        self._params = ctypes.create_string_buffer(VAL_SIZE * nargs)
        for i, block in enumerate(self._blocks):
            _VALUE.pack_into(self._params, VAL_SIZE * i, K_RECORD, 5, ctypes.addressof(block), 0)
        self._result = ctypes.create_string_buffer(VAL_SIZE)
        self._result_address = ctypes.addressof(self._result)
        self._context = _pointer_value(store._context())
        self._call_args = (
            _pointer_value(byref(func._func)),
            self._context,
            ctypes.addressof(self._params),
            nargs,
            self._result_address,
            1,
        )
        self._func = func  # owns the handle the first argument points at
        self._scratch: list[Any] = [None] * nargs  # per-argument list<u8> value arrays, reused
        self._props: list[tuple[tuple[tuple[str, str], ...], Any, list[bytes]] | None] = [None] * nargs
        self._names_checked = False

    def __call__(self, *inputs: Message) -> Message | bool:
        if len(inputs) == 1:
            keep: object = self._lower(0, inputs[0])
        else:
            keep = [self._lower(i, msg) for i, msg in enumerate(inputs)]
        # The C API assigns the new result over the previous one, which drops (frees) it: no delete per call.
        error = _func_call(*self._call_args)
        del keep  # with it a large payload's own value array (see _u8_array)
        if error:
            exc = WasmtimeError._from_ptr(ctypes.cast(error, ctypes.POINTER(ffi.wasmtime_error_t)))
            maybe_raise_last_exn()  # a Python exception in a host function wins, as in wasmtime-py's enter_wasm
            raise exc
        return self._lift_result()

    def set_deadline(self, ticks: int) -> None:
        _set_epoch_deadline(self._context, ticks)

    def close(self) -> None:
        """Free the last result (the next call would have); idempotent."""
        _val_delete(self._result_address)
        self._result[0] = _BOOL_KIND

    # -- lowering ----------------------------------------------------------------------------------------------

    def _lower(self, i: int, msg: Message) -> tuple[object, ...]:
        """Write ``msg`` into argument ``i``; returns what must stay alive until the call returns. Addresses of
        bytes are taken inline (``_address_by_id``: the fast path requires CPython's layout)."""
        block = self._blocks[i]
        base = ctypes.addressof(block)
        payload, topic, content_type, properties, timestamp = msg
        array: Any = None
        if payload.isascii() or _is_utf8(payload):
            disc, payload_kind, payload_data = _TEXT, K_STRING, id(payload) + _BYTES_DATA
        else:
            array = self._u8_array(i, payload)
            disc, payload_kind, payload_data = _BINARY, K_LIST, ctypes.addressof(array)
        topic_bytes = topic.encode()
        content_bytes = b"" if content_type is None else content_type.encode()
        props_size, props_data = self._properties(i, properties)
        _MESSAGE.pack_into(
            block, 0,
            *_NP, K_VARIANT, *disc, base + _PAYLOAD_VALUE,
            *_NT, K_STRING, len(topic_bytes), id(topic_bytes) + _BYTES_DATA,
            *_NC, K_OPTION, 0 if content_type is None else base + _CONTENT_TYPE_VALUE,
            *_NR, K_LIST, props_size, props_data,
            *_NS, K_U64, timestamp,
            payload_kind, len(payload), payload_data,
            K_STRING, len(content_bytes), id(content_bytes) + _BYTES_DATA,
        )  # fmt: skip
        return payload, topic_bytes, content_bytes, array

    def _u8_array(self, i: int, payload: bytes) -> Any:
        """A list<u8> as the C API wants it (one 32-byte value per byte), written with one strided copy.

        Up to ``SCRATCH_BYTES`` the argument's reusable array; beyond, an array of its own that the caller drops
        when the call returns (32 bytes per payload byte must not stay with the node). Over ``MAX_BINARY_BYTES``,
        PayloadTooLarge before anything is built.
        """
        n = len(payload)
        if n > SCRATCH_BYTES:
            if n > MAX_BINARY_BYTES:
                raise PayloadTooLarge(n)
            array = ctypes.create_string_buffer(n * VAL_SIZE)
            view = memoryview(array).cast("B")
            view[0 : n * VAL_SIZE : VAL_SIZE] = bytes([K_U8]) * n
            view[VALUE_OFFSET : VALUE_OFFSET + n * VAL_SIZE : VAL_SIZE] = payload
            view.release()
            return array
        scratch = self._scratch[i]
        if scratch is None or len(scratch) < n * VAL_SIZE:
            capacity = max(n, 256)
            scratch = ctypes.create_string_buffer(capacity * VAL_SIZE)
            memoryview(scratch).cast("B")[0 : capacity * VAL_SIZE : VAL_SIZE] = bytes([K_U8]) * capacity
            self._scratch[i] = scratch
        memoryview(scratch).cast("B")[VALUE_OFFSET : VALUE_OFFSET + n * VAL_SIZE : VAL_SIZE] = payload
        return scratch

    def _properties(self, i: int, properties: tuple[tuple[str, str], ...]) -> tuple[int, int]:
        """The list<tuple<string, string>>; reused while a source keeps sending the same properties."""
        if not properties:
            return 0, 0
        cached = self._props[i]
        if cached is not None and cached[0] == properties:
            return len(properties), ctypes.addressof(cached[1])
        k = len(properties)
        buffer = ctypes.create_string_buffer(3 * k * VAL_SIZE)
        base = ctypes.addressof(buffer)
        keep: list[bytes] = []
        for j, (key, value) in enumerate(properties):
            kb, vb = key.encode(), value.encode()
            keep += (kb, vb)
            pair = (k + 2 * j) * VAL_SIZE
            _VALUE.pack_into(buffer, j * VAL_SIZE, K_TUPLE, 2, base + pair, 0)
            _PAIR.pack_into(buffer, pair, K_STRING, len(kb), _address(kb), K_STRING, len(vb), _address(vb))
        self._props[i] = (properties, buffer, keep)
        return k, base

    # -- lifting -----------------------------------------------------------------------------------------------

    def _lift_result(self) -> Message | bool:
        kind, is_ok, value, _ = _VALUE.unpack_from(_MEM, self._result_address)
        if kind != K_RESULT:
            raise TypeError(f"process returned a value of kind {kind}, expected a result")
        if not is_ok & 0xFF:
            raise ErrorResult(_lift_operator_error(value))
        if not self._returns_message:
            return bool(_MEM[value + VALUE_OFFSET])
        kind, size, data, _ = _VALUE.unpack_from(_MEM, value)
        if kind != K_RECORD or size != 5:
            raise TypeError(f"process returned kind {kind} with {size} fields, expected the message record")
        if not self._names_checked:
            _check_names(data)
            self._names_checked = True
        (
            payload_kind, _, _, payload_value,
            _, topic_size, topic_data,
            _, content_type_value,
            _, props_size, props_data,
            _, timestamp,
        ) = _MESSAGE_OUT.unpack_from(_MEM, data)  # fmt: skip
        payload_kind, payload_size, payload_data, _ = _VALUE.unpack_from(_MEM, payload_value)
        if payload_kind == K_STRING:
            payload = _MEM[payload_data : payload_data + payload_size].tobytes()
        else:  # binary: one 32-byte value per byte, the byte at offset 8
            start = payload_data + VALUE_OFFSET
            payload = _MEM[start : start + payload_size * VAL_SIZE : VAL_SIZE].tobytes()
        content_type = None
        if content_type_value:
            _, ct_size, ct_data, _ = _VALUE.unpack_from(_MEM, content_type_value)
            content_type = _MEM[ct_data : ct_data + ct_size].tobytes().decode()
        properties: tuple[tuple[str, str], ...] = ()
        if props_size:
            pairs = []
            for j in range(props_size):
                _, ks, kd, _, vs, vd = _PAIR.unpack_from(_MEM, _VALUE.unpack_from(_MEM, props_data + j * VAL_SIZE)[2])
                pairs.append((_MEM[kd : kd + ks].tobytes().decode(), _MEM[vd : vd + vs].tobytes().decode()))
            properties = tuple(pairs)
        topic = _MEM[topic_data : topic_data + topic_size].tobytes().decode()
        if payload_size > SCRATCH_BYTES:  # a large result (32 bytes per byte if binary) is not kept until next call
            self.close()
        return Message(payload, topic, content_type, properties, timestamp)


def _lift_operator_error(address: int) -> str:
    """The text of an ``operator-error`` record (its one field, ``message``)."""
    if not address:
        return ""
    kind, size, data, _ = _VALUE.unpack_from(_MEM, address)
    if kind != K_RECORD or size < 1:
        return ""
    _, _, field_kind, text_size, text_data, _ = _ENTRY.unpack_from(_MEM, data)
    return str(_MEM[text_data : text_data + text_size], "utf-8", "replace") if field_kind == K_STRING else ""


def _check_names(entries: int) -> None:
    """Once per binding: the record's fields arrive in the contract's order (they are read by position)."""
    for j, name in enumerate(MESSAGE_FIELDS):
        size, data = _ENTRY.unpack_from(_MEM, entries + j * ENTRY_SIZE)[:2]
        found = _MEM[data : data + size].tobytes()
        if found != name:
            raise TypeError(f"message field {j} is {found!r}, expected {name!r}")


def _offset(structure: Any, field: str) -> int:
    return int(getattr(structure, field).offset)


def fast_path_problems() -> list[str]:
    """Every assumption of the fast paths that does not hold with the installed wasmtime-py (empty: all hold)."""
    problems: list[str] = []
    expect: dict[str, tuple[object, object]] = {
        "sizeof(void*)": (ctypes.sizeof(ctypes.c_void_p), 8),
        "byte order": (sys.byteorder, "little"),
        "sizeof(wasmtime_component_val_t)": (VAL_SIZE, 32),
        "offsetof(wasmtime_component_val_t, of)": (VALUE_OFFSET, 8),
        "sizeof(wasmtime_component_valrecord_entry_t)": (ctypes.sizeof(ffi.wasmtime_component_valrecord_entry), 48),
        "offsetof(wasmtime_component_valrecord_entry_t, val)": (
            _offset(ffi.wasmtime_component_valrecord_entry, "val"),
            16,
        ),
        "offsetof(wasmtime_component_valvariant_t, val)": (_offset(ffi.wasmtime_component_valvariant_t, "val"), 16),
        "offsetof(wasmtime_component_valresult_t, val)": (_offset(ffi.wasmtime_component_valresult_t, "val"), 8),
        "sizeof(wasm_name_t)": (ctypes.sizeof(ffi.wasm_name_t), 16),
        "offsetof(wasm_name_t, data)": (_offset(ffi.wasm_name_t, "data"), 8),
        "offsetof(wasmtime_component_vallist_t, data)": (_offset(ffi.wasmtime_component_vallist_t, "data"), 8),
    }
    kinds = {
        "BOOL": K_BOOL, "U8": K_U8, "U64": K_U64, "STRING": K_STRING, "LIST": K_LIST, "RECORD": K_RECORD,
        "TUPLE": K_TUPLE, "VARIANT": K_VARIANT, "OPTION": K_OPTION, "RESULT": K_RESULT,
    }  # fmt: skip
    for name, value in kinds.items():
        constant = getattr(ffi, f"WASMTIME_COMPONENT_{name}", None)
        expect[f"WASMTIME_COMPONENT_{name}"] = (getattr(constant, "value", None), value)
    problems += [
        f"{what} is {actual!r}, expected {wanted!r}" for what, (actual, wanted) in expect.items() if actual != wanted
    ]
    for attribute in (
        "_wasmtime_component_func_call",
        "_wasmtime_component_val_delete",
        "_wasmtime_context_set_epoch_deadline",
    ):
        if not hasattr(_bindings, attribute):
            problems.append(f"wasmtime._bindings has no {attribute}")
    if not isinstance(getattr(ffi, "dll", None), ctypes.CDLL):
        problems.append("wasmtime._ffi no longer exposes its library as dll")
    if "_func" not in getattr(Func, "__annotations__", {}):
        problems.append("wasmtime.component.Func no longer keeps its handle in _func")
    if not callable(getattr(Store, "_context", None)):
        problems.append("wasmtime.Store has no _context()")
    if not _bytes_layout_ok():
        problems.append("this Python does not lay bytes out as CPython does (id + header size)")
    return problems


def wasi_inherit_network(config: WasiConfig) -> None:
    """Grant TCP/UDP and name lookup: the C API has it, wasmtime-py's ``WasiConfig`` does not wrap it (yet)."""
    ffi.wasi_config_inherit_network(config.ptr())
    ffi.wasi_config_allow_ip_name_lookup(config.ptr(), True)


#: Why the fast paths are off, if they are (the host logs it once).
FAST_PATH_PROBLEMS = fast_path_problems()
FAST_PATH = not FAST_PATH_PROBLEMS


def _pointer_value(pointer: Any) -> int:
    """The address a ctypes pointer (or ``byref``) holds."""
    return int(ctypes.cast(pointer, ctypes.c_void_p).value or 0)


def _raw(name: str, restype: Any, *argtypes: Any) -> Any:
    """A C function of wasmtime's library taking addresses as plain integers: a fresh function object (wasmtime-py's
    own keep their typed signatures), so a call converts no pointer objects (three such calls per message)."""
    library = getattr(ffi, "dll", None)
    if library is None or not FAST_PATH:
        return None
    return ctypes.CFUNCTYPE(restype, *argtypes)((name, library))


_P = ctypes.c_void_p
_func_call: Any = _raw("wasmtime_component_func_call", _P, _P, _P, _P, ctypes.c_size_t, _P, ctypes.c_size_t)
_val_delete: Any = _raw("wasmtime_component_val_delete", None, _P)
_set_epoch_deadline: Any = _raw("wasmtime_context_set_epoch_deadline", None, _P, ctypes.c_uint64)
