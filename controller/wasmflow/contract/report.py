"""The result of checking a component against the contract: plain data, ready for status, CLI tables and JSON."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

from wasmflow.contract.capabilities import ImportClass
from wasmflow.contract.signatures import OperatorKind


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


# -- Azure IoT Operations components (checked by ``contract/aio.py``) --------------------------------------------


class Returns(enum.StrEnum):
    """How ``process`` hands back its answer: the value itself (1.0.0) or a ``result`` (1.1.0)."""

    VALUE = "value"
    RESULT = "result"


@dataclass(frozen=True)
class AioOperator:
    """One operator interface an AIO component exports."""

    operation: str
    #: The exact export name, e.g. ``tinykube-graph:processor/map@1.0.0``.
    export: str
    package: str
    version: str
    returns: Returns

    @property
    def world(self) -> str:
        """The AIO world this interface belongs to, e.g. ``tinykube-graph:processor/map-impl@1.0.0``."""
        return f"{self.package}/{self.operation}-impl@{self.version}"


@dataclass(frozen=True)
class AioReport:
    """What the checker found out about an AIO component."""

    operators: tuple[AioOperator, ...]

    @property
    def operations(self) -> tuple[str, ...]:
        return tuple(o.operation for o in self.operators)

    @property
    def worlds(self) -> tuple[str, ...]:
        return tuple(o.world for o in self.operators)

    def operator(self, operation: str) -> AioOperator | None:
        return next((o for o in self.operators if o.operation == operation), None)


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

    def aio_problems(self, operation: str) -> list[str]:
        """Why this component cannot serve ``operation`` of an AIO graph (empty: it can).

        What a worker would refuse at load: no AIO operator interface, not this operation's, or a break of the
        contract elsewhere (a signature, an import no host provides).
        """
        if self.aio is None:
            ours = f" (it is a wasmflow {self.operator.value} operator)" if self.operator is not None else ""
            return [f"it exports no AIO operator interface (wasm-graph:processor or tinykube-graph:processor){ours}"]
        problems = []
        if self.aio.operator(operation) is None:
            exported = ", ".join(self.aio.operations) or "none"
            problems.append(f"it does not export the {operation} operator (it exports: {exported})")
        problems += [f"[{p.code.value}] {p.where}: {p.message}" for p in self.problems]
        return problems

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
