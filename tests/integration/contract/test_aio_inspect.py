"""``wasmflow inspect`` recognises Azure IoT Operations components and says which AIO world they implement."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.integration.contract.test_inspect_cli import run


def test_inspect_names_the_aio_world_and_the_process_variant(component: Callable[[str], Path]) -> None:
    result = run("inspect", str(component("aio_f2c_map")))
    assert result.returncode == 0, result.stderr
    assert "world      tinykube-graph:processor/map-impl@1.0.0" in result.stdout
    assert "map (tinykube-graph:processor/map@1.0.0, process returns value)" in result.stdout


def test_inspect_json_lists_the_aio_operators(component: Callable[[str], Path]) -> None:
    result = run("inspect", "--json", str(component("aio_threshold_branch")))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["aio"] == [
        {
            "operation": "branch",
            "export": "wasm-graph:processor/branch@1.1.0",
            "world": "wasm-graph:processor/branch-impl@1.1.0",
            "returns": "result",
        }
    ]
    provided = {i["name"]: i["class"] for i in report["imports"] if i["name"].startswith("wasm-graph:")}
    assert provided["wasm-graph:processor/state-store@1.1.0"] == "contract"
