"""The structure of a component binary: its nested components, core modules, linear memories, custom sections.

A composed component (DESIGN.md 2b) nests the components it was made of, each with core modules of its own, and
each core module may define a linear memory. The engine needs the number of memories an instance will create, to
split ``limits.memory`` between them (``wasmflow.engine.sandbox.StoreLimits.split``); ``wasmflow inspect`` shows
the parts, and the composition record ``wasmflow compose`` writes (``COMPOSITION_SECTION``).

This reads only the section framing of the binary format (ids and sizes, plus the count of a core module's memory
section), which has been stable since the component model's first binary version; wasmtime validates the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from wasmflow.errors import ContractError

#: The custom section ``wasmflow compose`` appends to its output: which parts went in (JSON, ``Composition``).
COMPOSITION_SECTION = "wasmflow:composition"
#: The custom section that marks a platform layer wasmflow ships (JSON: ``{"adapter": name, "version": ...}``).
ADAPTER_SECTION = "wasmflow:adapter"

_MAGIC = b"\0asm"
_CORE_VERSION = b"\x01\x00\x00\x00"
_COMPONENT_VERSION = b"\x0d\x00\x01\x00"
_CUSTOM, _CORE_MODULE, _COMPONENT = 0, 1, 4
_CORE_MEMORY = 5
#: Nesting deeper than this is not something a composer writes: refuse instead of recursing without end.
_MAX_DEPTH = 16
#: A custom section we decode as JSON is small; anything larger is not ours.
_MAX_RECORD = 64 * 1024


@dataclass
class Parts:
    """What a component binary is made of (nested components are counted, and listed, depth first)."""

    components: int = 0
    core_modules: int = 0
    memories: int = 0
    #: Custom sections named ``wasmflow:*`` anywhere in the binary, decoded (name -> list of JSON objects).
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def composition(self) -> dict[str, Any] | None:
        """The record ``wasmflow compose`` wrote at the top level, if any (the last one wins)."""
        found = self.records.get(COMPOSITION_SECTION)
        return found[-1] if found else None

    @property
    def adapters(self) -> list[dict[str, Any]]:
        """The platform layers wasmflow ships that this binary contains."""
        return self.records.get(ADAPTER_SECTION, [])


def read_parts(data: bytes) -> Parts:
    """The parts of ``data``, a component (or a core module); ContractError when the framing is broken."""
    parts = Parts()
    _walk(memoryview(data), parts, 0)
    return parts


def memory_count(data: bytes) -> int:
    """How many linear memories an instance of ``data`` defines (at least 1, so a limit can always be split)."""
    return max(1, read_parts(data).memories)


def custom_section(name: str, payload: bytes) -> bytes:
    """A custom section (id 0) named ``name``, ready to append to a component or module binary."""
    encoded = name.encode()
    body = _leb(len(encoded)) + encoded + payload
    return b"\x00" + _leb(len(body)) + body


def json_section(name: str, record: dict[str, Any]) -> bytes:
    """A custom section carrying ``record`` as compact JSON."""
    return custom_section(name, json.dumps(record, sort_keys=True, separators=(",", ":")).encode())


def _walk(data: memoryview, parts: Parts, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise ContractError(f"the component nests more than {_MAX_DEPTH} components deep")
    if len(data) < 8 or bytes(data[:4]) != _MAGIC:
        raise ContractError("not a WebAssembly binary (no \\0asm header)")
    version = bytes(data[4:8])
    if version not in (_CORE_VERSION, _COMPONENT_VERSION):
        raise ContractError(f"unknown WebAssembly binary version {version.hex()}")
    core = version == _CORE_VERSION
    if core:
        parts.core_modules += 1
    offset = 8
    while offset < len(data):
        section_id = data[offset]
        size, offset = _read_leb(data, offset + 1)
        end = offset + size
        if end > len(data):
            raise ContractError(f"section {section_id} at byte {offset} runs past the end of the binary")
        body = data[offset:end]
        if section_id == _CUSTOM:
            _custom(body, parts)
        elif core and section_id == _CORE_MEMORY:
            count, _ = _read_leb(body, 0)
            parts.memories += count
        elif not core and section_id == _CORE_MODULE:
            _walk(body, parts, depth + 1)
        elif not core and section_id == _COMPONENT:
            parts.components += 1
            _walk(body, parts, depth + 1)
        offset = end


def _custom(body: memoryview, parts: Parts) -> None:
    length, start = _read_leb(body, 0)
    name = bytes(body[start : start + length]).decode("utf-8", errors="replace")
    payload = body[start + length :]
    if not name.startswith("wasmflow:") or len(payload) > _MAX_RECORD:
        return
    try:
        record = json.loads(bytes(payload))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ContractError(f"custom section {name!r} is not the JSON wasmflow writes: {exc}") from exc
    if isinstance(record, dict):
        parts.records.setdefault(name, []).append(record)


def _read_leb(data: memoryview, offset: int) -> tuple[int, int]:
    """An unsigned LEB128 (at most 5 bytes, as the binary format's u32) at ``offset``: (value, next offset)."""
    value = shift = 0
    for index in range(offset, min(offset + 5, len(data))):
        byte = data[index]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, index + 1
        shift += 7
    raise ContractError(f"malformed length at byte {offset} of the binary")


def _leb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
