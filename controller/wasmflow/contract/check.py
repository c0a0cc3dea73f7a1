"""Check component bytes against the WIT contract, without compiling or instantiating them.

The component's type information (exports down to each function's parameter and result types, and imports) is read
into the type model (``types.py``) and compared structurally with the contract. From the bytes, wasm-tools validates
the component and decodes its types (``decode.py``): no compile. A caller that has compiled the component already
(a worker) passes it, and the model is read from wasmtime's types instead (``compiled.py``). Nothing runs. Every
mismatch is reported, each with a stable code and where it is, so a user fixes them all in one go.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

import wasmtime
from wasmtime import component as cm

from wasmflow.contract import aio
from wasmflow.contract.capabilities import Capability, ImportClass, classify_import, split_name
from wasmflow.contract.compiled import read_compiled
from wasmflow.contract.decode import DEFAULT_LIMITS, Limits, Refusal, TypeReadError, read_types
from wasmflow.contract.report import Code, ContractReport, ImportReport, Problem, Where
from wasmflow.contract.signatures import LIFECYCLE_INIT, OPERATOR_SIGNATURES, OperatorKind, Signature, world_of
from wasmflow.contract.types import ComponentTypes, Extern, Function, Instance, describe
from wasmflow.contract.wit import NAMESPACE, PACKAGE, VERSION, interface_name

MAGIC = b"\0asm"
CORE_VERSION = b"\x01\x00\x00\x00"
COMPONENT_VERSION = b"\x0d\x00\x01\x00"
DEFAULT_MAX_BYTES = 64 * 2**20


def check_component(
    data: bytes,
    *,
    grants: Iterable[Capability | str] = (),
    strict: bool = False,
    expected_kind: OperatorKind | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    engine: wasmtime.Engine | None = None,
    component: cm.Component | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> ContractReport:
    """Check ``data`` against the contract.

    ``engine`` and ``component`` may be given when the caller has compiled ``data`` already (a worker): the types
    are then read from the compiled component. Otherwise they are read from the bytes, without a compile
    (``decode.read_types``, bounded by ``limits``).
    """
    size = len(data)
    header = _check_header(data, max_bytes)
    if header is not None:
        return ContractReport(size=size, problems=(header,))
    try:
        types = (
            read_compiled(engine, component)
            if engine is not None and component is not None
            else read_types(data, limits)
        )
    except TypeReadError as exc:
        return ContractReport(size=size, problems=(_refused(exc),))
    return check_types(types, size=size, grants=grants, strict=strict, expected_kind=expected_kind)


def check_types(
    types: ComponentTypes,
    *,
    size: int,
    grants: Iterable[Capability | str] = (),
    strict: bool = False,
    expected_kind: OperatorKind | None = None,
) -> ContractReport:
    """Check a component's type model (``types.py``) against the contract; ``size`` is the component's, for the
    report."""
    exports = types.exports
    problems: list[Problem] = []
    if aio.exports_aio(exports) and not _exports_ours(exports):
        report = aio.check_aio_exports(exports, problems, _check_function)
        import_reports = _check_imports(types.imports, grants, strict, problems)
        return ContractReport(
            size=size,
            world=", ".join(report.worlds),
            exports=tuple(exports),
            imports=import_reports,
            problems=tuple(problems),
            aio=report,
        )
    kind, world = _check_exports(exports, problems)
    if expected_kind is not None and kind is not None and kind != expected_kind:
        problems.append(_kind_mismatch(expected_kind, kind))
    import_reports = _check_imports(types.imports, grants, strict, problems)
    return ContractReport(
        size=size,
        operator=kind,
        world=world,
        exports=tuple(exports),
        imports=import_reports,
        problems=tuple(problems),
    )


_REFUSAL_CODES = {Refusal.TRUNCATED: Code.TRUNCATED, Refusal.CORRUPT: Code.CORRUPT, Refusal.TOO_LARGE: Code.TOO_LARGE}


def _refused(exc: TypeReadError) -> Problem:
    what = {Refusal.TRUNCATED: "truncated", Refusal.CORRUPT: "corrupt", Refusal.TOO_LARGE: "over a bound"}
    return Problem(_REFUSAL_CODES[exc.refusal], f"the component is {what[exc.refusal]}: {exc.message}")


#: The problems that depend on the grants, strictness or expected kind, not on the bytes alone.
_GRANT_CODES = frozenset({Code.UNSUPPORTED_IMPORT, Code.NOT_GRANTED, Code.KIND_MISMATCH})


def apply_grants(
    base: ContractReport,
    *,
    grants: Iterable[Capability | str] = (),
    strict: bool = False,
    expected_kind: OperatorKind | None = None,
) -> ContractReport:
    """The report ``check_component`` gives with these grants, strictness and expected kind, derived from ``base``,
    the report of ``check_component(data, max_bytes=...)`` (no grants, not strict, no expected kind).

    Reading the types is what costs (a few tenths of a second for a componentize-py component); the grants only
    change how the imports are judged. So the controller reads each component once, whatever grant sets the
    WasmModules using it ask for, and applies each set here.
    """
    problems = [p for p in base.problems if p.code not in _GRANT_CODES]
    if base.aio is None and expected_kind is not None and base.operator is not None and base.operator != expected_kind:
        problems.append(_kind_mismatch(expected_kind, base.operator))
    imports = _check_imports([i.name for i in base.imports], grants, strict, problems)
    return replace(base, imports=imports, problems=tuple(problems))


def _kind_mismatch(expected: OperatorKind, found: OperatorKind) -> Problem:
    return Problem(
        Code.KIND_MISMATCH,
        f"the WasmModule declares operator {expected.value!r} but the component implements {found.value!r}",
        expected=expected.value,
        found=found.value,
    )


def _exports_ours(exports: Mapping[str, Extern]) -> bool:
    return any(split_name(name)[0].startswith(f"{NAMESPACE}:{PACKAGE}/") for name in exports)


def _check_header(data: bytes, max_bytes: int) -> Problem | None:
    if len(data) > max_bytes:
        return Problem(
            Code.TOO_LARGE,
            f"the component is {len(data)} bytes, over the limit of {max_bytes} bytes",
            expected=f"<= {max_bytes} bytes",
            found=f"{len(data)} bytes",
        )
    if not data.startswith(MAGIC[: len(data)]) or (len(data) >= 4 and data[:4] != MAGIC) or not data:
        return Problem(Code.NOT_WASM, "not WebAssembly: the file does not start with the \\0asm magic number")
    if len(data) < 8:
        return Problem(Code.TRUNCATED, f"the file is truncated: {len(data)} bytes, shorter than a WebAssembly header")
    version = data[4:8]
    if version == CORE_VERSION:
        return Problem(
            Code.CORE_MODULE,
            "this is a core WebAssembly module, not a component: build a component (componentize-py, "
            "jco componentize, or `wasm-tools component new`) that implements a wasmflow:operator world",
            expected="component",
            found="core module",
        )
    if version != COMPONENT_VERSION:
        return Problem(
            Code.CORRUPT, f"unknown WebAssembly binary version {version.hex()}", expected=COMPONENT_VERSION.hex()
        )
    return None


def _check_exports(exports: Mapping[str, Extern], problems: list[Problem]) -> tuple[OperatorKind | None, str | None]:
    operators: list[tuple[OperatorKind, str]] = []
    lifecycle: str | None = None
    for name in exports:
        base, version = split_name(name)
        if not base.startswith(f"{NAMESPACE}:{PACKAGE}/"):
            continue  # toolchain extras, e.g. componentize-py's own `exports` instance
        interface = base.split("/", 1)[1]
        if interface not in {k.value for k in OperatorKind} and interface != "lifecycle":
            continue
        if version is None or not _compatible(version):
            problems.append(
                Problem(
                    Code.INCOMPATIBLE_VERSION,
                    f"{name} is built against contract version {version or '(none)'}, this host speaks "
                    f"{NAMESPACE}:{PACKAGE}@{VERSION}: rebuild against `wasmflow wit`",
                    Where(interface=name),
                    expected=VERSION,
                    found=version,
                )
            )
            continue
        if interface == "lifecycle":
            lifecycle = name
        else:
            operators.append((OperatorKind(interface), name))
    if not operators:
        if not any(p.code is Code.INCOMPATIBLE_VERSION for p in problems):
            found = ", ".join(exports) or "nothing"
            problems.append(
                Problem(
                    Code.NO_OPERATOR,
                    "the component exports no operator interface: it must export one of "
                    + ", ".join(interface_name(k.value) for k in OperatorKind)
                    + f" (it exports {found})",
                    expected="one operator interface",
                    found=found,
                )
            )
        return None, None
    if len(operators) > 1:
        names = ", ".join(n for _, n in operators)
        problems.append(
            Problem(
                Code.MULTIPLE_OPERATORS,
                f"the component exports {len(operators)} operator interfaces ({names}); an operator implements "
                "exactly one",
                expected="one operator interface",
                found=names,
            )
        )
        return None, None
    kind, name = operators[0]
    _check_function(exports[name], name, "process", OPERATOR_SIGNATURES[kind], problems)
    lifecycle_name = lifecycle or interface_name("lifecycle")
    if lifecycle is None:
        problems.append(
            Problem(
                Code.MISSING_FUNCTION,
                f"the component does not export {lifecycle_name}: every operator exports `init`",
                Where(interface=lifecycle_name, function="init"),
                expected=f"init: func(config: {LIFECYCLE_INIT.params[0][1]}) -> {LIFECYCLE_INIT.result}",
            )
        )
    else:
        _check_function(exports[lifecycle], lifecycle, "init", LIFECYCLE_INIT, problems)
    return kind, f"{NAMESPACE}:{PACKAGE}/{world_of(kind)}@{VERSION}"


def _compatible(version: str) -> bool:
    major_minor = ".".join(VERSION.split(".")[:2]) + "."
    return version.startswith(major_minor)


def _check_function(
    extern: Extern,
    interface: str,
    function: str,
    expected: Signature,
    problems: list[Problem],
) -> None:
    if not isinstance(extern, Instance):
        found = "a function" if isinstance(extern, Function) else f"a {extern.kind}"
        problems.append(
            Problem(
                Code.SIGNATURE_MISMATCH,
                f"{interface} must be an exported instance (interface), found {found}",
                Where(interface=interface),
            )
        )
        return
    functions = extern.exports
    if function not in functions:
        problems.append(
            Problem(
                Code.MISSING_FUNCTION,
                f"{interface} does not export function `{function}`",
                Where(interface=interface, function=function),
                expected=_spell(function, expected),
                found=", ".join(functions) or "no functions",
            )
        )
        return
    ty = functions[function]
    if not isinstance(ty, Function):
        problems.append(
            Problem(
                Code.SIGNATURE_MISMATCH,
                f"{interface} exports `{function}` but it is not a function",
                Where(interface=interface, function=function),
            )
        )
        return
    params = [(name, describe(t)) for name, t in ty.params]
    if len(params) != len(expected.params):
        problems.append(
            Problem(
                Code.SIGNATURE_MISMATCH,
                f"{interface} `{function}` takes {len(params)} parameter(s), the contract says {len(expected.params)}",
                Where(interface=interface, function=function),
                expected=_spell(function, expected),
                found=_spell(function, Signature(tuple(params), describe(ty.result))),
            )
        )
    else:
        for (name, found), (want_name, want) in zip(params, expected.params, strict=True):
            if found != want:
                problems.append(
                    Problem(
                        Code.SIGNATURE_MISMATCH,
                        f"{interface} `{function}` parameter `{name}` has the wrong type",
                        Where(interface=interface, function=function, parameter=want_name),
                        expected=want,
                        found=found,
                    )
                )
    result = describe(ty.result) if ty.result is not None else None
    if result != expected.result:
        problems.append(
            Problem(
                Code.SIGNATURE_MISMATCH,
                f"{interface} `{function}` returns the wrong type",
                Where(interface=interface, function=function, parameter="result"),
                expected=expected.result,
                found=result or "nothing",
            )
        )


def _spell(function: str, signature: Signature) -> str:
    params = ", ".join(f"{n}: {t}" for n, t in signature.params)
    result = f" -> {signature.result}" if signature.result else ""
    return f"{function}: func({params}){result}"


def _check_imports(
    imports: Iterable[str],
    grants: Iterable[Capability | str],
    strict: bool,
    problems: list[Problem],
) -> tuple[ImportReport, ...]:
    grant_set = {str(g) for g in grants}
    reports = []
    for name in imports:
        verdict = classify_import(name)
        granted = verdict.granted(grant_set)
        reports.append(
            ImportReport(
                name=name,
                kind=verdict.kind,
                capability=verdict.capability.value if verdict.capability else None,
                granted=granted,
            )
        )
        if verdict.kind is ImportClass.UNKNOWN:
            problems.append(
                Problem(
                    Code.UNSUPPORTED_IMPORT,
                    f"the component imports {name}, which this host cannot provide (it provides WASI 0.2 and "
                    f"{NAMESPACE}:{PACKAGE}@{VERSION} logging)",
                    Where(interface=name),
                    found=name,
                )
            )
        elif strict and not granted:
            capability = verdict.capability.value if verdict.capability else "?"
            problems.append(
                Problem(
                    Code.NOT_GRANTED,
                    f"strict mode: the component imports {name}, which needs capability {capability!r} "
                    "(add it to spec.capabilities, or rebuild without it)",
                    Where(interface=name),
                    expected=f"capability {capability}",
                    found=name,
                )
            )
    return tuple(reports)
