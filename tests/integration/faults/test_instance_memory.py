"""``limits.memory`` bounds what an operator instance holds in all, through ``wasmflow run``.

A component may instantiate several core modules, each with a linear memory of its own; wasmtime's limit applies
to each memory, so six memories of 60 MiB ran under a 64 MiB limit (+360 MiB in the process). Each memory now gets
an equal share of the limit, so such a component's message fails when its memories outgrow their shares and the
process never holds more than one instance's limit; an operator with one memory still uses all of its limit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.components.build import cache_dir
from tests.components.engine import wat
from tests.fault_report import Report
from tests.integration.faults.workers import WASMFLOW, one_map_dataflow

#: argv: the file for the peak RSS (KiB), then the command; exits as the command did.
MEASURE = (
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[2:]).returncode; "
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); sys.exit(code)"
)
LIMIT_MIB = 64
#: 60 MiB in 64 KiB pages: under the limit for one memory.
PAGES = 960


def manifests() -> list[dict[str, object]]:
    dataflow = one_map_dataflow("memory", "hog")
    module = {
        "apiVersion": "wasmflow.io/v1alpha1",
        "kind": "WasmModule",
        "metadata": {"name": "hog"},
        "spec": {
            "source": {"oci": {"reference": "registry.test/hog:1"}},
            "operator": "map",
            "limits": {"memory": f"{LIMIT_MIB}Mi", "timeoutPerMessage": "10s"},
        },
    }
    return [dataflow, module]


def run_measured(directory: Path, component: bytes) -> tuple[int, list[dict[str, str]], str, int]:
    """``wasmflow run`` of one map over one message: (exit code, outputs, stderr, peak RSS in bytes of the run)."""
    directory.mkdir()
    (directory / "df.yaml").write_text(yaml.safe_dump_all(manifests()))
    (directory / "in.jsonl").write_text(json.dumps({"topic": "t", "payload": "x"}) + "\n")
    (directory / "hog.wasm").write_bytes(component)
    args = [WASMFLOW, "run", str(directory / "df.yaml"), "--input", str(directory / "in.jsonl"), "--output", "-"]
    args += ["--module", f"hog={directory / 'hog.wasm'}", "--cache-dir", str(cache_dir().parent / "compiled")]
    # A small Python in between reports the run's own peak RSS: a child forked from pytest itself would count
    # pytest's resident set, inherited at fork, as its maximum.
    rss = directory / "maxrss"
    with (directory / "out").open("wb") as out, (directory / "err").open("wb") as err:
        code = subprocess.run(
            [sys.executable, "-c", MEASURE, str(rss), *args], stdout=out, stderr=err, check=False, timeout=600
        ).returncode
    outputs = [json.loads(line) for line in (directory / "out").read_text().splitlines() if line.strip()]
    return code, outputs, (directory / "err").read_text(), int(rss.read_text()) * 1024


def test_memories_that_each_fit_but_together_exceed_the_limit_fail_and_the_process_stays_bounded(
    tmp_path: Path, report: Report
) -> None:
    # An operator with one memory filling 60 MiB of its 64 MiB: it runs, and its peak is the reference.
    code, outputs, stderr, single_peak = run_measured(tmp_path / "one", wat.operator(body=wat.grow_and_fill(PAGES)))
    assert code == 0, stderr
    assert [o["payload"] for o in outputs if o["sink"] == "out"] == ["x"]

    # Six memories (the operator's own and five more) filling 60 MiB each, under a 64 MiB limit.
    code, outputs, stderr, spread_peak = run_measured(tmp_path / "six", wat.spread_memory(memories=5, pages=PAGES))
    assert not [o for o in outputs if o["sink"] == "out"], "the instance ran with six memories"
    # Generous: the refused run must not hold more than one instance's limit beyond the one-memory run.
    assert spread_peak < single_peak + LIMIT_MIB * 2**20, f"{spread_peak >> 20} MiB against {single_peak >> 20} MiB"
    report(
        exit_code=code,
        peak_rss_mib=spread_peak / 2**20,
        one_memory_peak_rss_mib=single_peak / 2**20,
        limit_mib=LIMIT_MIB,
    )


def test_an_operator_holding_gc_objects_beside_its_memory_is_refused_and_the_process_stays_bounded(
    tmp_path: Path, report: Report
) -> None:
    # Wasm GC objects live in a heap of their own, limited like a linear memory but apart from it: 60 MiB of memory
    # and 32 MiB of GC arrays ran under a 64 MiB limit. The engine has no GC now.
    code, outputs, stderr, single_peak = run_measured(tmp_path / "one", wat.operator(body=wat.grow_and_fill(PAGES)))
    assert code == 0, stderr
    code, outputs, stderr, gc_peak = run_measured(tmp_path / "gc", wat.gc_arrays(arrays=4, fill_pages=PAGES))
    assert not [o for o in outputs if o["sink"] == "out"], "the instance ran with a GC heap"
    assert code == 1, stderr
    assert "gc" in stderr, stderr
    assert gc_peak < single_peak + LIMIT_MIB * 2**20, f"{gc_peak >> 20} MiB against {single_peak >> 20} MiB"
    report(exit_code=code, peak_rss_mib=gc_peak / 2**20, one_memory_peak_rss_mib=single_peak / 2**20)
