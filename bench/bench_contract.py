"""Figure 7: the contract check of an 18 MB componentize-py component (what the controller and ``wasmflow inspect``
run on every module).

* ours: ``check_component`` on the bytes, from nothing: a fresh check engine (Cranelift without optimisation),
  compile, type introspection, the comparison with the contract.
* ``wasm-tools validate``: parse and validate only, no compile: the floor of reading the bytes at all.
* ``wasmtime compile, default settings``: what the same check would cost with a default engine.
* the worker's variant: the check given the component the engine compiled already (type introspection only).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import wasmtime
from tests.components.build import build
from wasmtime.component import Component

from bench.report import Sample
from wasmflow.api.kinds import OperatorKind
from wasmflow.contract.check import check_component

WASM_TOOLS = str(Path(sys.executable).parent / "wasm-tools")
RUNS = 3
COMPILE_RUNS = 2


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _check(data: bytes) -> None:
    report = check_component(data, expected_kind=OperatorKind.MAP)
    if not report.valid:
        raise AssertionError(f"the benchmark component fails the contract: {report.problems}")


def run() -> list[dict[str, Any]]:
    path = build("identity_map")
    data = path.read_bytes()
    size_mb = len(data) / 1e6
    ours, validate, compile_default = [], [], []
    engine = wasmtime.Engine()
    compiled: list[Component] = []
    for run in range(RUNS):
        ours.append(_timed(lambda: _check(data)))
        validate.append(_timed(lambda: subprocess.run([WASM_TOOLS, "validate", str(path)], check=True)))
        if run < COMPILE_RUNS:  # the most expensive comparator: fewer runs
            compile_default.append(_timed(lambda: compiled.append(Component(engine, data))))
    component = compiled[-1]
    given_compiled = [
        _timed(lambda: check_component(data, expected_kind=OperatorKind.MAP, engine=engine, component=component))
        for _ in range(RUNS)
    ]
    return [
        {
            "name": f"7. contract check, {size_mb:.1f} MB componentize-py component",
            "unit": "s",
            "ours": Sample.of(ours),
            "comparators": {
                "wasm-tools validate (no compile)": Sample.of(validate),
                "wasmtime compile, default settings": Sample.of(compile_default),
            },
            "note": "fresh engine per check (opt level none); ratio vs the compile: what skipping optimisation saves",
        },
        {
            "name": f"7. contract check, {size_mb:.1f} MB component already compiled (worker)",
            "unit": "s",
            "ours": Sample.of(given_compiled),
            "comparators": {"check from the bytes": Sample.of(ours)},
            "note": "type introspection and comparison only",
        },
    ]
