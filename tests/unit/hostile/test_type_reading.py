"""Hostile components against the contract check's type reading: every one gets a report with a refusal that says
which bound it passed; nothing crashes, nothing grows without bound (``contract/decode.py``).

The check reads types from the bytes with wasm-tools (no compile). Its own bounds (sections, nesting of components,
bytes of component-level sections, time, type depth) come before wasm-tools' and wasmparser's own limits.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wasmtime import wat2wasm

from tests.components.engine import wat
from wasmflow.contract.check import check_component
from wasmflow.contract.decode import Limits
from wasmflow.contract.report import Code

HEADER = b"\0asm\x0d\x00\x01\x00"
PROPERTY = settings(derandomize=True, max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_components_nested_past_the_bound_are_refused_as_too_large() -> None:
    nested = wat2wasm("(component " * 40 + ")" * 40)
    (problem,) = check_component(nested).problems
    assert problem.code is Code.TOO_LARGE
    assert "components nest more than 16 deep" in problem.message


def test_more_sections_than_the_bound_are_refused_before_wasm_tools_reads_them() -> None:
    custom = b"\x00\x02\x01a"  # a custom section named "a", empty
    (problem,) = check_component(HEADER + custom * 10_001).problems
    assert problem.code is Code.TOO_LARGE
    assert "more than 10000 sections" in problem.message


def test_type_information_past_the_bound_is_refused() -> None:
    (problem,) = check_component(wat.operator(), limits=Limits(type_bytes=256)).problems
    assert problem.code is Code.TOO_LARGE
    assert "over the limit of 256 bytes" in problem.message


def test_a_type_nested_too_deep_is_refused_by_the_validator() -> None:
    chain = "".join(f"(type $t{i} (list {f'$t{i - 1}' if i else 'u8'}))" for i in range(120))
    (problem,) = check_component(wat2wasm(f'(component {chain} (import "f" (func (param "x" $t119))))')).problems
    assert problem.code is Code.CORRUPT
    assert "type nesting is too deep" in problem.message


@PROPERTY
@given(st.binary(max_size=300))
def test_any_bytes_after_a_component_header_get_a_report_never_an_exception(body: bytes) -> None:
    report = check_component(HEADER + body)
    assert report.valid or {p.code for p in report.problems} <= {
        Code.TRUNCATED,
        Code.CORRUPT,
        Code.TOO_LARGE,
        Code.NO_OPERATOR,
    }


@PROPERTY
@given(st.integers(min_value=9, max_value=1139), st.integers(min_value=0, max_value=255))
def test_a_real_component_with_one_byte_changed_gets_a_report_never_an_exception(at: int, value: int) -> None:
    data = bytearray(wat.operator())
    data[at % len(data)] = value
    report = check_component(bytes(data))
    assert report.size == len(data)
    assert all(p.message for p in report.problems)
