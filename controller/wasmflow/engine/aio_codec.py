"""Lowering and lifting AIO's ``data-model``, ``hybrid-logical-clock`` and ``module-configuration`` values.

AIO passes payloads and topics as host ``buffer`` resources: the bytes stay in the host and the operator copies
them in with ``buffer.read`` only if it needs them (a filter on the topic never pays for the payload). The host
keeps those bytes in a per-instance ``BufferTable``; a handle the guest drops (or hands back) frees its entry.
Operators may answer with buffers they were given or with their own ``bytes``/``string`` values: both are read.

Values go through wasmtime-py's generic conversion (``Record``, ``Variant``, ``ResourceHost``). Its variants are
untagged when the cases' Python classes differ (``buffer-or-bytes`` is a ``ResourceHost`` or ``bytes``) and tagged
``Variant(tag, payload)`` otherwise (``data-model``: message and snapshot are both records); the lifting code
accepts both shapes, so it does not depend on that rule.
"""

from __future__ import annotations

import ctypes
import itertools
from typing import Any

from wasmtime import Store
from wasmtime import _ffi as ffi
from wasmtime.component import Func, Record, ResourceAny, ResourceHost, ResourceType, Variant
from wasmtime.component._enter import enter_wasm

from wasmflow.engine.aio_model import AioMessage, DataModel, Hlc, InlineSchema, Schema, Snapshot

#: The host resource type id of ``buffer`` (any number; wasmtime keys host resources by it).
BUFFER_TYPE_ID = 0xA10B
BUFFER_TYPE = ResourceType.host(BUFFER_TYPE_ID)


class BufferTable:
    """The bytes behind the ``buffer`` handles one instance holds."""

    def __init__(self) -> None:
        self._data: dict[int, bytes] = {}
        self._next = itertools.count(1)

    def add(self, data: bytes) -> ResourceHost:
        rep = next(self._next) & 0xFFFFFFFF or next(self._next)
        self._data[rep] = data
        return ResourceHost.own(rep, BUFFER_TYPE_ID)

    def read(self, rep: int) -> bytes:
        return self._data.get(rep, b"")

    def drop(self, rep: int) -> None:
        self._data.pop(rep, None)

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()


def record(**fields: Any) -> Record:
    """A ``Record``; keyword names use ``_`` where WIT uses ``-``."""
    value = Record()
    for name, field in fields.items():
        setattr(value, name.replace("_", "-"), field)
    return value


def _field(value: Any, name: str) -> Any:
    return getattr(value, name)


# -- lowering (host -> guest) ------------------------------------------------------------------------------------


def lower_hlc(hlc: Hlc) -> Record:
    return record(timestamp=record(secs=hlc.secs, nanos=hlc.nanos), counter=hlc.counter, node_id=hlc.node_id)


def _lower_timestamp(hlc: Hlc) -> Record:
    return record(timestamp=record(secs=hlc.secs, nanos=hlc.nanos), counter=hlc.counter, node_id=hlc.node_id)


def _lower_schema(schema: Schema | None) -> Any:
    if schema is None:
        return None
    if isinstance(schema, InlineSchema):
        return record(name=schema.name, content=schema.content)
    return schema


def lower_data_model(data: DataModel, buffers: BufferTable) -> Variant:
    """``data`` as the guest's ``data-model``: payload, topic and frames as host buffers, strings inline."""
    if isinstance(data, AioMessage):
        return Variant(
            "message",
            record(
                timestamp=_lower_timestamp(data.timestamp),
                topic=buffers.add(data.topic),
                content_type=data.content_type,
                payload=buffers.add(data.payload),
                properties=record(user_properties=list(data.properties)),
                schema=_lower_schema(data.schema),
            ),
        )
    if isinstance(data, Snapshot):
        return Variant(
            "snapshot",
            record(
                timestamp=_lower_timestamp(data.timestamp),
                format=data.format,
                width=data.width,
                height=data.height,
                frame=buffers.add(data.frame),
            ),
        )
    return Variant("buffer-or-bytes", buffers.add(data))


def lower_configuration(properties: tuple[tuple[str, str], ...]) -> Record:
    return record(properties=[tuple(p) for p in properties], module_schemas=[])


# -- lifting (guest -> host) -------------------------------------------------------------------------------------


class Lifter:
    """Reads guest values of one instance; buffers handed back are read from ``buffers`` and released."""

    def __init__(self, store: Store, buffers: BufferTable) -> None:
        self.store = store
        self.buffers = buffers

    def _untag(self, value: Any) -> Any:
        return value.payload if isinstance(value, Variant) else value

    def _resource(self, handle: ResourceAny | ResourceHost) -> bytes:
        owned = handle.owned
        host = handle.to_host(self.store) if isinstance(handle, ResourceAny) else handle
        data = self.buffers.read(host.rep)
        if owned:
            self.buffers.drop(host.rep)  # the guest handed it back (taking it out of its table): free it now
        return data

    def bytes_of(self, value: Any) -> bytes:
        """A ``buffer-or-bytes`` (or ``buffer-or-string``) as bytes."""
        value = self._untag(value)
        if isinstance(value, ResourceAny | ResourceHost):
            return self._resource(value)
        if isinstance(value, str):
            return value.encode()
        return bytes(value)

    def text_of(self, value: Any) -> str:
        return self.bytes_of(value).decode("utf-8", "replace")

    def hlc(self, value: Any) -> Hlc:
        """A ``hybrid-logical-clock`` or a ``timestamp`` record (whose node id may be a buffer)."""
        wall = _field(value, "timestamp")
        node = _field(value, "node-id")
        return Hlc(
            int(_field(wall, "secs")),
            int(_field(wall, "nanos")),
            int(_field(value, "counter")),
            node if isinstance(node, str) else self.text_of(node),
        )

    def _schema(self, value: Any) -> Schema | None:
        if value is None:
            return None
        value = self._untag(value)
        if isinstance(value, Record):
            return InlineSchema(self.text_of(_field(value, "name")), self.text_of(_field(value, "content")))
        return self.text_of(value)

    def data_model(self, value: Any) -> DataModel:
        tag = value.tag if isinstance(value, Variant) else None
        inner = self._untag(value)
        if tag == "message" or (tag is None and isinstance(inner, Record) and hasattr(inner, "payload")):
            content_type = _field(inner, "content-type")
            pairs = _field(_field(inner, "properties"), "user-properties")
            return AioMessage(
                payload=self.bytes_of(_field(inner, "payload")),
                topic=self.bytes_of(_field(inner, "topic")),
                timestamp=self.hlc(_field(inner, "timestamp")),
                content_type=None if content_type is None else self.text_of(content_type),
                properties=tuple((self.text_of(k), self.text_of(v)) for k, v in pairs),
                schema=self._schema(_field(inner, "schema")),
            )
        if tag == "snapshot" or (tag is None and isinstance(inner, Record)):
            return Snapshot(
                timestamp=self.hlc(_field(inner, "timestamp")),
                format=self.text_of(_field(inner, "format")),
                width=int(_field(inner, "width")),
                height=int(_field(inner, "height")),
                frame=self.bytes_of(_field(inner, "frame")),
            )
        return self.bytes_of(inner)


def split_result(value: Any, tagged: bool) -> tuple[bool, Any]:
    """(ok, payload) of a lifted ``result<T, error>``; untagged results are told apart by the error record."""
    if tagged:
        return value.tag == "ok", value.payload
    if isinstance(value, Record) and hasattr(value, "message") and len(vars(value)) == 1:
        return False, value
    return True, value


def error_text(error: Any) -> str:
    return str(getattr(error, "message", error))


# -- calling ``process`` without wasmtime-py's per-call type walk --------------------------------------------------
#
# ``Func.__call__`` rebuilds the function's type objects on every call and lifts a list<u8> one Python object per
# byte. ``BoundProcess`` keeps the parameter types of one bound function (lowering through them as wasmtime-py
# does), and lifts the result by walking the C value itself: the value carries its kind, record field names and
# variant case names, so no type information is needed, and a list<u8> is read with one strided copy (the layout
# the message codec verifies at import, ``codec.FAST_PATH``). Variants always come back tagged, as ``Variant``.

_K = {name: getattr(ffi, f"WASMTIME_COMPONENT_{name}").value for name in (
    "BOOL", "S8", "U8", "S16", "U16", "S32", "U32", "S64", "U64", "F32", "F64", "CHAR", "STRING", "LIST", "RECORD",
    "TUPLE", "VARIANT", "ENUM", "OPTION", "RESULT", "FLAGS", "RESOURCE",
)}  # fmt: skip
_NUMBERS = {_K[n]: n.lower() for n in ("S8", "U8", "S16", "U16", "S32", "U32", "S64", "U64", "F32", "F64")}
_VAL_SIZE = ctypes.sizeof(ffi.wasmtime_component_val_t)
_VALUE_OFFSET = ffi.wasmtime_component_val_t.of.offset


def _name(vec: Any) -> str:
    return ctypes.string_at(vec.data, vec.size).decode("utf-8") if vec.size else ""


def lift_c(val: Any) -> Any:
    """A C component value as Python: ``Record``, tagged ``Variant`` (results too), bytes for list<u8>, resources
    as owned ``ResourceAny`` (taken out of ``val``, so deleting ``val`` afterwards does not drop them)."""
    kind = val.kind
    if kind in _NUMBERS:
        return getattr(val.of, _NUMBERS[kind])
    if kind == _K["BOOL"]:
        return bool(val.of.boolean)
    if kind == _K["STRING"]:
        return _name(val.of.string)
    if kind == _K["CHAR"]:
        return chr(val.of.character)
    if kind == _K["ENUM"]:
        return _name(val.of.enumeration)
    if kind == _K["LIST"]:
        size = val.of.list.size
        if not size:
            return []  # an empty list<u8> too: the element kind is unknown, and [] reads as empty bytes
        first = val.of.list.data[0]
        if first.kind == _K["U8"]:
            base = ctypes.addressof(val.of.list.data.contents)
            view = memoryview((ctypes.c_ubyte * (size * _VAL_SIZE)).from_address(base)).cast("B")
            return bytes(view[_VALUE_OFFSET::_VAL_SIZE])
        return [lift_c(val.of.list.data[i]) for i in range(size)]
    if kind == _K["RECORD"]:
        value = Record()
        for i in range(val.of.record.size):
            entry = val.of.record.data[i]
            setattr(value, _name(entry.name), lift_c(entry.val))
        return value
    if kind == _K["TUPLE"]:
        return tuple(lift_c(val.of.tuple.data[i]) for i in range(val.of.tuple.size))
    if kind == _K["VARIANT"]:
        inner = val.of.variant.val
        return Variant(_name(val.of.variant.discriminant), lift_c(inner.contents) if inner else None)
    if kind == _K["OPTION"]:
        return lift_c(val.of.option.contents) if val.of.option else None
    if kind == _K["RESULT"]:
        inner = val.of.result.val
        return Variant("ok" if val.of.result.is_ok else "err", lift_c(inner.contents) if inner else None)
    if kind == _K["RESOURCE"]:
        return ResourceAny._from_ptr(ffi.take_pointer(val.of, "resource"))
    raise TypeError(f"cannot lift a component value of kind {kind}")


class BoundProcess:
    """``process`` of one instance: arguments lowered through types read once, the result lifted by ``lift_c``."""

    def __init__(self, store: Store, func: Func) -> None:
        self._store = store
        self._func = func
        self._type = func.type(store)  # keeps the parameter types below alive
        self._params = [ty for _name, ty in self._type.params]

    def __call__(self, *args: Any) -> Any:
        store = self._store
        count = len(args)
        values = (ffi.wasmtime_component_val_t * count)()
        result = ffi.wasmtime_component_val_t()
        lowered = 0
        try:
            for ty, arg in zip(self._params, args, strict=True):
                ty.convert_to_c(store, arg, ctypes.pointer(values[lowered]))
                lowered += 1

            def run() -> Any:
                return ffi.wasmtime_component_func_call(
                    ctypes.byref(self._func._func), store._context(), values, count, ctypes.byref(result), 1
                )

            enter_wasm(run)
        finally:
            for i in range(lowered):
                ffi.wasmtime_component_val_delete(ctypes.byref(values[i]))
        try:
            return lift_c(result)
        finally:
            ffi.wasmtime_component_val_delete(ctypes.byref(result))
