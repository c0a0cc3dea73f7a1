"""Read the type model of a component wasmtime has already compiled (the workers, ``wasmflow build``).

A worker compiles every component it runs (or loads it from its compiled cache); reading the types from that is
nearly free, so the worker checks the contract from it. Components arrive here compiled, hence validated by
wasmtime and within wasmparser's bounds; the model is built as in ``decode`` (same depth bound).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import wasmtime
from wasmtime import component as cm

from wasmflow.contract.decode import Refusal, TypeReadError
from wasmflow.contract.types import (
    MAX_DEPTH,
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

if TYPE_CHECKING:
    # Not re-exported by wasmtime.component, but it is the type of every item in exports()/imports().
    from wasmtime.component._types import ComponentExtern

__all__ = ["read_compiled"]

_PRIMITIVES: dict[type, str] = {
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


def read_compiled(engine: wasmtime.Engine, component: cm.Component) -> ComponentTypes:
    """The imports and exports of ``component`` (compiled with ``engine``) as the contract's type model."""
    imports = tuple(component.type.imports(engine))
    exports = {name: _extern(engine, extern) for name, extern in component.type.exports(engine).items()}
    return ComponentTypes(imports=imports, exports=exports)


def _extern(engine: wasmtime.Engine, extern: ComponentExtern) -> Extern:
    ty = extern.ty
    if isinstance(ty, cm.ComponentInstanceType):
        members: dict[str, Function | Other] = {}
        for name, member in ty.exports(engine).items():
            members[name] = _function(member.ty) if isinstance(member.ty, cm.FuncType) else Other(_kind(member.ty))
        return Instance(members)
    if isinstance(ty, cm.FuncType):
        return _function(ty)
    return Other(_kind(ty))


def _kind(ty: object) -> str:
    return type(ty).__name__


def value_type(ty: cm.ValType) -> ValType:
    """The type model of one wasmtime value type (``compose`` spells both sides of a plug with it)."""
    return _value(ty, 0)


def _function(ty: cm.FuncType) -> Function:
    params = tuple((name, _value(t, 0)) for name, t in ty.params)
    return Function(params, None if ty.result is None else _value(ty.result, 0))


def _value(ty: cm.ValType, depth: int) -> ValType:
    if depth > MAX_DEPTH:
        raise TypeReadError(Refusal.TOO_LARGE, f"a type nests more than {MAX_DEPTH} levels deep")
    for cls, name in _PRIMITIVES.items():
        if isinstance(ty, cls):
            return Prim(name)
    deeper = depth + 1
    if isinstance(ty, cm.ListType):
        return ListOf(_value(ty.element, deeper))
    if isinstance(ty, cm.OptionType):
        return OptionOf(_value(ty.payload, deeper))
    if isinstance(ty, cm.ResultType):
        return ResultOf(
            None if ty.ok is None else _value(ty.ok, deeper), None if ty.err is None else _value(ty.err, deeper)
        )
    if isinstance(ty, cm.TupleType):
        return TupleOf(tuple(_value(e, deeper) for e in ty.elements))
    if isinstance(ty, cm.RecordType):
        return Record(tuple((n, _value(t, deeper)) for n, t in ty.fields))
    if isinstance(ty, cm.VariantType):
        return Variant(tuple((n, None if t is None else _value(t, deeper)) for n, t in ty.cases))
    if isinstance(ty, cm.EnumType):
        return Enum(tuple(ty.names))
    if isinstance(ty, cm.FlagsType):
        return Flags(tuple(ty.names))
    if isinstance(ty, cm.OwnType):
        return Handle("own")
    if isinstance(ty, cm.BorrowType):
        return Handle("borrow")
    return Opaque(_kind(ty))
