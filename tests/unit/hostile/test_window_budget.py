"""Windows and acknowledgement agree (issue 16, case 8): a count window no Receive Maximum covers is refused where
the Dataflow is checked (the controller's status, ``wasmflow run``, the worker), and the worker sizes each QoS 1
source's Receive Maximum for the windows downstream of it.

A window acknowledges what it folded only when it closes, and the broker stops sending a QoS 1 source at its
Receive Maximum of unacknowledged messages (at most 65535): before, a count window over 64 never filled and
``count`` accepted up to 1,000,000.
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from tests.fault_report import Report
from tests.unit.api.cases import example_dataflow
from wasmflow.api.dataflow import DataflowSpec
from wasmflow.api.frontends.dataflow import dataflow_graph
from wasmflow.api.graph import GraphError
from wasmflow.cli.main import cli
from wasmflow.operator.config import OperatorConfig
from wasmflow.operator.dataflows import Stalled, plan


def windowed(*windows: dict[str, Any], qos: int = 1) -> dict[str, Any]:
    """in -> acc0 -> acc1 ... -> out, one accumulate per window, on a broker endpoint of ``qos``."""
    nodes: list[dict[str, Any]] = [{"name": "in", "type": "source", "endpoint": "broker", "topic": "in"}]
    nodes += [{"name": f"acc{i}", "type": "accumulate", "module": "avg", "window": w} for i, w in enumerate(windows)]
    nodes.append({"name": "out", "type": "sink", "endpoint": "broker", "topic": "out"})
    names = [n["name"] for n in nodes]
    return {
        "endpoints": {"broker": {"mqtt": {"url": "mqtt://127.0.0.1:1883", "qos": qos}}},
        "nodes": nodes,
        "edges": [{"from": a, "to": b} for a, b in itertools.pairwise(names)],
    }


def refusal(spec: dict[str, Any]) -> str:
    with pytest.raises(GraphError) as caught:
        dataflow_graph(DataflowSpec.model_validate(spec))
    return str(caught.value)


def test_a_count_window_no_receive_maximum_covers_is_refused_naming_the_field(report: Report) -> None:
    said = refusal(windowed({"count": 70_000}))
    report(window_count=70_000, refused=True)
    assert "spec.nodes[1] (acc0).window.count" in said, said
    assert "65535" in said and "qos: 0" in said, said
    # Windows in series multiply: 300 outputs of 300 inputs each are 90,000 held inputs.
    said = refusal(windowed({"count": 300}, {"count": 300}))
    assert "spec.nodes[2] (acc1).window.count" in said and "acc0" not in said, said
    # What fits is accepted, and QoS 0 acknowledges nothing, so any count goes.
    dataflow_graph(DataflowSpec.model_validate(windowed({"count": 65_535})))
    dataflow_graph(DataflowSpec.model_validate(windowed({"count": 1_000_000}, qos=0)))


def test_the_controller_stalls_on_such_a_window_saying_where() -> None:
    doc = example_dataflow()
    window = next(n for n in doc["spec"]["nodes"] if n["type"] == "accumulate")
    window["window"] = {"count": 100_000}
    doc["metadata"].update(namespace="t", generation=1)
    decided = plan(doc, lambda _name: None, OperatorConfig())
    assert isinstance(decided, Stalled), decided
    assert decided.reason == "InvalidGraph", decided
    assert f"({window['name']}).window.count" in decided.message, decided.message


def test_wasmflow_run_refuses_such_a_window_saying_where(tmp_path: Path) -> None:
    manifest = tmp_path / "dataflow.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "wasmflow.io/v1alpha1",
                "kind": "Dataflow",
                "metadata": {"name": "big-window"},
                "spec": windowed({"count": 70_000}),
            }
        )
    )
    result = CliRunner().invoke(cli, ["run", str(manifest), "--input", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 1, result.output
    assert "spec.nodes[1] (acc0).window.count" in result.output, result.output


def test_the_worker_sizes_receive_maximum_for_the_windows_downstream() -> None:
    from wasmflow.worker.main import source_receive_maximum  # noqa: PLC0415 - new; the other tests run on old code

    def budget(spec: dict[str, Any]) -> int:
        model = DataflowSpec.model_validate(copy.deepcopy(spec))
        return source_receive_maximum(dataflow_graph(model), "in")

    no_window = windowed({"count": 1})
    no_window["nodes"][1] = {"name": "acc0", "type": "map", "module": "m"}
    assert budget(no_window) == 64
    assert budget(windowed({"count": 200})) == 200 + 64
    assert budget(windowed({"count": 10}, {"count": 10})) == 164
    assert budget(windowed({"count": 65_500})) == 65_535  # the slack is capped at what MQTT allows
    assert budget(windowed({"duration": "10s"})) == 65_535
    assert budget(windowed({"count": 200, "duration": "10s"})) == 264
