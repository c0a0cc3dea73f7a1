"""``contract.parts``: what a component binary is made of, read from its section framing."""

from __future__ import annotations

import pytest
from wasmtime import wat2wasm

from wasmflow.contract import parts
from wasmflow.errors import ContractError

ONE_MODULE = "(component (core module $m (memory 1)) (core instance (instantiate $m)))"
NESTED = """(component
  (component $inner (core module $a (memory 1)) (core instance (instantiate $a)))
  (core module $b (memory 1) (memory 2))
  (core module $c (import "x" "m" (memory 1))))"""


def test_a_plain_component_has_one_memory() -> None:
    assert parts.read_parts(wat2wasm(ONE_MODULE)).memories == 1


def test_memories_of_nested_components_and_modules_are_all_counted_and_imported_ones_are_not() -> None:
    found = parts.read_parts(wat2wasm(NESTED))
    assert (found.components, found.core_modules, found.memories) == (1, 3, 3)


def test_a_wasmflow_record_appended_to_a_component_is_read_back() -> None:
    data = wat2wasm(ONE_MODULE) + parts.json_section(parts.COMPOSITION_SECTION, {"adapter": "map"})
    assert parts.read_parts(data).composition == {"adapter": "map"}


def test_a_section_running_past_the_end_is_refused() -> None:
    with pytest.raises(ContractError, match="runs past the end"):
        parts.read_parts(wat2wasm(ONE_MODULE)[:-3])


def test_bytes_that_are_not_wasm_are_refused() -> None:
    with pytest.raises(ContractError, match="not a WebAssembly binary"):
        parts.read_parts(b"hello, world")
