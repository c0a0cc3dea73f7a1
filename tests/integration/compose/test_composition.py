"""Composition (issue 19), tried as a new user would: business rules as a sealed component, fused with the
platform layer wasmflow ships, run by ``wasmflow run``; an AIO team's ``map:custom`` rules in AIO's graph-simple.

The rules components are real: componentize-py and componentize-js builds (tests/components/rules), composed by
``wasmflow compose`` with wasm-tools.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.authoring.conftest import wasmflow

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

WASM_TOOLS = str(Path(sys.executable).parent / "wasm-tools")
AIO = Path(__file__).resolve().parents[1] / "run" / "aio"

DATAFLOW = {
    "apiVersion": "wasmflow.io/v1alpha1",
    "kind": "Dataflow",
    "metadata": {"name": "two-teams"},
    "spec": {
        "endpoints": {"b": {"mqtt": {"url": "mqtt://broker:1883"}}},
        "nodes": [
            {"name": "in", "type": "source", "endpoint": "b", "topic": "t"},
            {"name": "scale", "type": "map", "module": "scale", "configuration": {"factor": "3"}},
            {"name": "out", "type": "sink", "endpoint": "b", "topic": "o"},
        ],
        "edges": [{"from": "in", "to": "scale"}, {"from": "scale", "to": "out"}],
    },
}
READINGS = [{"topic": "s/1", "payload": json.dumps({"value": v}), "timestampMs": i} for i, v in enumerate([1, 2.5])]


def compose_rules(rules: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return wasmflow("compose", str(rules), *extra, "-o", str(out))


def run_dataflow(tmp_path: Path, module: Path) -> list[dict[str, Any]]:
    (tmp_path / "df.yaml").write_text(yaml.safe_dump(DATAFLOW))
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in READINGS))
    result = wasmflow(
        "run", str(tmp_path / "df.yaml"), "--module", f"scale={module}", "--input", str(tmp_path / "in.jsonl"),
        "--output", "-",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_python_rules_composed_with_the_map_adapter_give_the_rules_output(
    tmp_path: Path, component: Callable[[str], Path]
) -> None:
    composed = tmp_path / "scale.wasm"
    result = compose_rules(component("rules_scale_map"), composed, "--kind", "map")
    assert result.returncode == 0, result.stderr
    outputs = run_dataflow(tmp_path, composed)
    assert [(o["sink"], o["topic"], json.loads(o["payload"])) for o in outputs] == [
        ("out", "s/1", {"value": 3.0, "by": "python"}),
        ("out", "s/1", {"value": 7.5, "by": "python"}),
    ]


def test_javascript_rules_swapped_in_run_with_the_same_platform_layer_and_dataflow(
    tmp_path: Path, component: Callable[[str], Path]
) -> None:
    composed = tmp_path / "scale.wasm"
    result = compose_rules(component("rules_scale_map_js"), composed, "--kind", "map")
    assert result.returncode == 0, result.stderr
    outputs = run_dataflow(tmp_path, composed)
    assert [json.loads(o["payload"]) for o in outputs] == [{"value": 3, "by": "js"}, {"value": 7.5, "by": "js"}]


def test_inspect_shows_the_adapter_and_the_rules_interface_of_a_composed_component(
    tmp_path: Path, component: Callable[[str], Path]
) -> None:
    composed = tmp_path / "scale.wasm"
    assert compose_rules(component("rules_scale_map"), composed, "--kind", "map").returncode == 0
    result = wasmflow("inspect", str(composed), "--json")
    assert result.returncode == 0, result.stdout
    composition = json.loads(result.stdout)["composition"]
    assert composition["memories"] == 2
    record = composition["record"]
    assert (record["adapter"], record["rules"]) == ("map", "wasmflow:map-rules/rules@0.1.0")


def test_rules_of_another_kind_are_refused_naming_the_interfaces_on_both_sides(
    tmp_path: Path, component: Callable[[str], Path]
) -> None:
    out = tmp_path / "f.wasm"
    result = compose_rules(component("rules_scale_map"), out, "--kind", "filter")
    assert result.returncode == 1
    assert "platform layer expects: wasmflow:filter-rules/rules@0.1.0" in result.stderr
    assert "wasmflow:map-rules/rules@0.1.0" in result.stderr.split("rules provide:")[1]
    assert not out.exists()


def test_a_rules_function_of_the_wrong_type_is_refused_naming_the_function_and_both_types(tmp_path: Path) -> None:
    # Rules exporting the right interface name with `process` taking a string: wasm-tools' dummy implementation
    # of that world is a real component of exactly that type.
    wit = tmp_path / "wrong.wit"
    wit.write_text(
        "package wasmflow:map-rules@0.1.0;\n"
        "interface rules {\n"
        "  init: func(properties: list<tuple<string, string>>) -> result<_, string>;\n"
        "  process: func(input: string) -> result<string, string>;\n"
        "}\n"
        "world map-rules { export rules; }\n"
    )
    core, rules = tmp_path / "core.wasm", tmp_path / "rules.wasm"
    subprocess.run([WASM_TOOLS, "component", "embed", "--dummy", str(wit), "-o", str(core)], check=True)
    subprocess.run([WASM_TOOLS, "component", "new", str(core), "-o", str(rules)], check=True)
    result = compose_rules(rules, tmp_path / "out.wasm", "--kind", "map")
    assert result.returncode == 1
    assert "[signature-mismatch] wasmflow:map-rules/rules@0.1.0 process" in result.stderr, result.stderr
    assert "platform layer expects: process: func(input: record {" in result.stderr
    assert "rules provide:          process: func(input: string) -> result<string, string>" in result.stderr


def test_an_aio_teams_map_custom_rules_run_in_aio_graph_simple_through_the_aio_adapter(
    tmp_path: Path, component: Callable[[str], Path]
) -> None:
    composed = tmp_path / "temperature.wasm"
    result = compose_rules(component("custom_f2c_rules"), composed, "--kind", "map", "--world", "aio-custom")
    assert result.returncode == 0, result.stderr
    run = wasmflow(
        "run", "--graph", str(AIO / "graph-simple.yaml"), "--input", str(AIO / "input.jsonl"),
        "--module", f"temperature:1.0.0={composed}",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    outputs = [json.loads(line) for line in run.stdout.splitlines()]
    # input.jsonl's °F readings, converted by the rules with the graph's precision (1); topic and time kept.
    assert [(json.loads(o["payload"]), o["timestampMs"]) for o in outputs] == [
        ({"value": 10.0, "unit": "C"}, 1000),
        ({"value": 40.0, "unit": "C"}, 2000),
        ({"value": 20.0, "unit": "C"}, 9000),
        ({"value": 537.8, "unit": "C"}, 9500),
        ({"value": 15.0, "unit": "C"}, 12000),
        ({"value": 5.0, "unit": "C"}, 15000),
        ({"value": 100.0, "unit": "C"}, 21000),
    ]
    assert {o["topic"] for o in outputs} == {"plant/t1"}


def test_a_scaffolded_composed_python_map_builds_and_runs_as_its_test_expects(tmp_path: Path) -> None:
    created = wasmflow("new", "map", "temps", "--lang", "python", "--composed", "--dir", str(tmp_path))
    assert created.returncode == 0, created.stderr
    project = tmp_path / "temps"
    built = wasmflow("build", cwd=project)
    assert built.returncode == 0, built.stdout + built.stderr
    assert (project / "build" / "temps-rules.wasm").is_file()
    # The project's own test runs the composed operator on sample.jsonl and checks the rules' output.
    test = subprocess.run(
        [sys.executable, "test_operator.py"], cwd=project, capture_output=True, text=True, check=False, timeout=600
    )
    assert test.returncode == 0, test.stdout + test.stderr
