"""The worker running an AIO graph definition unchanged: real mosquitto in and out, AIO operators built with
componentize-py, the operators' own metrics on /metrics, SIGTERM."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.components.build import cache_dir
from tests.integration.conftest import wait_until
from tests.integration.oci.test_registry import push_raw
from tests.integration.worker.test_worker_process import WASMFLOW, free_port, ready, subscriber
from tests.services import BrokerEnv, Registry
from wasmflow.api.dataflow import DataflowSpec, Endpoint, ErrorPolicy
from wasmflow.api.dataflow_graph import GraphPort, SharedStateStore
from wasmflow.api.wasmmodule import Limits
from wasmflow.api.workerconfig import AioModule, AioWorkerConfig, PinnedGraph, WorkerConfig
from wasmflow.oci import mediatypes as mt
from wasmflow.operator.config import OperatorConfig
from wasmflow.operator.dataflows import resolve_graph

GRAPH = Path(__file__).resolve().parents[1] / "run" / "aio" / "graph.yaml"
INPUT = Path(__file__).resolve().parents[1] / "run" / "aio" / "input.jsonl"
MODULES = {
    "wasmflow-tests/f2c:1.0.0": "aio_f2c_map",
    "wasmflow-tests/range:1.0.0": "aio_range_filter",
    "wasmflow-tests/threshold:1.0.0": "aio_threshold_branch",
    "wasmflow-tests/window:1.0.0": "aio_window_delay",
    "wasmflow-tests/average:1.0.0": "aio_average_accumulate",
    "wasmflow-tests/counting:1.0.0": "aio_counting_map",
}
COUNTING_GRAPH = """
metadata: {name: counting, version: "1.0.0"}
moduleRequirements: {apiVersion: "1.1.0", runtimeVersion: "1.1.0"}
operations:
  - {operationType: source, name: source}
  - {operationType: map, name: module-count/map, module: "wasmflow-tests/counting:1.0.0"}
  - {operationType: sink, name: sink}
connections:
  - {from: {name: source}, to: {name: module-count/map}}
  - {from: {name: module-count/map}, to: {name: sink}}
"""


@pytest.fixture
def start_worker(
    tmp_path: Path, mqtt_broker: BrokerEnv, component: Callable[[str], Path]
) -> Iterator[Callable[[str], tuple[subprocess.Popen[str], int, str]]]:
    processes: list[subprocess.Popen[str]] = []

    def start(
        definition: str, *, dead_letter: bool = False, limits: dict[str, Limits] | None = None
    ) -> tuple[subprocess.Popen[str], int, str]:
        prefix = f"a{uuid.uuid4().hex[:8]}"
        modules = {}
        for reference, name in MODULES.items():
            path = component(name)
            digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
            modules[reference] = AioModule(
                digest=digest, path=str(path), limits=(limits or {}).get(reference, Limits())
            )
        policy = None
        if dead_letter:
            policy = ErrorPolicy.model_validate(
                {"action": "deadLetter", "endpoint": "broker", "topic": f"{prefix}/dlq"}
            )
        port = free_port()
        config = AioWorkerConfig(
            namespace="t",
            dataflow="aio",
            definition=definition,
            endpoints={"broker": Endpoint.model_validate({"mqtt": {"url": mqtt_broker.url, "qos": 1}})},
            modules=modules,
            sources={"source": GraphPort(endpoint="broker", topic=f"{prefix}/in")},
            sinks={"sink": GraphPort(endpoint="broker", topic=f"{prefix}/out")},
            event_time=True,
            error_policy=policy,
            http_port=port,
            cache_dir=str(cache_dir().parent),  # the session's compiled components
        )
        (tmp_path / f"{prefix}.json").write_text(config.model_dump_json(by_alias=True, exclude_none=True))
        process = subprocess.Popen(
            [WASMFLOW, "worker", "--config", str(tmp_path / f"{prefix}.json")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        processes.append(process)
        return process, port, prefix

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def publish(broker: BrokerEnv, topic: str, records: list[tuple[bytes, int]]) -> None:
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    publisher.connect(broker.host, broker.port)
    publisher.loop_start()
    for payload, timestamp_ms in records:
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.UserProperty = [("timestamp-ms", str(timestamp_ms))]
        publisher.publish(topic, payload, qos=1, properties=properties).wait_for_publish(5)
    publisher.loop_stop()
    publisher.disconnect()


# What GRAPH makes of INPUT (as tests/integration/run/test_aio_graph.py has ``wasmflow run`` make of it).
GRAPH_OUTPUT = [
    '{"value":40.0,"unit":"C"}',
    '{"count":2,"min":10.0,"max":20.0,"sum":30.0}',
    '{"count":2,"min":5.0,"max":15.0,"sum":20.0}',
    '{"value":100.0,"unit":"C"}',
]


def publish_input(broker: BrokerEnv, prefix: str) -> tuple[mqtt.Client, list[str]]:
    """INPUT published to ``<prefix>/in``: the subscribed client and the first four payloads on ``<prefix>/out``."""
    client, received = subscriber(broker, f"{prefix}/out")
    lines = [json.loads(line) for line in INPUT.read_text().splitlines()]
    publish(broker, f"{prefix}/in", [(json.dumps(r["payload"]).encode(), r["timestampMs"]) for r in lines])
    return client, [received.get(timeout=60).payload.decode() for _ in range(4)]


def assert_worker_runs_the_graph(args: list[str], port: int, broker: BrokerEnv, prefix: str) -> None:
    """``wasmflow worker ARGS`` turns ready on ``port``, makes GRAPH_OUTPUT of INPUT and exits 0 on SIGTERM."""
    process = subprocess.Popen(
        [WASMFLOW, "worker", *args, "--http-port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: ready(port) or process.poll() is not None, what="worker /readyz", timeout=600)
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        client, got = publish_input(broker, prefix)
        assert got == GRAPH_OUTPUT
        client.loop_stop()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.timeout(900)
def test_the_aio_graph_on_a_worker_gives_the_same_output_as_wasmflow_run(
    start_worker: Callable[[str], tuple[subprocess.Popen[str], int, str]], mqtt_broker: BrokerEnv
) -> None:
    process, port, prefix = start_worker(GRAPH.read_text())
    wait_until(lambda: ready(port), what="AIO worker /readyz", timeout=600)
    client, got = publish_input(mqtt_broker, prefix)
    assert got == GRAPH_OUTPUT
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'wasmflow_node_messages_in_total{node="module-f2c/map"} 7.0' in metrics
    assert 'wasmflow_node_messages_dropped_total{node="module-range/filter",reason="filtered"} 1.0' in metrics
    client.loop_stop()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0


@pytest.mark.timeout(900)
def test_state_store_and_metrics_imports_work_and_reach_metrics(
    start_worker: Callable[[str], tuple[subprocess.Popen[str], int, str]], mqtt_broker: BrokerEnv
) -> None:
    process, port, prefix = start_worker(COUNTING_GRAPH)
    wait_until(lambda: ready(port), what="AIO worker /readyz", timeout=600)
    client, received = subscriber(mqtt_broker, f"{prefix}/out")
    publish(mqtt_broker, f"{prefix}/in", [(json.dumps({"sensor": "t1", "value": v}).encode(), 1000) for v in (1, 2, 3)])
    got = [json.loads(received.get(timeout=60).payload)["seen"] for _ in range(3)]
    assert got == [1, 2, 3]
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'wasmflow_aio_messages_total{node="module-count/map",sensor="t1"} 3.0' in metrics
    assert 'wasmflow_aio_value_sum{node="module-count/map"} 6.0' in metrics
    client.loop_stop()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0


@pytest.mark.timeout(900)
def test_a_dataflow_referencing_a_graph_artifact_runs_it_with_modules_from_the_registry(
    tmp_path: Path, mqtt_broker: BrokerEnv, registry: Registry, component: Callable[[str], Path]
) -> None:
    """The graph and its modules pushed as AIO pushes them (oras layouts), a Dataflow's spec.graph naming them."""
    base = f"{registry.host}/aio-{uuid.uuid4().hex[:8]}"
    for reference, name in MODULES.items():
        push_raw(
            f"{base}/{reference}",
            mt.OCI_EMPTY,
            [(mt.WASM_LAYER_CONTENT, component(name).read_bytes())],
            artifact_type=mt.AIO_MODULE_ARTIFACT,
        )
    push_raw(f"{base}/graphs/temperatures:1.0.0", mt.AIO_GRAPH, [("application/yaml", GRAPH.read_bytes())])
    prefix = f"d{uuid.uuid4().hex[:8]}"
    spec = DataflowSpec.model_validate(
        {
            "endpoints": {"broker": {"mqtt": {"url": mqtt_broker.url, "qos": 1}}},
            "graph": {
                "artifact": {"reference": f"{base}/graphs/temperatures:1.0.0", "insecure": True},
                "registry": base,
                "insecure": True,
                "sources": {"source": {"endpoint": "broker", "topic": f"{prefix}/in"}},
                "sinks": {"sink": {"endpoint": "broker", "topic": f"{prefix}/out"}},
                "eventTime": True,
            },
        }
    )
    assert spec.graph is not None
    pins = asyncio.run(resolve_graph(spec.graph, OperatorConfig(cache_dir=tmp_path / "controller")))
    assert isinstance(pins, PinnedGraph)  # what the controller renders: the worker pulls only these digests
    port = free_port()
    config = WorkerConfig(
        namespace="t",
        dataflow="temps",
        spec=spec,
        modules={},
        graph=pins,
        http_port=port,
        cache_dir=str(cache_dir().parent),
    )
    (tmp_path / "config.json").write_text(config.model_dump_json(by_alias=True, exclude_none=True))
    assert_worker_runs_the_graph(["--config", str(tmp_path / "config.json")], port, mqtt_broker, prefix)


@pytest.mark.timeout(900)
def test_two_replicas_share_the_state_store_through_the_broker(
    tmp_path: Path, mqtt_broker: BrokerEnv, component: Callable[[str], Path]
) -> None:
    prefix = f"r{uuid.uuid4().hex[:8]}"
    path = component("aio_counting_map")
    module = AioModule(digest="sha256:" + hashlib.sha256(path.read_bytes()).hexdigest(), path=str(path))
    endpoint = Endpoint.model_validate({"mqtt": {"url": mqtt_broker.url, "qos": 1, "sharedSubscriptionGroup": prefix}})
    processes, ports = [], []
    for replica in ("a", "b"):
        port = free_port()
        config = AioWorkerConfig(
            namespace="t",
            dataflow=prefix,
            definition=COUNTING_GRAPH,
            endpoints={"broker": endpoint},
            modules={"wasmflow-tests/counting:1.0.0": module},
            sources={"source": GraphPort(endpoint="broker", topic=f"{prefix}/in")},
            sinks={"sink": GraphPort(endpoint="broker", topic=f"{prefix}/out")},
            state_store=SharedStateStore(endpoint="broker", topic_prefix=f"{prefix}/state"),
            http_port=port,
            cache_dir=str(cache_dir().parent),
        )
        (tmp_path / f"{replica}.json").write_text(config.model_dump_json(by_alias=True, exclude_none=True))
        env = {**os.environ, "HOSTNAME": f"replica-{replica}"}
        processes.append(
            subprocess.Popen(
                [WASMFLOW, "worker", "--config", str(tmp_path / f"{replica}.json")],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
            )
        )
        ports.append(port)
    try:
        for port in ports:
            wait_until(lambda port=port: ready(port), what="replica /readyz", timeout=600)  # type: ignore[misc]
        client, received = subscriber(mqtt_broker, f"{prefix}/out")
        seen = []
        for value in range(6):  # one at a time: each replica sees the other's last write before the next message
            publish(mqtt_broker, f"{prefix}/in", [(json.dumps({"sensor": "t1", "value": value}).encode(), 1000)])
            seen.append(json.loads(received.get(timeout=60).payload)["seen"])
        assert seen == [1, 2, 3, 4, 5, 6]
        handled = [
            httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text.count("wasmflow_aio_messages_total{node=")
            for port in ports
        ]
        assert handled == [1, 1]  # both replicas took messages (the shared subscription split them)
        client.loop_stop()
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            assert process.wait(timeout=60) == 0


F2C_GRAPH = """
metadata: {name: f2c, version: "1.0.0"}
moduleRequirements: {apiVersion: "1.1.0", runtimeVersion: "1.1.0"}
operations:
  - {operationType: source, name: source}
  - {operationType: map, name: module-f2c/map, module: "wasmflow-tests/f2c:1.0.0"}
  - {operationType: sink, name: sink}
connections:
  - {from: {name: source}, to: {name: module-f2c/map}}
  - {from: {name: module-f2c/map}, to: {name: sink}}
"""


@pytest.mark.timeout(900)
def test_an_aio_graph_dead_letters_an_item_its_operator_fails_and_goes_on(
    start_worker: Callable[..., tuple[subprocess.Popen[str], int, str]], mqtt_broker: BrokerEnv
) -> None:
    process, port, prefix = start_worker(F2C_GRAPH, dead_letter=True)
    wait_until(lambda: ready(port), what="AIO worker /readyz", timeout=600)
    dead, failed = subscriber(mqtt_broker, f"{prefix}/dlq")
    out, converted = subscriber(mqtt_broker, f"{prefix}/out")
    publish(mqtt_broker, f"{prefix}/in", [(b"not json", 1000), (b'{"value": 212, "unit": "F"}', 2000)])
    envelope = json.loads(failed.get(timeout=60).payload)
    assert (envelope["node"], envelope["kind"], envelope["payload"]) == ("module-f2c/map", "trap", "not json")
    assert converted.get(timeout=60).payload == b'{"value":100.0,"unit":"C"}'
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'wasmflow_node_messages_dead_lettered_total{node="module-f2c/map"} 1.0' in metrics
    for client in (dead, out):
        client.loop_stop()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0


@pytest.mark.timeout(900)
def test_an_aio_modules_own_limits_apply_to_its_operations(
    start_worker: Callable[..., tuple[subprocess.Popen[str], int, str]], mqtt_broker: BrokerEnv
) -> None:
    """A module given 1,000 units of fuel per message (its ``limits``) runs out on every item: each fails as a
    timeout, to the dead-letter topic, while the module's other operations are untouched."""
    tight = Limits.model_validate({"fuel": 1000})
    process, port, prefix = start_worker(F2C_GRAPH, dead_letter=True, limits={"wasmflow-tests/f2c:1.0.0": tight})
    wait_until(lambda: ready(port), what="AIO worker /readyz", timeout=600)
    dead, failed = subscriber(mqtt_broker, f"{prefix}/dlq")
    publish(mqtt_broker, f"{prefix}/in", [(b'{"value": 212, "unit": "F"}', 1000)])
    envelope = json.loads(failed.get(timeout=60).payload)
    assert (envelope["node"], envelope["kind"]) == ("module-f2c/map", "timeout")
    dead.loop_stop()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
