"""The fast codec's assumptions about wasmtime-py internals: these fail loudly when an upgrade breaks them."""

from __future__ import annotations

from importlib import metadata

from wasmflow.engine import codec


def test_every_assumption_of_the_fast_path_holds_for_the_installed_wasmtime() -> None:
    assert codec.fast_path_problems() == []
    assert codec.FAST_PATH


def test_the_installed_wasmtime_is_the_one_the_layouts_were_checked_against() -> None:
    # codec.py's layout table was read from wasmtime-py 50's _bindings.py; re-read it when this changes.
    assert metadata.version("wasmtime").split(".")[0] == "50"


def test_cpython_bytes_are_addressed_without_a_ctypes_call() -> None:
    assert codec._address is codec._address_by_id
    data = b"\x00payload\xff"
    assert codec._string_at(codec._address(data), len(data)) == data
