"""Build the test components with the real toolchains, cached by content.

Each artefact is keyed by the sha256 of its sources, the WIT contract and the toolchain version, and stored in
``$WASMFLOW_CACHE/components/``; a second session (or a CI run on the same machine) reuses it. Writes are atomic
and guarded by a file lock, so parallel test processes never see half a file.

Toolchains: componentize-py and wasm-tools come from the dev dependencies (PyPI), componentize-js from npm through
``hack/install-toolchains.sh``.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
WIT_DIR = ROOT / "controller" / "wasmflow" / "contract" / "wit"
AIO_V1_0 = WIT_DIR / "aio" / "tinykube-graph-1.0.0"
AIO_V1_1 = WIT_DIR / "aio" / "wasm-graph-1.1.0"
INVOKER_WIT = HERE / "aio" / "invoker_map" / "wit"
UNKNOWN_IMPORT_WIT = HERE / "aio" / "unknown_import_filter" / "wit"
RULES_WIT = WIT_DIR / "rules"
MAP_CUSTOM_WIT = WIT_DIR / "aio" / "map-custom" / "custom.wit"
BIN = Path(sys.executable).parent


def cache_dir() -> Path:
    base = os.environ.get("WASMFLOW_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wasmflow"
    )
    path = Path(base) / "components"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Source:
    """How to build one test component."""

    lang: str  # python | js | wat (component text) | core-wat (core module + embed + new) | wit-dummy (a dummy core
    # module wasm-tools generates for the WIT world: right types, every function traps; for contract checks)
    path: Path
    world: str = ""
    #: The WIT package to build against: ours, or one of the AIO packages (tests/components/aio).
    wit: Path = WIT_DIR


SOURCES: dict[str, Source] = {
    # componentize-py, one per operator kind, plus the hostile one
    "identity_map": Source("python", HERE / "python" / "identity_map", "map-operator"),
    "f2c_map": Source("python", HERE / "python" / "f2c_map", "map-operator"),
    "range_filter": Source("python", HERE / "python" / "range_filter", "filter-operator"),
    "threshold_branch": Source("python", HERE / "python" / "threshold_branch", "branch-operator"),
    "average_accumulate": Source("python", HERE / "python" / "average_accumulate", "accumulate-operator"),
    "hostile_map": Source("python", HERE / "python" / "hostile_map", "map-operator"),
    # componentize-js (npm)
    "js_f2c_map": Source("js", HERE / "js" / "f2c_map", "map-operator"),
    "js_fetch_map": Source("js", HERE / "js" / "fetch_map", "map-operator"),
    # wasm-tools: a hand-written canonical-ABI identity map, and the precise negative cases
    "wat_identity_map": Source("core-wat", HERE / "wat" / "identity_map_core.wat", "map-operator"),
    "wrong_signature": Source("wat", HERE / "wat" / "wrong_signature.wat"),
    "missing_function": Source("wat", HERE / "wat" / "missing_function.wat"),
    "extra_operator": Source("wat", HERE / "wat" / "extra_operator.wat"),
    "future_version": Source("wat", HERE / "wat" / "future_version.wat"),
    "unknown_import": Source("wat", HERE / "wat" / "unknown_import.wat"),
    "core_module": Source("wat", HERE / "wat" / "core_module.wat"),
    "no_operator": Source("wat", HERE / "wat" / "no_operator.wat"),
    # componentize-py against Azure IoT Operations' WIT, both published versions
    "aio_f2c_map": Source("python", HERE / "aio" / "f2c_map", "map-impl", AIO_V1_0),
    "aio_range_filter": Source("python", HERE / "aio" / "range_filter", "filter-impl", AIO_V1_1),
    "aio_threshold_branch": Source("python", HERE / "aio" / "threshold_branch", "branch-impl", AIO_V1_1),
    "aio_window_delay": Source("python", HERE / "aio" / "window_delay", "delay-impl", AIO_V1_0),
    "aio_average_accumulate": Source("python", HERE / "aio" / "average_accumulate", "accumulate-impl", AIO_V1_1),
    "aio_counting_map": Source("python", HERE / "aio" / "counting_map", "map-impl", AIO_V1_1),
    # an AIO map that also imports the command invoker (its own world, AIO's package as a dependency)
    "aio_invoker_map": Source("python", HERE / "aio" / "invoker_map", "invoker-map", INVOKER_WIT),
    # wasm-tools dummies (types only): an AIO filter and nothing else, and one that imports what no host provides
    "aio_dummy_filter": Source("wit-dummy", AIO_V1_1, "filter-impl", AIO_V1_1),
    "aio_unknown_import_filter": Source("wit-dummy", UNKNOWN_IMPORT_WIT, "unknown-import-filter", UNKNOWN_IMPORT_WIT),
    # rules for the composed pattern (wasmflow:map-rules) in Python and JavaScript, and an AIO team's map:custom rules
    "rules_scale_map": Source("python", HERE / "rules" / "scale_map_py", "map-rules", RULES_WIT / "map.wit"),
    "rules_identity_map": Source("python", HERE / "rules" / "identity_map_py", "map-rules", RULES_WIT / "map.wit"),
    "rules_scale_map_js": Source("js", HERE / "rules" / "scale_map_js", "map-rules", RULES_WIT / "map.wit"),
    "custom_f2c_rules": Source("python", HERE / "rules" / "custom_f2c_py", "custom-provider", MAP_CUSTOM_WIT),
}


def _files(path: Path) -> list[Path]:
    return sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file())


def _wit_files(package: Path) -> list[Path]:
    """The files of one WIT package directory (not the AIO packages kept below ours), or the one file given."""
    return [package] if package.is_file() else sorted(package.glob("*.wit"))


@functools.cache
def _toolchain_version(lang: str) -> str:
    if lang == "python":
        return _run([str(BIN / "componentize-py"), "--version"]).strip()
    if lang == "js":
        return _js_prefix().name
    return _run([str(BIN / "wasm-tools"), "--version"]).strip()


def _key(name: str, source: Source) -> str:
    digest = hashlib.sha256()
    digest.update(f"{name}\0{source.lang}\0{source.world}\0{_toolchain_version(source.lang)}\0".encode())
    for path in [*_files(source.path), *_wit_files(source.wit)]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:24]


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-4000:]}"
        )
    return result.stdout


@functools.cache
def _js_prefix() -> Path:
    jco = _run([str(ROOT / "hack" / "install-toolchains.sh"), "--print-path", "jco"]).strip().splitlines()[-1]
    return Path(jco).parent.parent.parent


def _compile(source: Source, out: Path, work: Path) -> None:
    wasm_tools = str(BIN / "wasm-tools")
    if source.lang == "python":
        _run(
            [
                str(BIN / "componentize-py"),
                "-d",
                str(source.wit),
                "-w",
                source.world,
                "componentize",
                "app",
                "-o",
                str(out),
            ],
            cwd=source.path,
        )
    elif source.lang == "js":
        # componentize-js resolves the WIT inside its own sandbox: give it a copy next to the source, by relative path.
        if source.wit.is_file():
            (work / "wit").mkdir()
            shutil.copy(source.wit, work / "wit" / source.wit.name)
        else:
            shutil.copytree(WIT_DIR, work / "wit")
        shutil.copy(source.path / "app.js", work / "app.js")
        cli = _js_prefix() / "node_modules" / ".bin" / "componentize-js"
        _run([str(cli), "--wit", "wit", "--world-name", source.world, "-o", str(out), "app.js"], cwd=work)
    elif source.lang == "wat":
        _run([wasm_tools, "parse", str(source.path), "-o", str(out)])
    elif source.lang == "core-wat":
        core, embedded = work / "core.wasm", work / "embedded.wasm"
        _run([wasm_tools, "parse", str(source.path), "-o", str(core)])
        _run([wasm_tools, "component", "embed", str(WIT_DIR), "--world", source.world, str(core), "-o", str(embedded)])
        _run([wasm_tools, "component", "new", str(embedded), "-o", str(out)])
    elif source.lang == "wit-dummy":
        embedded = work / "embedded.wasm"
        wit, world = str(source.path), source.world
        _run([wasm_tools, "component", "embed", "--dummy", wit, "--world", world, "-o", str(embedded)])
        _run([wasm_tools, "component", "new", str(embedded), "-o", str(out)])
    else:
        raise ValueError(f"unknown component language {source.lang!r}")


def build(name: str) -> Path:
    """The path of the built component ``name`` (building it once per content change)."""
    source = SOURCES[name]
    target = cache_dir() / f"{name}-{_key(name, source)}.wasm"
    if target.exists():
        return target
    with (cache_dir() / f".{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        with tempfile.TemporaryDirectory(prefix=f"build-{name}-") as tmp:
            work = Path(tmp)
            out = work / "out.wasm"
            _compile(source, out, work)
            staged = target.with_suffix(".tmp")
            shutil.copyfile(out, staged)
            staged.replace(target)
    return target


def build_project(directory: Path) -> Path:
    """Build a `wasmflow new`-style project (the examples) with `wasmflow build`, cached by its sources."""
    digest = hashlib.sha256()
    for path in [
        *_files(directory / "app.py"),
        *_files(directory / "app.js"),
        *_files(directory / "operator.json"),
        *_wit_files(WIT_DIR),
    ]:
        if path.exists():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    target = cache_dir() / f"project-{directory.name}-{digest.hexdigest()[:24]}.wasm"
    if target.exists():
        return target
    with (cache_dir() / f".project-{directory.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.exists():
            _run([str(BIN / "wasmflow"), "build", str(directory)])
            name = json.loads((directory / "operator.json").read_text())["name"]
            staged = target.with_suffix(".tmp")
            shutil.copyfile(directory / "build" / f"{name}.wasm", staged)
            staged.replace(target)
    return target


if __name__ == "__main__":
    for component in sys.argv[1:] or list(SOURCES):
        print(build(component))
