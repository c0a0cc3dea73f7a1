"""The function signatures each operator kind must export, as WIT-like type strings.

Types are compared structurally (a record's field names and types, a variant's cases), never by producer or byte
pattern, so any toolchain that implements the WIT passes. The strings use WIT syntax so a mismatch reads like the
contract. A test builds a real component from the WIT and checks it against these, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from wasmflow.api.kinds import OperatorKind

__all__ = ["LIFECYCLE_INIT", "OPERATOR_SIGNATURES", "OperatorKind", "Signature", "world_of"]

PAYLOAD = "variant { text(string), binary(list<u8>) }"
MESSAGE = (
    f"record {{ payload: {PAYLOAD}, topic: string, content-type: option<string>, "
    "properties: list<tuple<string, string>>, timestamp-ms: u64 }"
)
OPERATOR_ERROR = "record { message: string }"
CONFIGURATION = "record { node: string, properties: list<tuple<string, string>> }"


@dataclass(frozen=True)
class Signature:
    """One exported function: parameter types in order and the result type."""

    params: tuple[tuple[str, str], ...]
    result: str | None


LIFECYCLE_INIT = Signature(params=(("config", CONFIGURATION),), result="result<_, string>")

OPERATOR_SIGNATURES: dict[OperatorKind, Signature] = {
    OperatorKind.MAP: Signature((("input", MESSAGE),), f"result<{MESSAGE}, {OPERATOR_ERROR}>"),
    OperatorKind.FILTER: Signature((("input", MESSAGE),), f"result<bool, {OPERATOR_ERROR}>"),
    OperatorKind.BRANCH: Signature((("input", MESSAGE),), f"result<bool, {OPERATOR_ERROR}>"),
    OperatorKind.ACCUMULATE: Signature(
        (("state", MESSAGE), ("input", MESSAGE)), f"result<{MESSAGE}, {OPERATOR_ERROR}>"
    ),
}


def world_of(kind: OperatorKind) -> str:
    """The WIT world a component of this kind implements."""
    return f"{kind.value}-operator"
