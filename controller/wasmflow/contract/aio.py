"""Recognise components written for Azure IoT Operations (AIO) data flow graphs, and check them like our own.

An AIO component exports one or more operator interfaces of ``tinykube-graph:processor@1.0.0`` or
``wasm-graph:processor@1.1.0`` (a single module often serves map, branch and filter of one sensor), each with
``init`` and ``process``. The two published versions differ in what ``process`` returns: the value itself in 1.0.0,
``result<value, error>`` in 1.1.0. The variant is read from the component's own exported types, per interface,
so a component built from either WIT (or a mix) is accepted. Types are compared structurally, as in ``check``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from wasmflow.contract.aio_names import OPERATIONS, aio_interface
from wasmflow.contract.capabilities import split_name
from wasmflow.contract.report import AioOperator, AioReport, Code, Problem, Returns, Where
from wasmflow.contract.signatures import Signature
from wasmflow.contract.types import Extern, Function, Instance, ResultOf

CheckFunction = Callable[[Extern, str, str, Signature, list[Problem]], None]

__all__ = ["AioOperator", "AioReport", "Returns", "check_aio_exports", "exports_aio", "signatures"]


BUFFER_OR_BYTES = "variant { buffer(own<resource>), bytes(list<u8>) }"
BUFFER_OR_STRING = "variant { buffer(own<resource>), string(string) }"
TIMESPEC = "record { secs: u64, nanos: u32 }"
TIMESTAMP = f"record {{ timestamp: {TIMESPEC}, counter: u64, node-id: {BUFFER_OR_STRING} }}"
MESSAGE = (
    f"record {{ timestamp: {TIMESTAMP}, topic: {BUFFER_OR_BYTES}, content-type: option<{BUFFER_OR_STRING}>, "
    f"payload: {BUFFER_OR_BYTES}, properties: record {{ user-properties: list<tuple<{BUFFER_OR_STRING}, "
    f"{BUFFER_OR_STRING}>> }}, schema: option<variant {{ registry-reference({BUFFER_OR_STRING}), "
    f"inline(record {{ name: {BUFFER_OR_STRING}, content: {BUFFER_OR_STRING} }}) }}> }}"
)
SNAPSHOT = (
    f"record {{ timestamp: {TIMESTAMP}, format: {BUFFER_OR_STRING}, width: u32, height: u32, "
    f"frame: {BUFFER_OR_BYTES} }}"
)
DATA_MODEL = f"variant {{ buffer-or-bytes({BUFFER_OR_BYTES}), message({MESSAGE}), snapshot({SNAPSHOT}) }}"
HLC = f"record {{ timestamp: {TIMESPEC}, counter: u64, node-id: string }}"
MODULE_CONFIGURATION = (
    "record { properties: list<tuple<string, string>>, "
    "module-schemas: list<record { name: string, content-type: string, content: string }> }"
)
ERROR = "record { message: string }"
INIT = Signature((("configuration", MODULE_CONFIGURATION),), "bool")

_PROCESS: dict[str, tuple[tuple[tuple[str, str], ...], str]] = {
    "map": ((("message", DATA_MODEL),), DATA_MODEL),
    "filter": ((("message", DATA_MODEL),), "bool"),
    "branch": ((("timestamp", HLC), ("message", DATA_MODEL)), "bool"),
    "accumulate": ((("staged", DATA_MODEL), ("message", f"list<{DATA_MODEL}>")), DATA_MODEL),
    "delay": ((("data", DATA_MODEL), ("timestamp", HLC)), HLC),
}


def signatures(operation: str, returns: Returns) -> Signature:
    """The ``process`` signature of ``operation`` in the given variant."""
    params, value = _PROCESS[operation]
    return Signature(params, value if returns is Returns.VALUE else f"result<{value}, {ERROR}>")


def exports_aio(exports: Mapping[str, object]) -> bool:
    """True when the component exports at least one AIO operator interface."""
    return any(_operator_of(name) is not None for name in exports)


def _operator_of(name: str) -> tuple[str, str, str] | None:
    base, version = split_name(name)
    found = aio_interface(base, version)
    if found is None or found[1] not in OPERATIONS or version is None:
        return None
    return found[0], found[1], version


def _returns(extern: Extern) -> Returns:
    """RESULT when the exported ``process`` returns a ``result``; VALUE otherwise (also when it is missing)."""
    if isinstance(extern, Instance):
        process = extern.exports.get("process")
        if isinstance(process, Function) and isinstance(process.result, ResultOf):
            return Returns.RESULT
    return Returns.VALUE


def check_aio_exports(
    exports: Mapping[str, Extern],
    problems: list[Problem],
    check_function: CheckFunction,
) -> AioReport:
    """Check every AIO operator interface the component exports (``init`` and ``process``), appending problems."""
    operators = []
    for name, extern in exports.items():
        found = _operator_of(name)
        if found is None:
            continue
        package, operation, version = found
        returns = _returns(extern)
        check_function(extern, name, "process", signatures(operation, returns), problems)
        check_function(extern, name, "init", INIT, problems)
        operators.append(AioOperator(operation, name, package, version, returns))
    if not operators:  # callers only come here when exports_aio() said yes
        problems.append(Problem(Code.NO_OPERATOR, "the component exports no AIO operator interface", Where()))
    return AioReport(tuple(operators))
