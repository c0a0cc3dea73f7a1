"""engine/ffi.py is the one place that touches wasmtime-py internals, and its assumptions hold for the installed
wasmtime-py: these fail loudly when an upgrade breaks them (the engine would silently fall back to the slow path)."""

from __future__ import annotations

import ast
from importlib import metadata
from pathlib import Path

import wasmtime
import wasmtime.component

from wasmflow.engine import ffi

PACKAGE = Path(ffi.__file__).resolve().parent.parent


def test_every_assumption_of_the_fast_path_holds_for_the_installed_wasmtime() -> None:
    assert ffi.fast_path_problems() == []
    assert ffi.FAST_PATH


def test_the_installed_wasmtime_is_the_one_the_layouts_were_checked_against() -> None:
    # ffi.py's layout table was read from wasmtime-py 50's _bindings.py; re-read it when this changes.
    assert metadata.version("wasmtime").split(".")[0] == "50"


def test_cpython_bytes_are_addressed_without_a_ctypes_call() -> None:
    data = b"\x00payload\xff"
    assert ffi.bytes_address(data) == id(data) + ffi.BYTES_DATA
    assert ffi.string_at(ffi.bytes_address(data), len(data)) == data


def _private_wasmtime_names() -> set[str]:
    """Underscore names wasmtime-py's public classes carry (``_func``, ``_context``, ``_from_ptr``, ``_tagged``...)."""
    names: set[str] = set()
    for module in (wasmtime, wasmtime.component):
        for public in vars(module).values():
            if isinstance(public, type) and public.__module__.startswith("wasmtime"):
                for klass in public.__mro__:
                    if klass.__module__.startswith("wasmtime"):
                        names.update(n for n in (*vars(klass), *getattr(klass, "__annotations__", {})) if _private(n))
    return names


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _type_checking_only(tree: ast.Module) -> set[ast.AST]:
    """Nodes under ``if TYPE_CHECKING:``: annotations only, nothing runs."""
    nodes: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.body:
                nodes.update(ast.walk(child))
    return nodes


def _touches(path: Path, private_names: set[str]) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    annotations_only = _type_checking_only(tree)
    found = []
    for node in ast.walk(tree):
        if node in annotations_only:
            continue
        if isinstance(node, ast.Import):
            found += [
                a.name for a in node.names if a.name.startswith("wasmtime") and any(map(_private, a.name.split(".")))
            ]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("wasmtime"):
            parts = (node.module or "").split(".")
            found += [f"{node.module}.{a.name}" for a in node.names if any(map(_private, [*parts, a.name]))]
        elif isinstance(node, ast.Attribute) and node.attr in private_names:
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                found.append(f"line {node.lineno}: .{node.attr}")
    return found


def test_no_module_but_ffi_touches_wasmtime_internals() -> None:
    private_names = _private_wasmtime_names()
    assert {"_func", "_context", "_from_ptr"} <= private_names  # the probe sees the names ffi.py uses
    touching = {
        str(path.relative_to(PACKAGE)): found
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != Path(ffi.__file__).resolve() and (found := _touches(path, private_names))
    }
    assert touching == {}


def test_the_internals_probe_finds_the_uses_ffi_itself_makes() -> None:
    found = _touches(Path(ffi.__file__).resolve(), _private_wasmtime_names())
    assert "wasmtime._ffi" in found
    assert any(f.endswith(": ._func") for f in found)
    assert any(f.endswith(": ._context") for f in found)
