"""A long run keeps the runtime's own bookkeeping bounded (issue 16, case 9).

Per-node latencies used to be a list growing by one float per message for the life of the worker. The runtime now
keeps a fixed-size sample; these tests run many messages through a real pipeline (a real WAT operator, JSON Lines
in and out) and check the per-node stats stay small while the summary ``wasmflow run`` prints stays right.
"""

from __future__ import annotations

import asyncio
import io
import json
import pickle
import statistics
from pathlib import Path

from tests.components.engine import wat
from tests.fault_report import Report
from wasmflow.api.dataflow import DataflowSpec
from wasmflow.api.frontends.dataflow import dataflow_graph
from wasmflow.api.kinds import OperatorKind
from wasmflow.cli.run import _summary
from wasmflow.connectors.jsonl import JsonLinesSink, JsonLinesSource
from wasmflow.engine.host import EngineHost, OperatorSpec
from wasmflow.engine.ports import Sink, Source
from wasmflow.engine.runtime import Runtime

MESSAGES = 24_576
#: The per-node stats of the run, pickled, must stay under this (8192 floats sampled: about 85 KB; the old
#: unbounded list took 9 bytes a message, 221 KB here, and more for every message after).
STATS_BOUND = 2 * 9 * 8192 + 16_384

SPEC = DataflowSpec.model_validate(
    {
        "endpoints": {"local": {"mqtt": {"url": "mqtt://127.0.0.1:1883"}}},
        "nodes": [
            {"name": "in", "type": "source", "endpoint": "local", "topic": "in"},
            {"name": "op", "type": "map", "module": "echo"},
            {"name": "out", "type": "sink", "endpoint": "local", "topic": "out"},
        ],
        "edges": [{"from": "in", "to": "op"}, {"from": "op", "to": "out"}],
    }
)


def test_a_long_run_keeps_node_stats_bounded_and_the_summary_right(tmp_path: Path, report: Report) -> None:
    lines = tmp_path / "in.jsonl"
    lines.write_text("".join(json.dumps({"topic": "in", "payload": f"m{i}"}) + "\n" for i in range(MESSAGES)))
    output = io.StringIO()
    with EngineHost(cache_dir=None) as host:
        operator = host.load(OperatorSpec("op", OperatorKind.MAP, wat.operator("map")))
        sources: dict[str, Source] = {"in": JsonLinesSource(str(lines))}
        sinks: dict[str, Sink] = {"out": JsonLinesSink("out", output)}
        pipeline = Runtime(dataflow_graph(SPEC), operators={"op": operator}, sources=sources, sinks=sinks)
        asyncio.run(pipeline.run())
        operator.close()

    latencies = pipeline.stats["op"].latencies
    stats_bytes = len(pickle.dumps(pipeline.stats))
    report(messages=MESSAGES, node_stats_bytes=stats_bytes, bound_bytes=STATS_BOUND)
    assert output.getvalue().count("\n") == MESSAGES
    # Bounded: the sample stops growing at its capacity, whatever the number of messages...
    assert stats_bytes < STATS_BOUND
    from wasmflow.engine.stats import LATENCY_SAMPLE  # noqa: PLC0415 - after the bound, which old code fails

    assert len(latencies.samples) == LATENCY_SAMPLE
    # ... and still counts every call, and the summary still says what ran.
    assert len(latencies) == MESSAGES
    row = next(line.split() for line in _summary(pipeline).splitlines() if line.startswith("op "))
    assert row[:5] == ["op", "map", str(MESSAGES), str(MESSAGES), "0"]
    assert row[-2].endswith("ms") and row[-1].endswith("ms")
    assert float(row[-2].removesuffix("ms")) <= float(row[-1].removesuffix("ms"))


def test_the_latency_sample_is_exact_while_small_and_uniform_when_full() -> None:
    from wasmflow.engine.stats import Latencies  # noqa: PLC0415

    exact = Latencies(capacity=100)
    values = [((i * 37) % 101) / 100 for i in range(99)]
    for value in values:
        exact.add(value)
    assert exact.median() == statistics.median(values)
    assert exact.quantile(0.99) == sorted(values)[98]

    full = Latencies(capacity=1000)
    for i in range(100_000):
        full.add(((i * 7919) % 100_000) / 100_000)  # every value in [0, 1) once, in a scrambled order
    assert len(full.samples) == 1000 and full.count == 100_000
    assert abs(full.median() - 0.5) < 0.05
    assert abs(full.quantile(0.99) - 0.99) < 0.02
