"""``wasmflow run --graph``: an Azure IoT Operations graph definition, in AIO's YAML, run unchanged with AIO
operators built by componentize-py against both published AIO packages."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

WASMFLOW = str(Path(sys.executable).parent / "wasmflow")
HERE = Path(__file__).resolve().parent / "aio"

MODULES = {
    "wasmflow-tests/f2c:1.0.0": "aio_f2c_map",
    "wasmflow-tests/range:1.0.0": "aio_range_filter",
    "wasmflow-tests/threshold:1.0.0": "aio_threshold_branch",
    "wasmflow-tests/window:1.0.0": "aio_window_delay",
    "wasmflow-tests/average:1.0.0": "aio_average_accumulate",
}


def run_graph(component: Callable[[str], Path], *extra: str) -> subprocess.CompletedProcess[str]:
    args = [WASMFLOW, "run", "--graph", str(HERE / "graph.yaml"), "--input", str(HERE / "input.jsonl"), *extra]
    for reference, name in MODULES.items():
        args += ["--module", f"{reference}={component(name)}"]
    return subprocess.run(args, capture_output=True, text=True, check=False, timeout=880)


@pytest.mark.timeout(900)
def test_the_aio_graph_gives_exactly_the_expected_output(component: Callable[[str], Path]) -> None:
    result = run_graph(component)
    assert result.returncode == 0, result.stderr
    outputs: list[dict[str, Any]] = [json.loads(line) for line in result.stdout.splitlines()]
    # 50 F, 68 F fall in the window ending at 10 s (10 and 20 C), 104 F (40 C) is an alert, 1000 F (537.8 C) is
    # filtered out, 59 F and 41 F fall in the window ending at 20 s, which closes when the 21 s reading arrives;
    # 212 F (100 C) is an alert. concatenate merges alerts and windows in timestamp order.
    assert [(o["payload"], o["timestampMs"]) for o in outputs] == [
        ('{"value":40.0,"unit":"C"}', 2000),
        ('{"count":2,"min":10.0,"max":20.0,"sum":30.0}', 10000),
        ('{"count":2,"min":5.0,"max":15.0,"sum":20.0}', 20000),
        ('{"value":100.0,"unit":"C"}', 21000),
    ]
    assert {o["sink"] for o in outputs} == {"sink"}
    assert {o["topic"] for o in outputs} == {"plant/t1"}


def test_a_graph_module_without_a_component_is_named(tmp_path: Path) -> None:
    result = subprocess.run(
        [WASMFLOW, "run", "--graph", str(HERE / "graph.yaml"), "--input", str(HERE / "input.jsonl")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 1
    assert "no component for module 'wasmflow-tests/f2c:1.0.0'" in result.stderr
    assert "operation module-f2c/map" in result.stderr


@pytest.mark.timeout(900)
def test_a_module_of_the_wrong_operation_is_refused(component: Callable[[str], Path]) -> None:
    result = run_graph(component, "--module", f"module-f2c/map={component('aio_range_filter')}")
    assert result.returncode == 1
    assert "exports no AIO map operator (it exports filter)" in result.stderr
