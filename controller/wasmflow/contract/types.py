"""The type model the contract check reads: a component's import names and its exports, down to each exported
function's parameter and result types.

Two readers fill it: ``decode.read_types`` from the bytes (wasm-tools' own decoder, no compile: what the controller,
``wasmflow inspect`` and ``wasmflow push`` use) and ``compiled.read_compiled`` from a component wasmtime has compiled
already (the workers). The check (``check.py``, ``aio.py``) reads only this model, so both give the same verdicts.

Types are structural: records with their field names, variants with their cases, resources as ``own``/``borrow``
handles without identity. WIT names of records and variants are not kept: binary compatibility does not depend on
them. A type is a DAG of frozen dataclasses (a type used twice is one object), so building it costs one step per type
definition; spelling it (``describe``) is bounded in length, since a DAG can spell exponentially long.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DESCRIBE_LIMIT",
    "MAX_DEPTH",
    "PRIMITIVES",
    "ComponentTypes",
    "Enum",
    "Extern",
    "Flags",
    "Function",
    "Handle",
    "Instance",
    "ListOf",
    "Opaque",
    "OptionOf",
    "Other",
    "Prim",
    "Record",
    "ResultOf",
    "TupleOf",
    "ValType",
    "Variant",
    "describe",
]

#: How deep a value type may nest (a list of records of lists...). wasmparser refuses types deeper than 100 levels;
#: every contract type is under 10 deep. Readers refuse deeper types, so spelling one never overruns Python's stack.
MAX_DEPTH = 100
#: The longest spelling ``describe`` produces; longer ones are cut (and then match no contract type). The longest
#: contract type (AIO's data model) spells in about 1.5 KB.
DESCRIBE_LIMIT = 16 * 1024

#: The primitive types, spelled as in WIT.
PRIMITIVES = frozenset({"bool", "s8", "s16", "s32", "s64", "u8", "u16", "u32", "u64", "f32", "f64", "char", "string"})


@dataclass(frozen=True, eq=False)
class Prim:
    name: str


@dataclass(frozen=True, eq=False)
class ListOf:
    element: ValType


@dataclass(frozen=True, eq=False)
class OptionOf:
    payload: ValType


@dataclass(frozen=True, eq=False)
class ResultOf:
    ok: ValType | None
    err: ValType | None


@dataclass(frozen=True, eq=False)
class TupleOf:
    elements: tuple[ValType, ...]


@dataclass(frozen=True, eq=False)
class Record:
    fields: tuple[tuple[str, ValType], ...]


@dataclass(frozen=True, eq=False)
class Variant:
    cases: tuple[tuple[str, ValType | None], ...]


@dataclass(frozen=True, eq=False)
class Enum:
    names: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Flags:
    names: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Handle:
    """An ``own`` or ``borrow`` handle to a resource (which resource is not kept)."""

    kind: Literal["own", "borrow"]


@dataclass(frozen=True, eq=False)
class Opaque:
    """A value type the model does not spell out (``future``, ``stream``, ``error-context``...): its kind only."""

    kind: str


ValType = Prim | ListOf | OptionOf | ResultOf | TupleOf | Record | Variant | Enum | Flags | Handle | Opaque


@dataclass(frozen=True)
class Function:
    """One function: its parameters in order and its result (None: it returns nothing)."""

    params: tuple[tuple[str, ValType], ...]
    result: ValType | None


@dataclass(frozen=True)
class Other:
    """An export that is neither a function nor an instance (a type, a module, a component...): its kind only."""

    kind: str


@dataclass(frozen=True)
class Instance:
    """An exported instance (an interface): its exports by name, in the component's order."""

    exports: Mapping[str, Function | Other]


Extern = Instance | Function | Other


@dataclass(frozen=True)
class ComponentTypes:
    """What the contract check needs of a component: its import names and its exports, in the component's order."""

    imports: tuple[str, ...]
    exports: Mapping[str, Extern]


class _Cut(Exception):  # noqa: N818 - control flow inside describe, never escapes it
    pass


def describe(ty: ValType | None, limit: int = DESCRIBE_LIMIT) -> str:
    """A WIT-like spelling of ``ty``: ``record { a: u32 }``, ``list<u8>``, ``result<_, string>``; ``_`` for None.

    Spellings longer than ``limit`` characters end in ``…`` (a type DAG can spell exponentially long).
    """
    parts: list[str] = []
    budget = [limit]

    def put(text: str) -> None:
        parts.append(text)
        budget[0] -= len(text)
        if budget[0] < 0:
            raise _Cut

    def walk(t: ValType | None) -> None:
        if t is None:
            put("_")
        elif isinstance(t, Prim):
            put(t.name)
        elif isinstance(t, ListOf):
            put("list<")
            walk(t.element)
            put(">")
        elif isinstance(t, OptionOf):
            put("option<")
            walk(t.payload)
            put(">")
        elif isinstance(t, ResultOf):
            put("result<")
            walk(t.ok)
            put(", ")
            walk(t.err)
            put(">")
        elif isinstance(t, TupleOf):
            put("tuple<")
            for i, element in enumerate(t.elements):
                put(", " if i else "")
                walk(element)
            put(">")
        elif isinstance(t, Record):
            put("record { ")
            for i, (name, field) in enumerate(t.fields):
                put(f"{', ' if i else ''}{name}: ")
                walk(field)
            put(" }")
        elif isinstance(t, Variant):
            put("variant { ")
            for i, (name, payload) in enumerate(t.cases):
                put(f"{', ' if i else ''}{name}")
                if payload is not None:
                    put("(")
                    walk(payload)
                    put(")")
            put(" }")
        elif isinstance(t, Enum):
            put("enum { " + ", ".join(t.names) + " }")
        elif isinstance(t, Flags):
            put("flags { " + ", ".join(t.names) + " }")
        elif isinstance(t, Handle):
            put(f"{t.kind}<resource>")
        else:
            put(t.kind)

    try:
        walk(ty)
    except _Cut:
        return "".join(parts)[:limit] + "…"
    return "".join(parts)
