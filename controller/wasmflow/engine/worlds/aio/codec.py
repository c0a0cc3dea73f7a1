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

import itertools
from typing import Any

from wasmtime import Store
from wasmtime.component import Record, ResourceAny, ResourceHost, ResourceType, Variant

from wasmflow.engine.worlds.aio.model import AioMessage, DataModel, Hlc, InlineSchema, Schema, Snapshot

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


def split_result(value: Any) -> tuple[bool, Any]:
    """(ok, payload) of a lifted ``result<T, error>``, tagged or not.

    ``ffi.GenericCall`` lifts every result as ``Variant("ok"|"err", ...)``; wasmtime-py's own ``Func.__call__`` does
    so only when the two cases' Python classes overlap, and otherwise hands back the bare value or the error record.
    No AIO value is a variant with an ``ok``/``err`` case or a record with ``message`` as its only field, so the
    shapes tell the cases apart without asking wasmtime-py which rule it applied.
    """
    if isinstance(value, Variant) and value.tag in ("ok", "err"):
        return value.tag == "ok", value.payload
    if isinstance(value, Record) and hasattr(value, "message") and len(vars(value)) == 1:
        return False, value
    return True, value


def error_text(error: Any) -> str:
    return str(getattr(error, "message", error))
