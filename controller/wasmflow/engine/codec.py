"""Lowering and lifting the contract's ``message`` record: the hot path of the data plane.

Why not wasmtime-py's generic ``Func.__call__``: it rebuilds the function's type objects on every call (the record
field list, the variant cases...) and converts ``list<u8>`` one Python object per byte (DESIGN.md section 6). For
our one record type we know the layout, so this module writes the C API's value tree itself. Two paths:

``FastProcess`` (the default for ``process``)
    The argument tree is laid out once per bound function in ctypes memory that the C API only *borrows*
    (``wasmtime_component_func_call`` reads ``args`` through ``Val::from(&c_val)`` and never frees them), so a call
    only patches pointers and lengths with one ``struct.pack_into``; strings are passed by pointer into the Python
    ``bytes`` (no copy on our side); a ``list<u8>`` is written into a reusable array of 32-byte
    ``wasmtime_component_val_t`` with one strided copy; the result tree, which the C API allocates, is read with
    slices of one memory view, and left in place: the next call assigns its result over it, which frees it. The
    three C functions of a call are called through integer-address prototypes (no pointer objects to convert), and
    the epoch deadline is set only when it changes (see ``engine/node.py``).
``PlainProcess``
    wasmtime-py's public API with ``Record`` objects: the fallback when the internals the fast path needs do not
    hold (``ffi.FAST_PATH``); ``lifecycle.init`` always goes this way (once per instance, speed does not matter).

Everything private of wasmtime-py (the raw calls, addresses, the C layouts' numbers and their check) is in
``engine/ffi.py``; this module only packs and unpacks the message record at the addresses ffi hands it. The payload
rule lives here: valid UTF-8 travels as ``text`` (one copy), the rest as ``binary``.

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
from typing import Any, Protocol

from wasmtime import Store
from wasmtime.component import Func, Record

from wasmflow.engine import ffi
from wasmflow.engine.ffi import (
    ENTRY_SIZE,
    K_BOOL,
    K_LIST,
    K_OPTION,
    K_RECORD,
    K_RESULT,
    K_STRING,
    K_TUPLE,
    K_U8,
    K_U64,
    K_VARIANT,
    VAL_SIZE,
    VALUE_OFFSET,
)
from wasmflow.engine.message import Message

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


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class ErrorResult(Exception):  # noqa: N818 - an answer of the operator, not a failure of the instance
    """A bound ``process`` got ``err``: raised with its text, so the ``ok`` path returns the bare value."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


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
    if fast and ffi.FAST_PATH:
        return FastProcess(store, func, len(func.type(store).params), returns_message)
    return PlainProcess(store, func, returns_message)


def call_init(store: Store, func: Func, node: str, properties: tuple[tuple[str, str], ...]) -> str | None:
    """Call ``lifecycle.init``; the error text of an ``err`` result, None on ``ok``.

    ``result<_, string>`` has distinguishable cases, so wasmtime-py lifts it untagged: None or the error string.
    """
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
# The record is packed with ``struct`` at addresses, in the C layouts ffi.py documents and verifies.

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

#: The raw calls and the address-space view, as module globals (one lookup per use on the hot path).
_MEM = ffi.MEM
_BYTES_DATA = ffi.BYTES_DATA
_address = ffi.bytes_address
_func_call = ffi.func_call
_val_delete = ffi.val_delete
_set_epoch_deadline = ffi.set_epoch_deadline

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
        self._context = ffi.context_address(store)
        self._call_args = (
            ffi.func_address(func),
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
            ffi.raise_call_error(error)
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
        bytes are taken inline (``id + _BYTES_DATA``: the fast path requires CPython's layout)."""
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
