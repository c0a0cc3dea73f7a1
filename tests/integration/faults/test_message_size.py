"""A message over ``spec.limits.maxMessageSize`` fails alone, at every source (issue 16, case 3).

It goes to the error policy (a dead letter saying ``too large: N bytes > limit L bytes``, with the first 1 KiB of
its payload), it is acknowledged so it does not come back, and the messages around it flow in order. Through the
public surfaces: a worker process on the real broker, ``wasmflow run`` with a Dataflow, ``wasmflow run --graph``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.fault_report import Report
from tests.integration.conftest import wait_until
from tests.integration.faults.conftest import pinned
from tests.integration.faults.workers import (
    WASMFLOW,
    Collector,
    Publisher,
    WorkerProcess,
    one_map_dataflow,
    pipeline_spec,
    publish,
    text_of,
)
from tests.integration.mqtt.helpers import inbox_of, opened_source, raw_client, settings
from tests.mqtt_env import BrokerEnv
from wasmflow.connectors.mqtt_settings import maximum_packet_size
from wasmflow.engine.ports import Inbound

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
    manifest = one_map_dataflow("sizes", "echo", topic="t/#")
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


def test_an_8mib_binary_message_is_dead_lettered_by_the_worker_and_the_others_flow(
    workers: Workers, fault_broker: BrokerEnv, component: Callable[[str], Path], clients: Clients, report: Report
) -> None:
    """The acceptance case of the issue: one publisher's 8 MiB non-UTF-8 message among small ones. The worker
    (default limit 1Mi; it advertises a Maximum Packet Size above 8 MiB so it sees the message rather than the
    broker discarding it) dead-letters it with its first KiB, acknowledges it, and stays far under 512 MiB. An
    identity map sits in between: before the limit, the message crossed into it as list<u8>."""
    prefix = f"size-{uuid.uuid4().hex[:8]}"
    spec = pipeline_spec(fault_broker.url, prefix)
    spec["errorPolicy"] = {"action": "deadLetter", "endpoint": "broker", "topic": f"{prefix}/dlq"}
    worker = workers(spec, {"op": pinned(component("wat_identity_map"), "map", limits={"timeoutPerMessage": "10s"})})
    worker.start()
    wait_until(worker.ready, what="worker /readyz", timeout=180)
    baseline = worker.peak_rss_bytes()
    outputs = Collector(fault_broker, f"{prefix}/out", key=text_of)
    dead = Collector(fault_broker, f"{prefix}/dlq", key=lambda payload: payload.decode())
    clients.extend([outputs, dead])

    big = binary_of(8 * MiB)
    topic = f"{prefix}/in/x"
    publish(fault_broker, topic, b"s0", b"s1", big, b"s2", b"s3")
    wait_until(lambda: outputs.count() >= 4, what="the four small messages", timeout=120)
    wait_until(lambda: dead.count() >= 1, what="the dead letter", timeout=60)

    peak = worker.peak_rss_bytes()
    assert peak < 512 * MiB, f"peak RSS {peak >> 20} MiB (ready at {baseline >> 20} MiB)"
    assert outputs.received() == ["s0", "s1", "s2", "s3"]
    (letter,) = [json.loads(text) for text in dead.received()]
    assert letter["kind"] == "too-large" and letter["node"] == "in" and letter["topic"] == topic
    assert letter["error"] == f"too large: {8 * MiB + len(topic)} bytes > limit {MiB} bytes"
    assert letter["payloadSize"] == 8 * MiB and letter["payloadTruncated"] is True
    assert base64.b64decode(letter["payloadBase64"]) == big[:1024]
    assert 'wasmflow_node_messages_dead_lettered_total{node="in"} 1.0' in worker.metrics()

    # Acknowledged: the worker's persistent session, resumed, does not bring the big message back.
    worker.signal(signal.SIGTERM)
    assert worker.wait(60) == 0, worker.output()
    worker.start()
    wait_until(worker.ready, what="worker /readyz after the restart", timeout=120)
    publish(fault_broker, topic, b"s4")
    wait_until(lambda: outputs.count() >= 5, what="a message after the restart", timeout=60)
    assert outputs.received()[-1] == "s4" and dead.count() == 1
    report(
        message_mib=8.0,
        baseline_rss_mib=baseline / MiB,
        peak_rss_mib=peak / MiB,
        dead_lettered=dead.count(),
        delivered=outputs.count(),
        lost=0,
    )


def test_the_mqtt_source_refuses_what_is_over_its_limit_and_the_broker_keeps_back_what_is_far_over(
    fault_broker: BrokerEnv, report: Report
) -> None:
    """With a 1 KiB limit the source advertises a Maximum Packet Size of 80 KiB in CONNECT: a 2 KiB message reaches
    it and is handed on refused (its first KiB only), a 200 KiB one the broker discards unsent (MQTT 5 3.1.2.11.4),
    and what follows still arrives, in order."""
    topic = f"size-{uuid.uuid4().hex[:8]}/in"

    async def scenario() -> list[Inbound]:
        source_settings = settings(fault_broker.url, max_message_size=1024)
        async with opened_source(source_settings, topic) as source, inbox_of(source) as inbox:
            with raw_client(fault_broker) as publisher:
                for payload in (b"a", binary_of(2048), binary_of(200 * 1024), b"z"):
                    publisher.publish(topic, payload)
            received = [await inbox.get(30) for _ in range(3)]
            for inbound in received:
                await inbound.ack()
            return received

    small, refused, last = asyncio.run(scenario())
    assert small.message.payload == b"a" and small.refused is None
    assert refused.refused is not None
    assert refused.refused.reason == f"too large: {2048 + len(topic)} bytes > limit 1024 bytes"
    assert refused.refused.payload_size == 2048 and refused.message.payload == binary_of(1024)
    assert last.message.payload == b"z" and last.refused is None  # the 200 KiB message never reached the worker
    report(limit_kib=1, maximum_packet_kib=maximum_packet_size(1024) / 1024, refused=1, kept_back_by_broker=1)


AIO_MAP_GRAPH = {
    "metadata": {"name": "f2c", "version": "1.0.0"},
    "moduleRequirements": {"apiVersion": "1.1.0", "runtimeVersion": "1.1.0"},
    "operations": [
        {"operationType": "source", "name": "source"},
        {"operationType": "map", "name": "f2c", "module": "f2c:1"},
        {"operationType": "sink", "name": "sink"},
    ],
    "connections": [
        {"from": {"name": "source"}, "to": {"name": "f2c"}},
        {"from": {"name": "f2c"}, "to": {"name": "sink"}},
    ],
}

#: Runs a command and prints the peak resident set of it, its only child (the getrusage figure of children).
_PEAK_OF_CHILD = (
    "import resource, subprocess, sys\n"
    "result = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "sys.stderr.write(result.stderr)\n"
    "sys.stdout.write(result.stdout)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(result.returncode)\n"
)


def test_an_aio_operator_reading_a_payload_wasmtime_cannot_pass_fails_that_message_only(
    tmp_path: Path, component: Callable[[str], Path], report: Report
) -> None:
    """Within a 4Mi limit, a 3 MiB payload that an AIO map reads (buffer.read: list<u8>, text or not) fails that
    message (memory) before the host builds ~80 bytes per byte of it, which wasmtime would then refuse anyway."""
    (tmp_path / "graph.yaml").write_text(yaml.safe_dump(AIO_MAP_GRAPH))
    source = tmp_path / "in.jsonl"
    lines = [
        {"topic": "t", "payload": {"value": 50, "unit": "F"}},
        {"topic": "t", "payload": {"value": 50, "unit": "F", "pad": "x" * (3 * MiB)}},
        {"topic": "t", "payload": {"value": 212, "unit": "F"}},
    ]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    command = [WASMFLOW, "run", "--graph", str(tmp_path / "graph.yaml"), "--input", str(source)]
    command += ["--module", f"f2c:1={component('aio_f2c_map')}", "--max-message-size", "4Mi"]
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_OF_CHILD, *command], capture_output=True, text=True, check=False, timeout=600
    )
    assert result.returncode == 0, result.stderr
    *output, peak_kib = result.stdout.splitlines()
    assert [json.loads(json.loads(line)["payload"])["value"] for line in output] == [10.0, 100.0]
    assert "node 'f2c': memory: buffer.read: the buffer is too large: " in result.stderr, result.stderr
    assert "memory=1" in result.stderr
    peak_mib = int(peak_kib) / 1024
    assert peak_mib < 200, f"peak RSS {peak_mib:.0f} MiB"
    report(payload_mib=3.0, peak_rss_mib=peak_mib, failed=1, delivered=2)
