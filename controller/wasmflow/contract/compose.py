"""Composition (DESIGN.md 2b): fuse a platform layer with business rules, and check the result before it is used.

A *socket* component imports an interface that *plug* components export; the composer links them into one
component whose remaining imports are the socket's other imports and the plugs' own. wasmflow does not link
components itself: it runs ``wasm-tools compose`` from the ``wasm-tools`` wheel the project installs (``wasm-tools``
beside the Python interpreter, in the venv and in the image), which is what Azure's composition sample uses too.
(``wasm-tools`` now points to ``wac`` for new work; wac has no wheel or npm package to install it the way the
project installs its tools, and ``compose`` below is the one place to change when it has.)

Before composing, every interface a plug provides is compared with what the socket imports under the same name,
function by function; after composing, the output is checked against the operator contract (``check_component``)
and refused, not written, when it does not fit. Every mismatch names the interface, the function and the types on
both sides.

The platform layers wasmflow ships (``Adapter``) are WAT files in ``adapters/``, turned into components at first use
with ``wasm-tools component embed`` + ``component new`` and kept in the per-user cache, keyed by their sources and
the wasm-tools version: nothing binary is committed, and a fresh clone, a wheel and the image all build the same.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import wasmtime
from wasmtime import component as cm

from wasmflow.contract import parts
from wasmflow.contract.capabilities import restrict_features
from wasmflow.contract.check import check_component
from wasmflow.contract.compiled import value_type
from wasmflow.contract.report import Code, ContractReport, Problem, Where
from wasmflow.contract.signatures import OperatorKind
from wasmflow.contract.types import describe
from wasmflow.contract.wit import WIT_DIR, rules_interface_name, rules_wit_file
from wasmflow.errors import ContractError, WasmflowError

ADAPTERS_DIR = Path(__file__).resolve().parent / "adapters"
#: The package of the adapters' worlds (``adapters/wit/adapters.wit``).
ADAPTERS_PACKAGE = "wasmflow:adapters@0.1.0"
AIO_WIT_DIR = WIT_DIR / "aio" / "wasm-graph-1.1.0"
MAP_CUSTOM_WIT = WIT_DIR / "aio" / "map-custom" / "custom.wit"
MAP_CUSTOM_INTERFACE = "map:custom/custom"
#: How long one wasm-tools run may take (a composition of an 18 MB componentize-py component takes about 1 s).
TOOL_TIMEOUT_SECONDS = 300.0
#: Largest component accepted as a socket or a plug, as the contract check's default.
MAX_COMPONENT_BYTES = 64 * 2**20


class CompositionError(WasmflowError):
    """The composer is missing or refused the parts (a contract mismatch is a ContractError instead)."""


@dataclass(frozen=True)
class Adapter:
    """A platform layer wasmflow ships: exports an operator world (``target``), imports the rules of its kind."""

    name: str
    kind: OperatorKind
    #: ``wasmflow`` (our operator world) or ``aio`` (``wasm-graph:processor@1.1.0``).
    target: str
    #: The interface the rules component must export.
    rules: str

    @property
    def wat(self) -> Path:
        return ADAPTERS_DIR / f"{self.name}.wat"

    @property
    def world(self) -> str:
        return f"{self.name}-adapter" if self.target == "wasmflow" else self.name


def _own(kind: OperatorKind) -> Adapter:
    return Adapter(kind.value, kind, "wasmflow", rules_interface_name(kind.value))


#: ``(kind, world)`` -> adapter. ``world``: ``wasmflow`` (default), ``aio-custom`` (the map:custom sample's rules).
ADAPTERS: Mapping[tuple[str, str], Adapter] = {
    **{(k.value, "wasmflow"): _own(k) for k in OperatorKind},
    ("map", "aio-custom"): Adapter("aio-map-custom", OperatorKind.MAP, "aio", MAP_CUSTOM_INTERFACE),
}


def find_adapter(kind: str, world: str = "wasmflow") -> Adapter:
    """The shipped adapter for ``kind`` in ``world``; ConfigError-like CompositionError listing what exists."""
    adapter = ADAPTERS.get((kind, world))
    if adapter is None:
        known = ", ".join(f"{k} --world {w}" for k, w in sorted(ADAPTERS))
        raise CompositionError(f"wasmflow ships no adapter for a {kind} operator in world {world!r} (it has: {known})")
    return adapter


def wasm_tools() -> Path:
    """The wasm-tools binary: ``$WASMFLOW_WASM_TOOLS``, else the one beside this Python (the venv's, the image's),
    else the first on PATH."""
    configured = os.environ.get("WASMFLOW_WASM_TOOLS")
    if configured:
        return Path(configured)
    beside = Path(sys.executable).parent / "wasm-tools"
    if beside.is_file():
        return beside
    found = shutil.which("wasm-tools")
    if found is None:
        raise CompositionError(
            "wasm-tools is not installed: it comes with wasmflow's Python dependencies (the wasm-tools wheel); "
            "reinstall wasmflow, or set WASMFLOW_WASM_TOOLS to a wasm-tools binary"
        )
    return Path(found)


def _run(args: Sequence[str | Path], what: str) -> str:
    try:
        done = subprocess.run(
            [str(a) for a in args], capture_output=True, text=True, check=False, timeout=TOOL_TIMEOUT_SECONDS
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CompositionError(f"{what}: cannot run {args[0]}: {exc}") from exc
    if done.returncode != 0:
        # wasm-tools prints "error: <what>" then the causes; its deprecation notice for compose is noise here.
        lines = [line for line in done.stderr.splitlines() if line.strip() and "deprecated" not in line]
        lines = [line for line in lines if "wac" not in line]
        raise CompositionError(f"{what}: wasm-tools failed: " + " ".join(line.strip() for line in lines)[:2000])
    return done.stdout


def cache_root() -> Path:
    """The per-user cache (``$WASMFLOW_CACHE``, by default ``${XDG_CACHE_HOME:-~/.cache}/wasmflow``)."""
    base = os.environ.get("WASMFLOW_CACHE")
    if base:
        return Path(base)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wasmflow"


def _adapter_wit(work: Path) -> Path:
    """A WIT directory resolving the adapters' worlds: their package, with ours and AIO's as dependencies."""
    wit = work / "wit"
    (wit / "deps" / "operator").mkdir(parents=True)
    shutil.copyfile(ADAPTERS_DIR / "wit" / "adapters.wit", wit / "adapters.wit")
    shutil.copyfile(WIT_DIR / "operator.wit", wit / "deps" / "operator" / "operator.wit")
    for kind in OperatorKind:
        (wit / "deps" / f"{kind.value}-rules").mkdir()
        shutil.copyfile(rules_wit_file(kind.value), wit / "deps" / f"{kind.value}-rules" / "rules.wit")
    (wit / "deps" / "wasm-graph").mkdir()
    shutil.copyfile(AIO_WIT_DIR / "processor.wit", wit / "deps" / "wasm-graph" / "processor.wit")
    (wit / "deps" / "map-custom").mkdir()
    shutil.copyfile(MAP_CUSTOM_WIT, wit / "deps" / "map-custom" / "custom.wit")
    return wit


def _adapter_sources(adapter: Adapter) -> list[Path]:
    return [
        adapter.wat,
        ADAPTERS_DIR / "wit" / "adapters.wit",
        WIT_DIR / "operator.wit",
        *(rules_wit_file(k.value) for k in OperatorKind),
        AIO_WIT_DIR / "processor.wit",
        MAP_CUSTOM_WIT,
    ]


def adapter_component(adapter: Adapter) -> bytes:
    """The adapter as a component, built from its WAT at first use and cached by content."""
    tool = wasm_tools()
    digest = hashlib.sha256(_run([tool, "--version"], "wasm-tools --version").encode())
    for path in _adapter_sources(adapter):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    target = cache_root() / "adapters" / f"{adapter.name}-{digest.hexdigest()[:24]}.wasm"
    if target.is_file():
        return target.read_bytes()
    with tempfile.TemporaryDirectory(prefix=f"wasmflow-adapter-{adapter.name}-") as tmp:
        work = Path(tmp)
        wit = _adapter_wit(work)
        what = f"building the {adapter.name} adapter"
        _run([tool, "parse", adapter.wat, "-o", work / "core.wasm"], what)
        _run(
            [tool, "component", "embed", wit, "--world", adapter.world, work / "core.wasm", "-o", work / "e.wasm"], what
        )
        _run([tool, "component", "new", work / "e.wasm", "-o", work / "c.wasm"], what)
        marker = {"adapter": adapter.name, "kind": adapter.kind.value, "target": adapter.target, "rules": adapter.rules}
        data = (work / "c.wasm").read_bytes() + parts.json_section(parts.ADAPTER_SECTION, marker)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.{os.getpid()}")
    staged.write_bytes(data)
    staged.replace(target)  # atomic: a concurrent first use sees the whole file or none
    return data


# -- checking the parts against each other ----------------------------------------------------------------------


def _check_engine() -> wasmtime.Engine:
    """An engine to read the two sides' types (compiled, never run, unoptimised), refusing what workers refuse."""
    config = wasmtime.Config()
    config.cranelift_opt_level = "none"
    restrict_features(config)
    return wasmtime.Engine(config)


def _component(engine: wasmtime.Engine, data: bytes, role: str) -> cm.Component:
    if len(data) > MAX_COMPONENT_BYTES:
        raise ContractError(f"the {role} is {len(data)} bytes, more than the {MAX_COMPONENT_BYTES} accepted")
    try:
        return cm.Component(engine, data)
    except wasmtime.WasmtimeError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise ContractError(f"the {role} is not a valid component: {lines[-1] if lines else exc}") from exc


def _functions(engine: wasmtime.Engine, extern: object) -> dict[str, cm.FuncType] | None:
    instance = getattr(extern, "ty", None)
    if not isinstance(instance, cm.ComponentInstanceType):
        return None
    return {n: e.ty for n, e in instance.exports(engine).items() if isinstance(e.ty, cm.FuncType)}


def _spell(name: str, ty: cm.FuncType) -> str:
    params = ", ".join(f"{n}: {describe(value_type(t))}" for n, t in ty.params)
    result = f" -> {describe(value_type(ty.result))}" if ty.result is not None else ""
    return f"{name}: func({params}){result}"


def plug_problems(socket: bytes, plugs: Sequence[bytes], *, socket_role: str = "platform layer") -> list[Problem]:
    """How the plugs fail to provide what the socket imports from them, function by function.

    A plug must export at least one interface the socket imports; for each such interface, every function the
    socket imports must be exported with the same parameter and result types (``expected`` is the socket's side,
    ``found`` the plug's).
    """
    engine = _check_engine()
    socket_imports = _component(engine, socket, socket_role).type.imports(engine)
    problems: list[Problem] = []
    for index, plug in enumerate(plugs):
        role = f"rules component #{index + 1}" if len(plugs) > 1 else "rules component"
        exports = _component(engine, plug, role).type.exports(engine)
        shared = sorted(set(exports) & set(socket_imports))
        if not shared:
            wanted = sorted(n for n in socket_imports if _functions(engine, socket_imports[n]))
            problems.append(
                Problem(
                    Code.NO_OPERATOR,
                    f"the {role} exports none of the interfaces the {socket_role} imports",
                    expected=", ".join(wanted) or "nothing to plug",
                    found=", ".join(sorted(exports)) or "no exports",
                )
            )
            continue
        for interface in shared:
            problems += _interface_problems(engine, interface, socket_imports[interface], exports[interface], role)
    return problems


def _interface_problems(
    engine: wasmtime.Engine, interface: str, imported: object, exported: object, role: str
) -> list[Problem]:
    wanted, offered = _functions(engine, imported), _functions(engine, exported)
    if wanted is None or offered is None:
        return [Problem(Code.SIGNATURE_MISMATCH, f"{interface} must be an interface on both sides", Where(interface))]
    problems: list[Problem] = []
    for name, ty in sorted(wanted.items()):
        where = Where(interface=interface, function=name)
        if name not in offered:
            problems.append(
                Problem(
                    Code.MISSING_FUNCTION,
                    f"the {role} does not export `{name}` in {interface}",
                    where,
                    expected=_spell(name, ty),
                    found=", ".join(_spell(n, t) for n, t in sorted(offered.items())) or "no functions",
                )
            )
            continue
        found = offered[name]
        if _spell(name, ty) != _spell(name, found):
            problems.append(
                Problem(
                    Code.SIGNATURE_MISMATCH,
                    f"{interface} `{name}`: the platform layer imports one type, the {role} exports another",
                    where,
                    expected=_spell(name, ty),
                    found=_spell(name, found),
                )
            )
    return problems


def describe_problems(problems: Sequence[Problem]) -> str:
    """Every problem on its own line, with both sides' types: what a refused composition says."""
    lines = []
    for p in problems:
        line = f"[{p.code.value}] {p.where}: {p.message}"
        if p.expected is not None or p.found is not None:
            line += f"\n    platform layer expects: {p.expected}\n    rules provide:          {p.found}"
        lines.append(line)
    return "\n".join(lines)


# -- composing -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Composed:
    """A composed component and the contract report it passed."""

    data: bytes
    report: ContractReport
    record: dict[str, object]


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def compose(
    socket: bytes,
    plugs: Sequence[bytes],
    *,
    expected_kind: OperatorKind | None = None,
    record: Mapping[str, object] | None = None,
) -> Composed:
    """``socket`` with ``plugs`` linked into its imports, checked against the contract.

    ContractError (naming interface, function and both types) when a plug does not fit the socket or the result
    does not fit the operator contract; CompositionError when the composer fails for another reason.
    """
    if not plugs:
        raise CompositionError("nothing to compose: give at least one rules component (plug)")
    problems = plug_problems(socket, plugs)
    if problems:
        raise ContractError("the parts do not fit together:\n" + describe_problems(problems))
    with tempfile.TemporaryDirectory(prefix="wasmflow-compose-") as tmp:
        work = Path(tmp)
        (work / "socket.wasm").write_bytes(socket)
        args: list[str | Path] = [wasm_tools(), "compose", work / "socket.wasm"]
        for index, plug in enumerate(plugs):
            path = work / f"plug{index}.wasm"
            path.write_bytes(plug)
            args += ["-d", path]
        _run([*args, "-o", work / "out.wasm"], "composing")
        composed = (work / "out.wasm").read_bytes()
    full_record: dict[str, object] = {
        "socket": _digest(socket),
        "plugs": [_digest(p) for p in plugs],
        "composer": _run([wasm_tools(), "--version"], "wasm-tools --version").strip(),
        **(record or {}),
    }
    data = composed + parts.json_section(parts.COMPOSITION_SECTION, full_record)
    report = check_component(data, expected_kind=expected_kind)
    if not report.valid:
        raise ContractError("the composed component does not fit the contract:\n" + describe_problems(report.problems))
    return Composed(data, report, full_record)


def compose_rules(rules: bytes, kind: str, world: str = "wasmflow") -> Composed:
    """``rules`` fused with the adapter wasmflow ships for ``kind`` in ``world``."""
    adapter = find_adapter(kind, world)
    return compose(
        adapter_component(adapter),
        [rules],
        expected_kind=adapter.kind if adapter.target == "wasmflow" else None,
        record={"adapter": adapter.name, "kind": adapter.kind.value, "target": adapter.target, "rules": adapter.rules},
    )
