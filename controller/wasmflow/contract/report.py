"""The result of checking a component against the contract: plain data, ready for status, CLI tables and JSON."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from wasmflow.contract.capabilities import ImportClass
from wasmflow.contract.signatures import OperatorKind

if TYPE_CHECKING:
    from wasmflow.contract.aio import AioReport


class Code(enum.StrEnum):
    """Stable problem codes: tools and tests match on these, people read the message."""

    NOT_WASM = "not-wasm"
    TRUNCATED = "truncated"
    CORRUPT = "corrupt"
    CORE_MODULE = "core-module"
    TOO_LARGE = "too-large"
    NO_OPERATOR = "no-operator"
    MULTIPLE_OPERATORS = "multiple-operators"
    MISSING_FUNCTION = "missing-function"
    SIGNATURE_MISMATCH = "signature-mismatch"
    INCOMPATIBLE_VERSION = "incompatible-version"
    UNSUPPORTED_IMPORT = "unsupported-import"
    NOT_GRANTED = "not-granted"
    KIND_MISMATCH = "kind-mismatch"


@dataclass(frozen=True)
class Where:
    """Where a problem is: the interface, the function and the parameter (``result`` for the return type)."""

    interface: str | None = None
    function: str | None = None
    parameter: str | None = None

    def __str__(self) -> str:
        text = self.interface or "component"
        if self.function:
            text += f" {self.function}"
        if self.parameter:
            text += f"({self.parameter})" if self.parameter != "result" else " -> result"
        return text


@dataclass(frozen=True)
class Problem:
    """One way the component does not fit the contract."""

    code: Code
    message: str
    where: Where = field(default_factory=Where)
    expected: str | None = None
    found: str | None = None


@dataclass(frozen=True)
class ImportReport:
    """One import of the component and what the host does with it under the given grants."""

    name: str
    kind: ImportClass
    capability: str | None
    granted: bool


@dataclass(frozen=True)
class ContractReport:
    """Everything the check found out; ``valid`` is True when there is no problem."""

    size: int
    operator: OperatorKind | None = None
    world: str | None = None
    exports: tuple[str, ...] = ()
    imports: tuple[ImportReport, ...] = ()
    problems: tuple[Problem, ...] = ()
    #: Set when the component implements Azure IoT Operations operator worlds (``contract/aio.py``).
    aio: AioReport | None = None

    @property
    def valid(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """Every problem on one line, each with its code and where: what an error message quotes."""
        return "; ".join(f"[{p.code.value}] {p.where}: {p.message}" for p in self.problems)

    def to_json(self) -> dict[str, Any]:
        """The shape ``wasmflow inspect --json`` prints."""
        return {
            "valid": self.valid,
            "operator": self.operator.value if self.operator else None,
            "world": self.world,
            "aio": None
            if self.aio is None
            else [
                {"operation": o.operation, "export": o.export, "world": o.world, "returns": o.returns.value}
                for o in self.aio.operators
            ],
            "size": self.size,
            "exports": list(self.exports),
            "imports": [
                {"name": i.name, "class": i.kind.value, "capability": i.capability, "granted": i.granted}
                for i in self.imports
            ],
            "problems": [
                {
                    "code": p.code.value,
                    "message": p.message,
                    "where": asdict(p.where),
                    "expected": p.expected,
                    "found": p.found,
                }
                for p in self.problems
            ],
        }
