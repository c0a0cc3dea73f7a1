"""What an instance may reach and how its failures are told apart (engine/sandbox.py)."""

from __future__ import annotations

import pytest
from wasmtime import WasmtimeError

from wasmflow.contract.capabilities import classify_import
from wasmflow.engine import sandbox
from wasmflow.errors import EngineError

#: What wasmtime says when a guest calls an import ``define_unknown_imports_as_traps`` linked (ungranted wasi:http).
DENIED_CALL = (
    "error while executing at wasm backtrace:\n    0: 0x2946fd - <unknown>!<wasm function 5765>\n\nCaused by:\n"
    "    unknown import: `wasi:http/types@0.2.10#[constructor]fields` has not been defined\n"
)


def test_imports_no_host_provides_are_refused_by_name() -> None:
    verdicts = [classify_import(n) for n in ("wasi:cli/stdout@0.2.9", "acme:vault/secrets@1.0.0")]
    with pytest.raises(EngineError, match=r"'op'.*acme:vault/secrets@1.0.0"):
        sandbox.refuse_unknown_imports("op", verdicts)


@pytest.mark.parametrize(
    ("text", "output", "kind"),
    [
        ("error while executing\nCaused by:\n    wasm trap: interrupt", "", "timeout"),
        ("wasm trap: all fuel consumed by WebAssembly", "", "timeout"),
        ("wasm trap: wasm `unreachable` instruction executed", "MemoryError\n", "memory"),
        ("wasm trap: wasm `unreachable` instruction executed", "memory allocation of 4096 bytes failed", "memory"),
        ("wasm trap: wasm `unreachable` instruction executed", "Traceback: RuntimeError: boom", "trap"),
        ("wasm trap: call stack exhausted", "", "trap"),
        ("resource limit exceeded: memory count too high at 2", "", "memory"),
        ("resource limit exceeded: table count too high at 5", "", "memory"),
        (DENIED_CALL, "", "trap"),
    ],
)
def test_failures_are_classified_from_the_trap_and_the_guest_output(text: str, output: str, kind: str) -> None:
    assert sandbox.classify_failure(WasmtimeError(text), lambda: output)[0] == kind


def test_a_call_to_an_import_linked_as_denied_names_the_function_and_the_grant() -> None:
    _kind, text = sandbox.classify_failure(WasmtimeError(DENIED_CALL), str)
    assert text == (
        "denied: the operator called wasi:http/types@0.2.10#[constructor]fields, which the WasmModule does not "
        "grant (grant 'http' to allow it)"
    )
