"""The contract's type model and how a type is spelled (``contract/types.py``)."""

from __future__ import annotations

from wasmflow.contract.types import (
    Enum,
    Flags,
    Handle,
    ListOf,
    OptionOf,
    Prim,
    Record,
    ResultOf,
    TupleOf,
    ValType,
    Variant,
    describe,
)


def test_types_are_spelled_as_in_wit() -> None:
    payload = Variant((("text", Prim("string")), ("binary", ListOf(Prim("u8"))), ("none", None)))
    record = Record((("payload", payload), ("tags", OptionOf(TupleOf((Prim("string"), Prim("u32")))))))
    assert describe(record) == (
        "record { payload: variant { text(string), binary(list<u8>), none }, tags: option<tuple<string, u32>> }"
    )


def test_a_result_without_a_value_spells_the_missing_side_as_an_underscore() -> None:
    assert describe(ResultOf(None, Prim("string"))) == "result<_, string>"
    assert describe(ResultOf(Prim("bool"), None)) == "result<bool, _>"


def test_enums_flags_and_handles_are_spelled_by_their_cases_and_kind() -> None:
    assert describe(Enum(("trace", "debug"))) == "enum { trace, debug }"
    assert describe(Flags(("read", "write"))) == "flags { read, write }"
    assert describe(Handle("own")) == "own<resource>"
    assert describe(Handle("borrow")) == "borrow<resource>"


def test_a_type_that_spells_past_the_limit_is_cut() -> None:
    """A type used twice is one object, so 40 levels of doubling are 40 objects that would spell 2^40 fields."""
    ty: ValType = Prim("u8")
    for _ in range(40):
        ty = Record((("a", ty), ("b", ty)))
    spelled = describe(ty, limit=1000)
    assert len(spelled) == 1001
    assert spelled.endswith("…")
