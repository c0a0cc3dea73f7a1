"""The worker as a real process with a rendered config: MQTT in, operators, MQTT out, HTTP endpoints, SIGTERM."""

from __future__ import annotations

import hashlib
import json
import queue
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.integration.conftest import wait_until
from tests.services import BrokerEnv
from wasmflow.api.dataflow import DataflowSpec
from wasmflow.api.workerconfig import PinnedModule, WorkerConfig

WASMFLOW = str(Path(sys.executable).parent / "wasmflow")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def subscriber(broker: BrokerEnv, topic: str) -> tuple[mqtt.Client, queue.Queue[mqtt.MQTTMessage]]:
    received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    subscribed = queue.Queue[bool]()
    client.on_message = lambda _c, _u, m: received.put(m)
    client.on_subscribe = lambda *_a: subscribed.put(True)
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.subscribe(topic, qos=1)
    subscribed.get(timeout=10)
    return client, received


@pytest.fixture
def worker(
    tmp_path: Path, mqtt_broker: BrokerEnv, component: Callable[[str], Path]
) -> Iterator[tuple[subprocess.Popen[str], int, str]]:
    prefix = f"w{uuid.uuid4().hex[:8]}"
    spec = DataflowSpec.model_validate(
        {
            "endpoints": {"broker": {"mqtt": {"url": mqtt_broker.url, "qos": 1}}},
            "nodes": [
                {"name": "in", "type": "source", "endpoint": "broker", "topic": f"{prefix}/in/+"},
                {"name": "c", "type": "map", "module": "f2c", "configuration": {"precision": "1"}},
                {"name": "keep", "type": "filter", "module": "range"},
                {"name": "out", "type": "sink", "endpoint": "broker", "topic": f"{prefix}/out"},
            ],
            "edges": [{"from": "in", "to": "c"}, {"from": "c", "to": "keep"}, {"from": "keep", "to": "out"}],
        }
    )
    modules = {}
    for name, built in (("f2c", "f2c_map"), ("range", "range_filter")):
        path = component(built)
        digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
        kind = "map" if name == "f2c" else "filter"
        modules[name] = PinnedModule(digest=digest, path=str(path), operator=kind)  # type: ignore[arg-type]
    port = free_port()
    config = WorkerConfig(
        namespace="t", dataflow="temps", spec=spec, modules=modules, http_port=port, cache_dir=str(tmp_path / "cache")
    )
    (tmp_path / "config.json").write_text(config.model_dump_json(by_alias=True, exclude_none=True))
    process = subprocess.Popen(
        [WASMFLOW, "worker", "--config", str(tmp_path / "config.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process, port, prefix
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_messages_published_on_the_input_topic_arrive_transformed_on_the_output(
    worker: tuple[subprocess.Popen[str], int, str], mqtt_broker: BrokerEnv
) -> None:
    process, port, prefix = worker
    wait_until(lambda: ready(port), what="worker /readyz", timeout=120)
    client, received = subscriber(mqtt_broker, f"{prefix}/out")
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    publisher.connect(mqtt_broker.host, mqtt_broker.port)
    publisher.loop_start()
    for sensor, fahrenheit in (("a", 212), ("b", 9999), ("c", 32)):
        body = json.dumps({"sensor": sensor, "value": fahrenheit}).encode()
        publisher.publish(f"{prefix}/in/{sensor}", body, qos=1).wait_for_publish(5)
    got: list[dict[str, Any]] = [json.loads(received.get(timeout=30).payload) for _ in range(2)]
    assert got == [{"sensor": "a", "value": 100.0, "unit": "C"}, {"sensor": "c", "value": 0.0, "unit": "C"}]
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'wasmflow_node_messages_in_total{node="c"} 3.0' in metrics
    assert 'wasmflow_node_messages_dropped_total{node="keep",reason="filtered"} 1.0' in metrics
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    publisher.loop_stop()
    client.loop_stop()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


def test_a_module_file_that_is_missing_stops_the_worker_naming_the_module_and_the_file(
    tmp_path: Path, mqtt_broker: BrokerEnv
) -> None:
    spec = DataflowSpec.model_validate(
        {
            "endpoints": {"broker": {"mqtt": {"url": mqtt_broker.url}}},
            "nodes": [
                {"name": "in", "type": "source", "endpoint": "broker", "topic": "t/in"},
                {"name": "c", "type": "map", "module": "f2c"},
                {"name": "out", "type": "sink", "endpoint": "broker", "topic": "t/out"},
            ],
            "edges": [{"from": "in", "to": "c"}, {"from": "c", "to": "out"}],
        }
    )
    missing = tmp_path / "modules" / "f2c.wasm"
    module = PinnedModule(digest="sha256:" + "0" * 64, path=str(missing), operator="map")  # type: ignore[arg-type]
    config = WorkerConfig(
        namespace="t", dataflow="temps", spec=spec, modules={"f2c": module}, http_port=free_port(),
        cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    (tmp_path / "config.json").write_text(config.model_dump_json(by_alias=True, exclude_none=True))
    result = subprocess.run(
        [WASMFLOW, "worker", "--config", str(tmp_path / "config.json")],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert f"{missing}: module 'f2c': cannot read its file: No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr
