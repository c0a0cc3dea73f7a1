"""A YAML alias bomb ("billion laughs") is refused wherever YAML comes from outside, before it can expand.

The bomb is ~550 bytes: nine "lol"s, then eight levels of nine aliases to the level below, the last used as a
parameter default of the graph. PyYAML keeps aliases as shared objects, so it parses in a blink; the old code then
turned the default into text with ``str()``: 9^9 "lol"s, a 3 GB string (70 s and 3 GiB RSS through
``wasmflow run --graph``), and an inline ``spec.graph.definition`` took the controller down for every Dataflow.
Now any anchor or alias is refused with the field it sits in.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes.client import ApiClient

from tests.fault_report import Report
from tests.integration.conftest import wait_until
from tests.integration.faults.test_controller_faults import converged, create, dataflow, ready_module, status_of
from tests.services import Registry
from wasmflow.operator.config import OperatorConfig

WASMFLOW = str(Path(sys.executable).parent / "wasmflow")
#: A safety net for a run against code without the guard: the bomb then fails on this, not on the machine.
ADDRESS_SPACE_LIMIT = 2 * 2**30


def bomb(depth: int) -> str:
    """A valid AIO graph whose one parameter default is 9^(depth+1) "lol"s, written with aliases."""
    lines = ['x0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"x{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, depth + 1)]
    lines += [
        "moduleConfigurations:",
        "  - name: op",
        "    parameters:",
        f"      p: {{default: *a{depth}}}",
        "operations:",
        "  - {operationType: source, name: source}",
        "  - {operationType: map, name: op, module: 'bomb/op:1.0.0'}",
        "  - {operationType: sink, name: sink}",
        "connections:",
        "  - {from: {name: source}, to: {name: op}}",
        "  - {from: {name: op}, to: {name: sink}}",
    ]
    return "\n".join(lines) + "\n"


#: Runs the command given in argv from a small interpreter, under the address-space limit, and prints its exit code,
#: stderr, peak RSS and duration as JSON. Measured from here, not from pytest: a child forked from pytest starts
#: with pytest's own RSS as its high-water mark, which survives the exec.
MEASURE = f"""
import json, os, resource, subprocess, sys, time
resource.setrlimit(resource.RLIMIT_AS, ({ADDRESS_SPACE_LIMIT}, {ADDRESS_SPACE_LIMIT}))
started = time.monotonic()
process = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
stderr = process.stderr.read()
_, status, usage = os.wait4(process.pid, 0)
elapsed = time.monotonic() - started
print(json.dumps({{"rc": os.waitstatus_to_exitcode(status), "stderr": stderr, "peak_kib": usage.ru_maxrss,
                  "elapsed_s": elapsed}}))
"""


def test_wasmflow_run_refuses_a_yaml_alias_bomb_at_once_with_little_memory(tmp_path: Path, report: Report) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb(8))
    measured = subprocess.run(
        [sys.executable, "-c", MEASURE, WASMFLOW, "run", "--graph", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result = json.loads(measured.stdout)
    peak_mib = result["peak_kib"] / 1024
    assert result["rc"] == 1, result["stderr"]
    assert f"{path}: x0 (line 1): YAML anchors are not accepted (&a0)" in result["stderr"]
    assert peak_mib < 100, peak_mib  # the interpreter and its imports: the bomb costs nothing
    report(bomb_bytes=path.stat().st_size, refused_s=result["elapsed_s"], peak_rss_mib=peak_mib)


def graph_dataflow(name: str, definition: str) -> dict[str, Any]:
    return {
        "apiVersion": "wasmflow.io/v1alpha1",
        "kind": "Dataflow",
        "metadata": {"name": name},
        "spec": {
            "endpoints": {"plant": {"mqtt": {"url": "mqtt://mosquitto.plant:1883"}}},
            "graph": {
                "definition": definition,
                "registry": "registry.invalid/graphs",
                "sources": {"source": {"endpoint": "plant", "topic": "in"}},
                "sinks": {"sink": {"endpoint": "plant", "topic": "out"}},
            },
        },
    }


def test_an_inline_alias_bomb_stalls_its_dataflow_and_the_controller_serves_the_others(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry: Registry, report: Report
) -> None:
    # Depth 6 here: the guard refuses any anchor whatever the depth, and a run against the unguarded code (to see
    # this test fail) then costs megabytes inside the test process instead of gigabytes.
    started = time.monotonic()
    create(kube_client, namespace, graph_dataflow("bomb", bomb(6)))
    ready_module(kube_client, namespace, registry)
    create(kube_client, namespace, dataflow("good"))

    def stalled() -> dict[str, Any] | None:
        conditions = status_of(kube_client, namespace, "bomb").get("conditions") or []
        return next((c for c in conditions if c["type"] == "Stalled" and c["status"] == "True"), None)

    found = wait_until(stalled, what="the bomb Dataflow Stalled", timeout=60)
    refused = time.monotonic() - started
    assert found["reason"] == "InvalidGraph"
    assert "spec.graph.definition: x0 (line 1): YAML anchors are not accepted (&a0)" in found["message"]
    wait_until(lambda: converged(kube_client, namespace, "good"), what="the good Dataflow applied", timeout=60)
    report(stalled_after_s=refused, other_dataflow_applied=True)
