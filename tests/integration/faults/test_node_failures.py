"""A node that fails for good stops the worker loudly; a broker outage does not (issue 16, case 2).

Through the worker process and the real broker:

- a sink whose messages the broker refuses (the auth listener's ACL denies ``forbidden/#``: the PUBACK says
  0x87 Not authorized) fails the worker: a log line naming the node and what it was doing, ``/healthz`` and
  ``/readyz`` 503 with the reason, then a non-zero exit; the refused input is never acknowledged, so a worker
  started again gets it again;
- SIGTERM after a node died returns at once, though the sources had filled every queue behind it;
- a broker outage longer than the sink's send timeout (30 s) is waited out: the sends are made again on the new
  connection and nothing is lost.

Before the fix a dead node task went unnoticed: nothing logged, probes green, the graph halted for good.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.components.engine import wat
from tests.fault_report import Report
from tests.integration.conftest import wait_until
from tests.integration.faults.conftest import pinned
from tests.integration.faults.test_stream_faults import SLOW_ECHO
from tests.integration.faults.workers import (
    Collector,
    Publisher,
    WorkerProcess,
    aio_worker,
    pipeline_spec,
    publish,
    text_of,
)
from tests.mqtt_env import BrokerEnv, start_broker, stop_broker
from wasmflow.api.workerconfig import EndpointFiles
from wasmflow.connectors.mqtt import MqttSettings, MqttSink
from wasmflow.engine.message import Message

Workers = Callable[..., WorkerProcess]
Clients = list[Collector | Publisher]
#: MqttSink's default send timeout: the outage must last longer.
SEND_TIMEOUT_S = 30.0


def credentials(directory: Path, broker: BrokerEnv) -> EndpointFiles:
    """The auth listener's username and password, as the files a mounted Secret would be."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "username").write_text(broker.username)
    (directory / "password").write_text(broker.password)
    return EndpointFiles(username_file=str(directory / "username"), password_file=str(directory / "password"))


def refused_sink_worker(
    workers: Workers, broker: BrokerEnv, tmp_path: Path, prefix: str, source_qos: int = 1
) -> WorkerProcess:
    """In from ``<prefix>/in/+`` (allowed) through an echo map out to ``forbidden/<prefix>/out`` (denied by ACL;
    the sink is QoS 1, so the refusal comes back in its PUBACK)."""
    spec = pipeline_spec(broker.auth_url, prefix)
    spec["nodes"][2]["topic"] = f"forbidden/{prefix}/out"
    if source_qos != 1:
        spec["endpoints"]["in"] = {"mqtt": {"url": broker.url, "qos": source_qos}}
        spec["nodes"][0]["endpoint"] = "in"
    echo = tmp_path / "echo.wasm"
    echo.write_bytes(wat.operator("map"))
    files = {"broker": credentials(tmp_path / "mqtt", broker)}
    return workers(spec, {"op": pinned(echo, "map")}, endpoint_files=files)


class Prober:
    """Polls the worker's /healthz and /readyz from a thread until the process exits; keeps what it saw."""

    def __init__(self, worker: WorkerProcess) -> None:
        self.worker = worker
        self.seen: list[tuple[int, int, str]] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        base = f"http://127.0.0.1:{self.worker.port}"
        while self.worker.exited() is None:
            try:
                health = httpx.get(f"{base}/healthz", timeout=2)
                ready = httpx.get(f"{base}/readyz", timeout=2)
                self.seen.append((health.status_code, ready.status_code, ready.text))
            except httpx.HTTPError:
                pass
            time.sleep(0.02)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def failed_probes(self) -> list[tuple[int, int, str]]:
        return [probe for probe in self.seen if probe[0] == 503]


def test_a_sink_the_broker_refuses_fails_the_worker_loudly_and_acknowledges_nothing(
    workers: Workers, fault_broker: BrokerEnv, tmp_path: Path, clients: Clients, report: Report
) -> None:
    prefix = f"refused-{uuid.uuid4().hex[:8]}"
    worker = refused_sink_worker(workers, fault_broker, tmp_path, prefix)
    worker.start()
    wait_until(worker.ready, what="worker /readyz", timeout=120)
    prober = Prober(worker)

    sent = time.monotonic()
    publish(fault_broker, f"{prefix}/in/x", b"refused")
    wait_until(lambda: worker.exited() is not None, what="the worker to exit after the refusal", timeout=60)
    exited = time.monotonic()
    prober.join(10)

    code = worker.exited()
    log = worker.output()
    failed = prober.failed_probes()
    report(exit_code=code, time_to_exit_s=exited - sent, failed_probes_seen=len(failed))
    assert code not in (0, None), log
    assert "node 'out' failed while sending a message to its sink" in log, log
    assert "Not authorized" in log, log
    # Before it exited, the probes said so: /healthz 503, /readyz 503 with the reason.
    assert failed, f"no 503 from /healthz before the exit; saw {prober.seen[-5:]}"
    _health, ready, reasons = failed[-1]
    assert ready == 503 and "failed: node 'out'" in reasons, reasons

    # Nothing was acknowledged: started again, the worker is handed the refused message again (and fails again).
    worker.start()
    wait_until(lambda: worker.exited() is not None, what="the restarted worker to meet the message again", timeout=120)
    assert worker.output().count("node 'out' failed while sending a message to its sink") >= 2


def test_a_dead_letter_publish_the_broker_refuses_fails_the_worker_loudly(
    workers: Workers, fault_broker: BrokerEnv, tmp_path: Path, report: Report
) -> None:
    """The operator traps on a message starting with "x"; its error policy sends it to a dead-letter topic the
    ACL denies. The failed message can go nowhere: the worker stops, naming the node and the dead-letter topic."""
    prefix = f"dlq-refused-{uuid.uuid4().hex[:8]}"
    spec = pipeline_spec(fault_broker.auth_url, prefix)
    spec["errorPolicy"] = {"action": "deadLetter", "endpoint": "broker", "topic": f"forbidden/{prefix}/dlq"}
    trapping = tmp_path / "trap-on-x.wasm"
    trapping.write_bytes(wat.operator("map", wat.on_first_byte("x", wat.TRAP)))
    files = {"broker": credentials(tmp_path / "mqtt", fault_broker)}
    worker = workers(spec, {"op": pinned(trapping, "map")}, endpoint_files=files)
    worker.start()
    wait_until(worker.ready, what="worker /readyz", timeout=120)

    sent = time.monotonic()
    publish(fault_broker, f"{prefix}/in/x", b"x marks a trap")
    wait_until(lambda: worker.exited() is not None, what="the worker to exit after the refused dead letter", timeout=60)
    code, log = worker.exited(), worker.output()
    report(exit_code=code, time_to_exit_s=time.monotonic() - sent)
    assert code not in (0, None), log
    assert f"node 'op' failed while sending a failed message to the dead-letter topic 'forbidden/{prefix}/dlq'" in log
    assert "Not authorized" in log, log


AIO_GRAPH = """
metadata: {name: refused, version: "1.0.0"}
moduleRequirements: {apiVersion: "1.1.0", runtimeVersion: "1.1.0"}
operations:
  - {operationType: source, name: source}
  - {operationType: map, name: module-f2c/map, module: "wasmflow-tests/f2c:1.0.0"}
  - {operationType: sink, name: sink}
connections:
  - {from: {name: source}, to: {name: module-f2c/map}}
  - {from: {name: module-f2c/map}, to: {name: sink}}
"""


def test_an_aio_graph_sink_the_broker_refuses_fails_the_worker_loudly(
    fault_broker: BrokerEnv, tmp_path: Path, component: Callable[[str], Path], report: Report
) -> None:
    """The same supervision in the AIO graph runtime (engine/runtime.py with the frontier time, worker/aio.py)."""
    prefix = f"aio-refused-{uuid.uuid4().hex[:8]}"
    worker = aio_worker(
        tmp_path,
        fault_broker.auth_url,
        AIO_GRAPH,
        {"wasmflow-tests/f2c:1.0.0": component("aio_f2c_map")},
        source_topic=f"{prefix}/in",
        sink_topic=f"forbidden/{prefix}/out",
        endpoint_files={"broker": credentials(tmp_path / "mqtt", fault_broker)},
    )
    try:
        worker.start()
        wait_until(worker.ready, what="AIO worker /readyz", timeout=180)
        prober = Prober(worker)
        sent = time.monotonic()
        publish(fault_broker, f"{prefix}/in", b'{"value": 212}')
        wait_until(lambda: worker.exited() is not None, what="the AIO worker to exit after the refusal", timeout=60)
        exited = time.monotonic()
        prober.join(10)
        code, log, failed = worker.exited(), worker.output(), prober.failed_probes()
        report(exit_code=code, time_to_exit_s=exited - sent, failed_probes_seen=len(failed))
        assert code not in (0, None), log
        assert "node 'sink' failed while sending a message to its sink" in log and "Not authorized" in log, log
        assert failed, f"no 503 from /healthz before the exit; saw {prober.seen[-5:]}"
    finally:
        worker.kill()


def test_sigterm_after_a_node_died_returns_promptly(
    workers: Workers, fault_broker: BrokerEnv, tmp_path: Path, clients: Clients, report: Report
) -> None:
    """A QoS 0 source, so nothing but the queues holds the stream back: behind the dead sink they fill (a hand-over
    of 64 and two queues of 64), and the source's feeder waits on a full queue. SIGTERM must still end the worker."""
    prefix = f"dead-{uuid.uuid4().hex[:8]}"
    worker = refused_sink_worker(workers, fault_broker, tmp_path, prefix, source_qos=0)
    worker.start()
    wait_until(worker.ready, what="worker /readyz", timeout=120)
    publish(fault_broker, f"{prefix}/in/x", *(f"m{i}".encode() for i in range(400)))

    def sink_met_the_refusal() -> bool:
        if worker.exited() is not None:
            return True
        try:
            return 'wasmflow_node_messages_in_total{node="out"}' in worker.metrics()
        except httpx.HTTPError:
            return worker.exited() is not None

    wait_until(sink_met_the_refusal, what="the sink to take its first message (refused)")
    signalled = time.monotonic()
    if worker.exited() is None:
        worker.signal(signal.SIGTERM)
    code = worker.wait(30)
    returned = time.monotonic()
    report(exit_code=code, sigterm_to_exit_s=returned - signalled)
    assert code != 0, worker.output()


def test_a_broker_outage_longer_than_the_send_timeout_loses_no_message(
    workers: Workers, fault_broker: BrokerEnv, tmp_path: Path, clients: Clients, report: Report
) -> None:
    prefix = f"outage-{uuid.uuid4().hex[:8]}"
    slow = tmp_path / "slow-echo.wasm"
    slow.write_bytes(wat.operator("map", SLOW_ECHO))
    worker = workers(
        pipeline_spec(fault_broker.url, prefix), {"op": pinned(slow, "map", limits={"timeoutPerMessage": "2s"})}
    )
    worker.start()
    wait_until(worker.ready, what="worker /readyz", timeout=120)
    collector = Collector(fault_broker, f"{prefix}/out", key=text_of)
    clients.append(collector)
    total = 200
    keys = [f"m{i}" for i in range(total)]
    publish(fault_broker, f"{prefix}/in/x", *(key.encode() for key in keys))
    wait_until(lambda: collector.count() >= 20, what="the first outputs", timeout=60)

    # The worker holds a backlog (about 20 ms a message): its sink's sends wait through the whole outage.
    down = time.monotonic()
    stop_broker(fault_broker)
    wait_until(lambda: time.monotonic() - down > SEND_TIMEOUT_S + 5, what="an outage past the send timeout", timeout=60)
    start_broker(fault_broker.state_dir)
    back = time.monotonic()
    wait_until(worker.ready, what="worker /readyz after the outage", timeout=90)
    collector.settle(total, timeout=120)

    tally = collector.tally(keys)
    flowing = collector.first_arrival_after(back)
    figures: dict[str, Any] = {
        "messages": total,
        "lost": len(tally.lost),
        "duplicated": tally.duplicated,
        "outage_s": back - down,
        "first_output_after_broker_back_s": (flowing - back) if flowing else -1.0,
    }
    report(**figures)
    assert worker.exited() is None, worker.output()
    assert tally.lost == [] and tally.unexpected == [], f"lost {len(tally.lost)}: {tally.lost[:10]}"


def test_a_send_awaiting_its_puback_when_the_connection_dies_is_resent_and_returns(
    fault_broker: BrokerEnv, clients: Clients, report: Report
) -> None:
    """The PUBLISH is written, the broker is frozen (no PUBACK) and then killed, and stays away longer than the
    sink's send timeout: the send waits for the reconnect, paho sends the PUBLISH again, its PUBACK comes and the
    send returns. Before, it raised "no PUBACK" after the timeout, and the node died with it."""
    topic = f"resend-{uuid.uuid4().hex[:8]}"
    collector = Collector(fault_broker, topic, key=text_of)
    clients.append(collector)
    subscribed = time.time()
    database = fault_broker.state_dir / "data" / "mosquitto.db"
    wait_until(lambda: database.exists() and database.stat().st_mtime > subscribed, what="the subscription saved")
    pid = int((fault_broker.state_dir / "mosquitto.pid").read_text())
    settings = MqttSettings.from_url(fault_broker.url, client_id=f"resend-sink-{uuid.uuid4().hex[:6]}")
    timeout = 2.0

    async def scenario() -> float:
        sink = MqttSink(settings, topic, timeout=timeout)
        killed = False
        try:
            await sink.wait_connected(10)
            os.kill(pid, signal.SIGSTOP)
            send = asyncio.create_task(sink.send(Message(b"resent", topic)))
            await asyncio.sleep(0)  # the PUBLISH is written to the frozen broker's socket
            os.kill(pid, signal.SIGKILL)  # the connection dies with the PUBACK outstanding
            killed, at = True, time.monotonic()
            done, _ = await asyncio.wait({send}, timeout=timeout + 1)
            assert not done, f"the send ended while the broker was away: {send.exception()!r}"
            await asyncio.to_thread(start_broker, fault_broker.state_dir)
            await asyncio.wait_for(send, 60)
            return time.monotonic() - at
        finally:
            if killed:  # the other tests of the session need the broker back
                await asyncio.to_thread(start_broker, fault_broker.state_dir)
            await sink.close()

    took = asyncio.run(scenario())
    wait_until(lambda: collector.count() >= 1, what="the resent message", timeout=30)
    report(send_timeout_s=timeout, send_returned_after_s=took, delivered=collector.count())
    assert collector.received()[0] == "resent"
