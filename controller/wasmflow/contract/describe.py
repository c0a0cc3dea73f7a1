"""Render wasmtime's component value types as WIT-like strings, so types can be compared and shown to people.

wasmtime-py exposes the structure of every type (record fields, variant cases...) but not the WIT names of
records and variants; the structure is what binary compatibility depends on, so that is what we compare.
"""

from __future__ import annotations

from wasmtime import component as cm


def describe(ty: cm.ValType | None) -> str:
    """A WIT-like spelling of ``ty``: ``record { a: u32 }``, ``list<u8>``, ``result<_, string>``."""
    if ty is None:
        return "_"
    simple = {
        cm.Bool: "bool",
        cm.S8: "s8",
        cm.S16: "s16",
        cm.S32: "s32",
        cm.S64: "s64",
        cm.U8: "u8",
        cm.U16: "u16",
        cm.U32: "u32",
        cm.U64: "u64",
        cm.F32: "f32",
        cm.F64: "f64",
        cm.Char: "char",
        cm.String: "string",
    }
    for cls, name in simple.items():
        if isinstance(ty, cls):
            return name
    if isinstance(ty, cm.ListType):
        return f"list<{describe(ty.element)}>"
    if isinstance(ty, cm.OptionType):
        return f"option<{describe(ty.payload)}>"
    if isinstance(ty, cm.ResultType):
        return f"result<{describe(ty.ok)}, {describe(ty.err)}>"
    if isinstance(ty, cm.TupleType):
        return "tuple<" + ", ".join(describe(e) for e in ty.elements) + ">"
    if isinstance(ty, cm.RecordType):
        return "record { " + ", ".join(f"{n}: {describe(t)}" for n, t in ty.fields) + " }"
    if isinstance(ty, cm.VariantType):
        cases = (f"{n}({describe(t)})" if t is not None else n for n, t in ty.cases)
        return "variant { " + ", ".join(cases) + " }"
    if isinstance(ty, cm.EnumType):
        return "enum { " + ", ".join(ty.names) + " }"
    if isinstance(ty, cm.FlagsType):
        return "flags { " + ", ".join(ty.names) + " }"
    if isinstance(ty, cm.OwnType):
        return "own<resource>"
    if isinstance(ty, cm.BorrowType):
        return "borrow<resource>"
    return type(ty).__name__
