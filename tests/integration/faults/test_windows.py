"""Accumulate windows over QoS 1 fill, whatever Receive Maximum would have allowed (issue 16, case 8).

A window acknowledges what it folded only when it closes (at-least-once), and the broker sends a QoS 1 source
at most its Receive Maximum of unacknowledged messages. Before, every source advertised 64: a count window over 64
never filled, and a duration window was cut at 64 messages. Now the worker sizes each source's Receive Maximum
for the windows downstream, and when that is still not enough (a filter before the window discarding most
messages), the window closes early, saying so, rather than waiting forever.

Through the worker process, the real broker and a real accumulate (tests/components/python/average_accumulate:
``{"count", "sum", "avg"}`` of the ``value`` fields it folded).
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.fault_report import Report
from tests.integration.conftest import wait_until
from tests.integration.faults.conftest import pinned
from tests.integration.faults.workers import (
    WASMFLOW,
    Collector,
    Publisher,
    WorkerProcess,
    aio_worker,
    pipeline_spec,
    publish,
    text_of,
)
from tests.mqtt_env import BrokerEnv

Workers = Callable[..., WorkerProcess]
Clients = list[Collector | Publisher]


def windows_of(collector: Collector) -> list[dict[str, Any]]:
    return [json.loads(text) for text in collector.received()]


def folded(collector: Collector) -> int:
    return sum(int(w["count"]) for w in windows_of(collector))


def window_worker(
    workers: Workers, broker: BrokerEnv, component: Callable[[str], Path], prefix: str, window: dict[str, Any]
) -> WorkerProcess:
    spec = pipeline_spec(broker.url, prefix, kind="accumulate")
    spec["nodes"][1]["window"] = window
    worker = workers(spec, {"op": pinned(component("average_accumulate"), "accumulate")})
    worker.start()
    wait_until(worker.ready, what="worker /readyz", timeout=180)
    return worker


def readings(values: list[float]) -> list[bytes]:
    return [json.dumps({"value": v}).encode() for v in values]


def test_a_count_window_larger_than_the_old_receive_maximum_fills_over_qos1(
    workers: Workers, fault_broker: BrokerEnv, component: Callable[[str], Path], clients: Clients, report: Report
) -> None:
    prefix = f"count-window-{uuid.uuid4().hex[:8]}"
    worker = window_worker(workers, fault_broker, component, prefix, {"count": 200})
    collector = Collector(fault_broker, f"{prefix}/out", key=text_of)
    clients.append(collector)

    publish(fault_broker, f"{prefix}/in/x", *readings([float(i) for i in range(400)]))
    wait_until(lambda: collector.count() >= 2, what="two full windows of 200", timeout=90)

    windows = windows_of(collector)
    report(window_count=200, messages=400, windows=len(windows), folded=folded(collector))
    assert [w["count"] for w in windows] == [200, 200], windows
    assert [w["sum"] for w in windows] == [sum(range(200)), sum(range(200, 400))], windows
    assert worker.exited() is None, worker.output()


def test_a_duration_window_folds_every_message_of_its_duration(
    workers: Workers, fault_broker: BrokerEnv, component: Callable[[str], Path], clients: Clients, report: Report
) -> None:
    prefix = f"duration-window-{uuid.uuid4().hex[:8]}"
    window_worker(workers, fault_broker, component, prefix, {"duration": "20s"})
    collector = Collector(fault_broker, f"{prefix}/out", key=text_of)
    clients.append(collector)

    total = 300
    started = time.monotonic()
    publish(fault_broker, f"{prefix}/in/x", *readings([1.0] * total))
    published_in = time.monotonic() - started
    wait_until(lambda: folded(collector) >= total, what=f"all {total} readings folded", timeout=120)

    counts = [int(w["count"]) for w in windows_of(collector)]
    report(messages=total, published_in_s=published_in, windows=" ".join(map(str, counts)), folded=sum(counts))
    assert sum(counts) == total, counts
    # All 300 are published within the first window's 20 s (in well under a second), so it folds them all.
    # Before, the broker stopped at 64 unacknowledged messages: the first window closed with 64, the rest later.
    assert counts[0] == total, counts


def test_a_window_that_needs_more_than_the_budget_closes_early_instead_of_waiting_forever(
    workers: Workers, fault_broker: BrokerEnv, component: Callable[[str], Path], clients: Clients, report: Report
) -> None:
    """in -> range_filter (keeps one reading in ten) -> accumulate(count 10) -> out: a window needs 100 inputs,
    the source's budget is 10 + 64. The windows close early (logged) and the stream keeps flowing."""
    prefix = f"budget-window-{uuid.uuid4().hex[:8]}"
    spec = pipeline_spec(fault_broker.url, prefix, module="keep", kind="filter")
    spec["nodes"].insert(2, {"name": "acc", "type": "accumulate", "module": "avg", "window": {"count": 10}})
    spec["edges"] = [{"from": "in", "to": "op"}, {"from": "op", "to": "acc"}, {"from": "acc", "to": "out"}]
    modules = {
        "keep": pinned(component("range_filter"), "filter"),
        "avg": pinned(component("average_accumulate"), "accumulate"),
    }
    worker = workers(spec, modules)
    worker.start()
    wait_until(worker.ready, what="worker /readyz", timeout=180)
    collector = Collector(fault_broker, f"{prefix}/out", key=text_of)
    clients.append(collector)

    # One reading in ten is in the filter's range (-50..150): 100 of 1000 pass.
    publish(fault_broker, f"{prefix}/in/x", *readings([0.0 if i % 10 == 0 else 1000.0 for i in range(1000)]))
    # Every window is emitted but possibly the last (under 10 folded, waiting for its count).
    wait_until(lambda: folded(collector) > 90, what="the passed readings folded", timeout=120)

    counts = [int(w["count"]) for w in windows_of(collector)]
    report(passed=100, windows=len(counts), folded=sum(counts), smallest_window=min(counts))
    assert all(c <= 10 for c in counts), counts
    assert "window closed early" in worker.output(), worker.output()[-3000:]
    assert worker.exited() is None, worker.output()


AIO_WINDOW_GRAPH = """
metadata: {name: windows, version: "1.0.0"}
moduleRequirements: {apiVersion: "1.1.0", runtimeVersion: "1.1.0"}
moduleConfigurations:
  - name: module-window/delay
    parameters:
      windowMs: {name: windowMs, default: "10000"}
operations:
  - {operationType: source, name: source}
  - {operationType: delay, name: module-window/delay, module: "wasmflow-tests/window:1.0.0"}
  - {operationType: accumulate, name: module-average/accumulate, module: "wasmflow-tests/average:1.0.0"}
  - {operationType: sink, name: sink}
connections:
  - {from: {name: source}, to: {name: module-window/delay}}
  - {from: {name: module-window/delay}, to: {name: module-average/accumulate}}
  - {from: {name: module-average/accumulate}, to: {name: sink}}
"""


def publish_at(broker: BrokerEnv, topic: str, records: list[tuple[bytes, int]]) -> None:
    """Publish ``(payload, source time in ms)`` records in order at QoS 1, each acknowledged before the next."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        for payload, timestamp_ms in records:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.UserProperty = [("timestamp-ms", str(timestamp_ms))]
            info = client.publish(topic, payload, qos=1, properties=properties)
            info.wait_for_publish(10)
            assert info.is_published()
    finally:
        client.loop_stop()
        client.disconnect()


def test_an_aio_window_folds_more_items_than_the_old_receive_maximum(
    fault_broker: BrokerEnv, tmp_path: Path, component: Callable[[str], Path], clients: Clients, report: Report
) -> None:
    """Event time: 200 readings inside one 10 s window, then one after it that closes it. With a Receive Maximum
    of 64 the broker never sent the closing reading (the window held 64 unacknowledged): nothing came out."""
    prefix = f"aio-window-{uuid.uuid4().hex[:8]}"
    worker = aio_worker(
        tmp_path,
        fault_broker.url,
        AIO_WINDOW_GRAPH,
        {
            "wasmflow-tests/window:1.0.0": component("aio_window_delay"),
            "wasmflow-tests/average:1.0.0": component("aio_average_accumulate"),
        },
        source_topic=f"{prefix}/in",
        sink_topic=f"{prefix}/out",
        event_time=True,
    )
    try:
        worker.start()
        wait_until(worker.ready, what="AIO worker /readyz", timeout=180)
        collector = Collector(fault_broker, f"{prefix}/out", key=text_of)
        clients.append(collector)
        total = 200
        records = [(b'{"value": 1}', 1_000 + i) for i in range(total)] + [(b'{"value": 1}', 25_000)]
        publish_at(fault_broker, f"{prefix}/in", records)
        wait_until(lambda: collector.count() >= 1, what="the first window", timeout=90)
        first = windows_of(collector)[0]
        report(messages_in_window=total, folded=first["count"])
        assert first["count"] == total, first
    finally:
        worker.kill()


FAILING_FOLD_GRAPH = """
moduleRequirements: {apiVersion: "1.1.0", runtimeVersion: "1.1.0"}
moduleConfigurations:
  - name: module-window/delay
    parameters: {windowMs: {name: windowMs, default: "10000"}}
operations:
  - {operationType: source, name: source}
  - {operationType: delay, name: module-window/delay, module: "wasmflow-tests/window:1.0.0"}
  - {operationType: accumulate, name: module-average/accumulate, module: "wasmflow-tests/average:1.0.0"}
  - {operationType: sink, name: sink}
connections:
  - {from: {name: source}, to: {name: module-window/delay}}
  - {from: {name: module-window/delay}, to: {name: module-average/accumulate}}
  - {from: {name: module-average/accumulate}, to: {name: sink}}
"""


def test_an_aio_accumulate_failing_on_a_full_batch_drops_its_window_and_the_graph_goes_on(
    tmp_path: Path, component: Callable[[str], Path], report: Report
) -> None:
    """A window's items are folded in batches of 64 before it closes; a batch the operator fails on (one reading
    that is not a number) used to end the accumulate node, and with it the whole graph. Now that window is dropped
    and counted, as when its last fold fails, and the next window comes out. (Readings of the same window that
    arrive after the failure start it anew: a batch fold cannot say which reading failed.)"""
    (tmp_path / "graph.yaml").write_text(FAILING_FOLD_GRAPH)
    first: list[dict[str, Any]] = [{"value": 1} for _ in range(70)]
    first[10] = {"value": "not a number"}  # in the first batch of 64, folded before the window closes
    readings = [(payload, 1_000 + i) for i, payload in enumerate(first)]
    readings += [({"value": 2}, 12_000 + i) for i in range(5)] + [({"value": 3}, 25_000)]
    lines = [json.dumps({"topic": "plant/t1", "payload": p, "timestampMs": t}) for p, t in readings]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    args = [WASMFLOW, "run", "--graph", str(tmp_path / "graph.yaml"), "--input", str(tmp_path / "in.jsonl")]
    args += ["--module", f"wasmflow-tests/window:1.0.0={component('aio_window_delay')}"]
    args += ["--module", f"wasmflow-tests/average:1.0.0={component('aio_average_accumulate')}"]
    result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=600)
    outputs = [json.loads(json.loads(line)["payload"]) for line in result.stdout.splitlines()]
    report(exit_code=result.returncode, windows_out=len(outputs))
    assert "the graph stops" not in result.stderr, result.stderr
    assert {"count": 5, "min": 2.0, "max": 2.0, "sum": 10.0} in outputs, (outputs, result.stderr[-2000:])
    assert all(o["count"] != 70 for o in outputs)  # the failed window is not half delivered
