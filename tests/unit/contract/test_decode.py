"""Reading a component's types from its bytes with wasm-tools, without a compile (``contract/decode.py``)."""

from __future__ import annotations

import pytest
import wasmtime
from wasmtime import component as cm
from wasmtime import wat2wasm

from tests.components.engine import wat
from wasmflow.contract.capabilities import restrict_features
from wasmflow.contract.compiled import read_compiled
from wasmflow.contract.decode import Limits, Refusal, TypeReadError, read_types, skeleton, walk_sections
from wasmflow.contract.signatures import LIFECYCLE_INIT, MESSAGE, OPERATOR_ERROR
from wasmflow.contract.types import ComponentTypes, Function, Instance, describe

#: A component that only declares types and imports: no core module, nothing to compile.
IMPORTS_ONLY = """(component
  (type $point (record (field "x" s32) (field "y" s32)))
  (import "acme:geo/plot@1.0.0" (instance
    (export "point" (type $p (eq $point)))
    (export "draw" (func (param "at" $p) (param "label" (option string)) (result (result u32 (error string)))))))
  (import "log" (func (param "line" string)))
)"""


def signature(function: Function) -> tuple[list[tuple[str, str]], str]:
    return [(n, describe(t)) for n, t in function.params], describe(function.result)


def spelled(types: ComponentTypes) -> dict[str, object]:
    """Imports, and each export's functions with their signatures spelled out (types compare by their spelling)."""
    exports: dict[str, object] = {}
    for name, extern in types.exports.items():
        assert isinstance(extern, Instance)
        exports[name] = {m: signature(f) if isinstance(f, Function) else f for m, f in extern.exports.items()}
    return {"imports": types.imports, "exports": exports}


def compiled(data: bytes) -> ComponentTypes:
    config = wasmtime.Config()
    restrict_features(config)
    engine = wasmtime.Engine(config)
    return read_compiled(engine, cm.Component(engine, data))


def test_an_operator_s_exported_interfaces_are_read_down_to_each_function_s_types() -> None:
    types = read_types(wat.operator())
    assert list(types.exports) == ["wasmflow:operator/lifecycle@0.1.0", "wasmflow:operator/map@0.1.0"]
    process = types.exports["wasmflow:operator/map@0.1.0"]
    assert isinstance(process, Instance)
    function = process.exports["process"]
    assert isinstance(function, Function)
    assert signature(function) == ([("input", MESSAGE)], f"result<{MESSAGE}, {OPERATOR_ERROR}>")
    lifecycle = types.exports["wasmflow:operator/lifecycle@0.1.0"]
    assert isinstance(lifecycle, Instance)
    init = lifecycle.exports["init"]
    assert isinstance(init, Function)
    assert signature(init) == (list(LIFECYCLE_INIT.params), LIFECYCLE_INIT.result)


def test_imports_are_named_as_the_component_names_them() -> None:
    types = read_types(wat2wasm(IMPORTS_ONLY))
    assert types.imports == ("acme:geo/plot@1.0.0", "log")


def test_the_types_read_from_the_bytes_are_those_wasmtime_reads_from_the_compiled_component() -> None:
    for data in (wat.operator(), wat.operator(kind="filter"), wat.operator(kind="accumulate")):
        from_bytes, from_compile = read_types(data), compiled(data)
        assert from_bytes.imports == from_compile.imports
        assert list(from_bytes.exports) == list(from_compile.exports)
        for name, extern in from_bytes.exports.items():
            other = from_compile.exports[name]
            assert isinstance(extern, Instance)
            assert isinstance(other, Instance)
            assert list(extern.exports) == list(other.exports)
            for member, function in extern.exports.items():
                if isinstance(function, Function):
                    theirs = other.exports[member]
                    assert isinstance(theirs, Function)
                    assert signature(function) == signature(theirs)


def test_a_module_the_workers_would_refuse_is_refused_with_the_validator_s_reason() -> None:
    two_memories = wat2wasm("(component (core module $m (memory 1) (memory 1)) (core instance (instantiate $m)))")
    with pytest.raises(TypeReadError) as caught:
        read_types(two_memories)
    assert caught.value.refusal is Refusal.CORRUPT
    assert "multiple memories" in caught.value.message


def test_a_component_cut_short_is_refused_as_truncated() -> None:
    data = wat.operator()
    with pytest.raises(TypeReadError) as caught:
        read_types(data[:-3])
    assert caught.value.refusal is Refusal.TRUNCATED


def test_core_modules_are_skipped_by_their_length() -> None:
    """Only component-level sections count towards the type-information bound: a big core module does not."""
    padding = '(core module $padding (memory 2) (data (i32.const 0) "' + "x" * 100_000 + '"))'
    big, small = wat.operator(linked=(padding, "", "")), wat.operator()
    assert len(big) > len(small) + 100_000
    assert walk_sections(big) == walk_sections(small) < 2048


def test_component_level_sections_over_the_bound_are_refused() -> None:
    with pytest.raises(TypeReadError, match="over the limit of 100 bytes") as caught:
        read_types(wat.operator(), Limits(type_bytes=100))
    assert caught.value.refusal is Refusal.TOO_LARGE


def test_more_sections_than_the_bound_are_refused() -> None:
    with pytest.raises(TypeReadError, match="more than 3 sections"):
        walk_sections(wat.operator(), Limits(sections=3))


def test_components_nested_deeper_than_the_bound_are_refused() -> None:
    nested = wat2wasm("(component " * 6 + ")" * 6)
    assert walk_sections(nested, Limits(nesting=5)) == 0
    with pytest.raises(TypeReadError, match="nest more than 4 deep") as caught:
        walk_sections(nested, Limits(nesting=4))
    assert caught.value.refusal is Refusal.TOO_LARGE


def test_a_section_running_past_the_end_is_refused_as_truncated() -> None:
    header = b"\0asm\x0d\x00\x01\x00"
    with pytest.raises(TypeReadError, match="runs past the end") as caught:
        walk_sections(header + b"\x07\x10\x00")
    assert caught.value.refusal is Refusal.TRUNCATED


def test_a_decoder_run_over_its_time_is_refused() -> None:
    with pytest.raises(TypeReadError, match="took more than") as caught:
        read_types(wat.operator(), Limits(seconds=0.000_001))
    assert caught.value.refusal is Refusal.TOO_LARGE


def test_the_skeleton_has_the_types_of_the_component_without_its_code_and_data() -> None:
    padding = '(core module $padding (memory 2) (data (i32.const 0) "' + "x" * 100_000 + '"))'
    data = wat.operator(linked=(padding, "", ""))
    stripped = skeleton(data)
    assert len(stripped) < len(data) - 100_000
    assert spelled(read_types(stripped)) == spelled(read_types(data))


def test_without_memfd_the_bytes_go_through_stdin_with_the_same_types(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where there is no memfd (macOS: an author's `wasmflow inspect`), wasm-tools reads the component on stdin."""
    data = wat.operator()
    from_memfd = spelled(read_types(data))
    monkeypatch.delattr("os.memfd_create")
    assert spelled(read_types(data)) == from_memfd
