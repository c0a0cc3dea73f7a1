"""Problems found from the bytes alone, before wasmtime parses anything."""

from __future__ import annotations

from wasmflow.contract.check import check_component
from wasmflow.contract.report import Code


def test_text_is_not_webassembly() -> None:
    report = check_component(b"#!/bin/sh\necho hi\n")
    assert [p.code for p in report.problems] == [Code.NOT_WASM]
    assert not report.valid


def test_an_empty_file_is_not_webassembly() -> None:
    assert [p.code for p in check_component(b"").problems] == [Code.NOT_WASM]


def test_a_header_cut_short_is_truncated() -> None:
    assert [p.code for p in check_component(b"\0asm\x0d").problems] == [Code.TRUNCATED]


def test_a_core_module_is_told_to_become_a_component() -> None:
    report = check_component(b"\0asm\x01\x00\x00\x00")
    (problem,) = report.problems
    assert problem.code is Code.CORE_MODULE
    assert "not a component" in problem.message
    assert (problem.expected, problem.found) == ("component", "core module")


def test_size_over_the_limit_is_refused_before_parsing() -> None:
    report = check_component(b"\0asm\x0d\x00\x01\x00" + b"\0" * 100, max_bytes=64)
    (problem,) = report.problems
    assert problem.code is Code.TOO_LARGE
    assert "over the limit of 64 bytes" in problem.message
