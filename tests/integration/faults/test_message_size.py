"""A message over ``spec.limits.maxMessageSize`` fails alone, at every source (issue 16, case 3).

It goes to the error policy (a dead letter saying ``too large: N bytes > limit L bytes``, with the first 1 KiB of
its payload), it is acknowledged so it does not come back, and the messages around it flow in order. Through the
public surfaces: a worker process on the real broker, ``wasmflow run`` with a Dataflow, ``wasmflow run --graph``.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.fault_report import Report
from tests.integration.faults.workers import WASMFLOW, Collector, Publisher, WorkerProcess

Workers = Callable[..., WorkerProcess]
Clients = list[Collector | Publisher]
MiB = 2**20
#: A payload that is not UTF-8, so it crosses into an operator as list<u8>: the expensive path.
BINARY = b"\xff\xfe" + bytes(range(256)) * 4

GRAPH = {
    "metadata": {"name": "pass-through", "version": "1.0.0"},
    "moduleRequirements": {"apiVersion": "1.1.0", "runtimeVersion": "1.1.0"},
    "operations": [{"operationType": "source", "name": "source"}, {"operationType": "sink", "name": "sink"}],
    "connections": [{"from": {"name": "source"}, "to": {"name": "sink"}}],
}


def binary_of(size: int) -> bytes:
    return (BINARY * (size // len(BINARY) + 1))[:size]


def write_input(path: Path) -> list[dict[str, Any]]:
    """Small messages around a 2 MiB binary one (over the 1Mi default) and a line too long to read (9 MiB)."""
    lines = [
        {"topic": "t", "payload": "s0"},
        {"topic": "t/big", "payloadBase64": base64.b64encode(binary_of(2 * MiB)).decode(), "contentType": "x/bin"},
        {"topic": "t", "payload": "s1"},
        {"topic": "t", "payload": "x" * (9 * MiB)},
        {"topic": "t", "payload": "s2"},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return lines


def wasmflow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WASMFLOW, *args], capture_output=True, text=True, check=False, timeout=600)


def test_wasmflow_run_dead_letters_an_oversized_line_and_names_one_too_long_to_read(
    tmp_path: Path, component: Callable[[str], Path], report: Report
) -> None:
    manifest = {
        "apiVersion": "wasmflow.io/v1alpha1",
        "kind": "Dataflow",
        "metadata": {"name": "sizes"},
        "spec": {
            "endpoints": {"b": {"mqtt": {"url": "mqtt://broker:1883"}}},
            "nodes": [
                {"name": "in", "type": "source", "endpoint": "b", "topic": "t/#"},
                {"name": "echo", "type": "map", "module": "echo"},
                {"name": "out", "type": "sink", "endpoint": "b", "topic": "out"},
            ],
            "edges": [{"from": "in", "to": "echo"}, {"from": "echo", "to": "out"}],
            "errorPolicy": {"action": "deadLetter", "endpoint": "b", "topic": "dead"},
        },
    }
    (tmp_path / "df.yaml").write_text(yaml.safe_dump(manifest))
    source = tmp_path / "in.jsonl"
    lines = write_input(source)
    result = wasmflow(
        "run", str(tmp_path / "df.yaml"), "--module", f"echo={component('wat_identity_map')}", "--input", str(source)
    )
    outputs = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [o["payload"] for o in outputs if o["sink"] == "out"] == ["s0", "s1", "s2"], result.stderr
    (dead,) = [json.loads(o["payload"]) for o in outputs if o["sink"] == "dead-letter:dead"]
    assert dead["kind"] == "too-large"
    assert dead["error"] == f"too large: {2 * MiB + 5 + 5} bytes > limit {MiB} bytes ({source}:2)"
    assert dead["node"] == "in" and dead["topic"] == "t/big" and dead["contentType"] == "x/bin"
    assert dead["payloadTruncated"] is True and dead["payloadSize"] == 2 * MiB
    assert base64.b64decode(dead["payloadBase64"]) == binary_of(1024)
    # The line too long to hold any message within the limit is not even read whole: named, with its length.
    length = len(json.dumps(lines[3])) + 1
    assert f"{source}:4: line too long: {length} characters > {8 * MiB + 64 * 1024}" in result.stderr
    assert result.returncode == 1 and "1 input line(s) were invalid and skipped" in result.stderr
    report(refused_payload_mib=2.0, dead_lettered=1, delivered=3, lines_not_read=1)


def test_wasmflow_run_graph_drops_an_oversized_line_and_counts_it(tmp_path: Path, report: Report) -> None:
    (tmp_path / "graph.yaml").write_text(yaml.safe_dump(GRAPH))
    source = tmp_path / "in.jsonl"
    write_input(source)
    result = wasmflow("run", "--graph", str(tmp_path / "graph.yaml"), "--input", str(source))
    outputs = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [o["payload"] for o in outputs] == ["s0", "s1", "s2"], result.stderr
    assert f"too large: {2 * MiB + 10} bytes > limit {MiB} bytes ({source}:2) (dropped)" in result.stderr
    assert "too-large=1" in result.stderr  # the summary's failures of the source
    assert f"{source}:4: line too long" in result.stderr
    assert result.returncode == 1
    report(refused_payload_mib=2.0, dropped=1, delivered=3, lines_not_read=1)


def test_a_limit_out_of_range_on_the_command_line_is_refused(tmp_path: Path) -> None:
    (tmp_path / "graph.yaml").write_text(yaml.safe_dump(GRAPH))
    result = wasmflow("run", "--graph", str(tmp_path / "graph.yaml"), "--max-message-size", "64Mi")
    assert result.returncode == 2
    assert "maxMessageSize must be at least 1Ki and at most 16Mi" in result.stderr, result.stderr
