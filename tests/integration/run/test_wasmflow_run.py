"""``wasmflow run`` end to end: real components, a real engine, JSON Lines in and out."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

WASMFLOW = str(Path(sys.executable).parent / "wasmflow")
ROOT = Path(__file__).resolve().parents[3]


def dataflow(nodes: list[dict[str, Any]], edges: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "wasmflow.io/v1alpha1",
        "kind": "Dataflow",
        "metadata": {"name": "t"},
        "spec": {"endpoints": {"b": {"mqtt": {"url": "mqtt://broker:1883"}}}, "nodes": nodes, "edges": edges, **spec},
    }


def run(
    tmp_path: Path,
    manifest: dict[str, Any],
    modules: dict[str, Path],
    lines: list[dict[str, Any]],
    wasm_modules: tuple[dict[str, Any], ...] = (),
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    (tmp_path / "df.yaml").write_text(yaml.safe_dump_all([manifest, *wasm_modules]))
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    args = [WASMFLOW, "run", str(tmp_path / "df.yaml"), "--input", str(tmp_path / "in.jsonl"), "--output", "-"]
    for name, path in modules.items():
        args += ["--module", f"{name}={path}"]
    result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=600)
    outputs = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return result, outputs


SRC = {"name": "in", "type": "source", "endpoint": "b", "topic": "t"}


def test_a_pipeline_of_every_kind_gives_exactly_the_expected_output(
    tmp_path: Path, component: Callable[[str], Path]
) -> None:
    manifest = dataflow(
        [
            SRC,
            {"name": "c", "type": "map", "module": "f2c", "configuration": {"precision": "1"}},
            {"name": "r", "type": "filter", "module": "range"},
            {"name": "hot", "type": "branch", "module": "threshold", "configuration": {"threshold": "80"}},
            {"name": "avg", "type": "accumulate", "module": "average", "window": {"count": 2}},
            {"name": "alerts", "type": "sink", "endpoint": "b", "topic": "alerts"},
            {"name": "averages", "type": "sink", "endpoint": "b", "topic": "averages"},
        ],
        [
            {"from": "in", "to": "c"},
            {"from": "c", "to": "r"},
            {"from": "r", "to": "hot"},
            {"from": "hot", "to": "alerts", "arm": True},
            {"from": "hot", "to": "avg", "arm": False},
            {"from": "avg", "to": "averages"},
        ],
    )
    fahrenheit = [212, 32, 500, 194, 50, 68]
    lines = [
        {"topic": f"s/{i}", "payload": json.dumps({"value": f}), "timestampMs": i} for i, f in enumerate(fahrenheit)
    ]
    modules = {
        "f2c": component("f2c_map"),
        "range": component("range_filter"),
        "threshold": component("threshold_branch"),
        "average": component("average_accumulate"),
    }
    result, outputs = run(tmp_path, manifest, modules, lines)
    assert result.returncode == 0, result.stderr
    got = [(o["sink"], json.loads(o["payload"])) for o in outputs]
    assert got == [
        ("alerts", {"value": 100.0, "unit": "C"}),
        ("alerts", {"value": 90.0, "unit": "C"}),
        ("averages", {"count": 2, "sum": 10.0, "avg": 5.0}),
        ("averages", {"count": 1, "sum": 20.0, "avg": 20.0}),
    ]
    assert "r " in result.stderr and "dropped" in result.stderr  # the summary table


def test_hostile_operators_fail_only_their_own_messages(tmp_path: Path, component: Callable[[str], Path]) -> None:
    manifest = dataflow(
        [
            SRC,
            {"name": "h", "type": "map", "module": "hostile"},
            {"name": "out", "type": "sink", "endpoint": "b", "topic": "out"},
        ],
        [{"from": "in", "to": "h"}, {"from": "h", "to": "out"}],
        errorPolicy={"action": "deadLetter", "endpoint": "b", "topic": "dead"},
    )
    behaviours = ["first", "loop", "alloc", "trap", "err", "file", "env", "last"]
    lines = [{"topic": "t", "payload": b} for b in behaviours]
    # The deadline is generous so that, however loaded the machine, "alloc" meets the memory cap before the deadline
    # (the source below is overridden by --module; the manifest only brings the limits).
    module = {
        "apiVersion": "wasmflow.io/v1alpha1",
        "kind": "WasmModule",
        "metadata": {"name": "hostile"},
        "spec": {
            "source": {"oci": {"reference": "registry.test/hostile:1"}},
            "operator": "map",
            "limits": {"memory": "64Mi", "timeoutPerMessage": "3s"},
        },
    }
    result, outputs = run(tmp_path, manifest, {"hostile": component("hostile_map")}, lines, (module,))
    assert result.returncode == 0, result.stderr
    delivered = [o["payload"] for o in outputs if o["sink"] == "out"]
    assert delivered[0] == "first"
    assert delivered[-1] == "last"
    assert "denied: file FileNotFoundError" in delivered
    assert "env: " in delivered
    dead = {
        json.loads(o["payload"])["payload"]: json.loads(o["payload"])
        for o in outputs
        if o["sink"] == "dead-letter:dead"
    }
    assert dead["loop"]["kind"] == "timeout"
    assert dead["alloc"]["kind"] == "memory"
    assert dead["trap"]["kind"] == "trap"
    assert dead["err"]["kind"] == "error"
    assert dead["err"]["error"] == "refused on purpose"
    assert all(d["node"] == "h" for d in dead.values())


def test_the_example_plant_pipeline_runs(tmp_path: Path) -> None:
    from tests.components.build import build_project  # noqa: PLC0415 - only this test builds the examples

    examples = ROOT / "examples"
    modules = {
        name: build_project(examples / "operators" / name)
        for name in ("enrich", "to-celsius", "in-range", "overheat", "window-average")
    }
    args = [
        WASMFLOW,
        "run",
        str(examples / "manifests" / "dataflow.yaml"),
        "--input",
        str(examples / "data" / "telemetry.jsonl"),
    ]
    for name, path in modules.items():
        args += ["--module", f"{name}={path}"]
    result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=900)
    assert result.returncode == 0, result.stderr
    outputs = [json.loads(line) for line in result.stdout.splitlines()]
    alerts = [json.loads(o["payload"]) for o in outputs if o["sink"] == "alerts"]
    assert [a["asset"] for a in alerts] == ["oven-2", "oven-2", "oven-2"]
    assert all(a["site"] == "lyon" and a["unit"] == "C" and a["value"] > 80 for a in alerts)
    averages = [json.loads(o["payload"]) for o in outputs if o["sink"] == "averages"]
    assert sum(a["count"] for a in averages) == 55  # 60 readings - 2 sensor faults - 3 alerts


def test_a_bad_manifest_names_the_file_and_field(tmp_path: Path) -> None:
    manifest = dataflow([SRC, {"name": "m", "type": "map"}], [{"from": "in", "to": "m"}])
    (tmp_path / "df.yaml").write_text(yaml.safe_dump(manifest))
    result = subprocess.run([WASMFLOW, "run", str(tmp_path / "df.yaml")], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "df.yaml#1 spec.nodes[1]" in result.stderr
    assert "need module" in result.stderr


def test_a_missing_module_says_how_to_provide_it(tmp_path: Path) -> None:
    manifest = dataflow(
        [
            SRC,
            {"name": "m", "type": "map", "module": "ghost"},
            {"name": "o", "type": "sink", "endpoint": "b", "topic": "o"},
        ],
        [{"from": "in", "to": "m"}, {"from": "m", "to": "o"}],
    )
    (tmp_path / "df.yaml").write_text(yaml.safe_dump(manifest))
    result = subprocess.run([WASMFLOW, "run", str(tmp_path / "df.yaml")], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "no WasmModule manifest named 'ghost' and no --module ghost=PATH" in result.stderr


def test_bad_input_lines_are_reported_and_the_rest_flows(tmp_path: Path, component: Callable[[str], Path]) -> None:
    manifest = dataflow(
        [
            SRC,
            {"name": "m", "type": "map", "module": "id"},
            {"name": "o", "type": "sink", "endpoint": "b", "topic": "o"},
        ],
        [{"from": "in", "to": "m"}, {"from": "m", "to": "o"}],
    )
    (tmp_path / "df.yaml").write_text(yaml.safe_dump(manifest))
    (tmp_path / "in.jsonl").write_text('{"topic": "t", "payload": "a"}\nnot json\n{"topic": "t", "payload": "b"}\n')
    result = subprocess.run(
        [
            WASMFLOW,
            "run",
            str(tmp_path / "df.yaml"),
            "--module",
            f"id={component('wat_identity_map')}",
            "--input",
            str(tmp_path / "in.jsonl"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert [json.loads(line)["payload"] for line in result.stdout.splitlines()] == ["a", "b"]
    assert result.returncode == 1
    assert "in.jsonl:2: not JSON" in result.stderr
