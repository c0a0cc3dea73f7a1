"""The worker as a real process under faults, and the MQTT clients that feed and watch it from the outside.

``WorkerProcess`` runs ``wasmflow worker --config`` with the config a pod would mount, under a fixed HOSTNAME (a
pod's name survives a container restart, so the worker's MQTT client ids, and with them its persistent sessions,
do too). ``Publisher`` and ``Collector`` are plain paho clients with persistent sessions of their own, so a broker
restart costs them nothing: what they count is what the worker did.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.components.build import cache_dir
from tests.mqtt_env import BrokerEnv
from wasmflow.api.dataflow import DataflowSpec, Endpoint
from wasmflow.api.dataflow_graph import GraphPort
from wasmflow.api.wasmmodule import Limits
from wasmflow.api.workerconfig import AioModule, AioWorkerConfig, EndpointFiles, PinnedModule, WorkerConfig

WASMFLOW = str(Path(sys.executable).parent / "wasmflow")


def one_map_dataflow(name: str, module: str, *, topic: str = "t") -> dict[str, Any]:
    """The Dataflow manifest ``wasmflow run`` tests feed: source ``topic`` -> map ``module`` -> sink ``out``, failed
    messages dead-lettered to ``dead`` (the endpoint is never reached: ``wasmflow run`` reads and writes files)."""
    return {
        "apiVersion": "wasmflow.io/v1alpha1",
        "kind": "Dataflow",
        "metadata": {"name": name},
        "spec": {
            "endpoints": {"b": {"mqtt": {"url": "mqtt://broker:1883"}}},
            "nodes": [
                {"name": "in", "type": "source", "endpoint": "b", "topic": topic},
                {"name": "op", "type": "map", "module": module},
                {"name": "out", "type": "sink", "endpoint": "b", "topic": "out"},
            ],
            "edges": [{"from": "in", "to": "op"}, {"from": "op", "to": "out"}],
            "errorPolicy": {"action": "deadLetter", "endpoint": "b", "topic": "dead"},
        },
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shared_compiled_cache(cache: Path) -> Path:
    """``cache`` with its ``compiled`` folder shared across tests and sessions (compiling a componentize-py
    component takes seconds; blobs stay private to the test so pulls really happen)."""
    cache.mkdir(parents=True, exist_ok=True)
    compiled = cache_dir().parent / "compiled"
    compiled.mkdir(parents=True, exist_ok=True)
    link = cache / "compiled"
    if not link.exists():
        link.symlink_to(compiled, target_is_directory=True)
    return cache


def write_config(
    directory: Path,
    spec: dict[str, Any],
    modules: dict[str, PinnedModule],
    *,
    endpoint_files: dict[str, EndpointFiles] | None = None,
) -> WorkerConfig:
    """Render a worker config (what the controller puts in the ConfigMap) into ``directory/config.json``."""
    config = WorkerConfig(
        namespace="faults",
        dataflow=f"df-{uuid.uuid4().hex[:6]}",
        spec=DataflowSpec.model_validate(spec),
        modules=modules,
        endpoint_files=endpoint_files or {},
        http_port=free_port(),
        cache_dir=str(shared_compiled_cache(directory / "cache")),
    )
    (directory / "config.json").write_text(config.model_dump_json(by_alias=True, exclude_none=True))
    return config


def aio_worker(
    directory: Path,
    url: str,
    definition: str,
    modules: dict[str, Path],
    *,
    source_topic: str,
    sink_topic: str,
    endpoint_files: dict[str, EndpointFiles] | None = None,
    event_time: bool = False,
) -> WorkerProcess:
    """A WorkerProcess (not started) for an AIO graph ``definition`` with one ``source`` and one ``sink`` operation
    on a QoS 1 endpoint at ``url``; ``modules`` maps each module reference to its component file (pinned)."""
    config = AioWorkerConfig(
        namespace="faults",
        dataflow=f"aio-{uuid.uuid4().hex[:6]}",
        definition=definition,
        endpoints={"broker": Endpoint.model_validate({"mqtt": {"url": url, "qos": 1}})},
        modules={
            # AIO's 100 ms default per message is tight for a batch of 64 on a loaded 2-core machine.
            ref: AioModule(
                digest="sha256:" + hashlib.sha256(path.read_bytes()).hexdigest(),
                path=str(path),
                limits=Limits(timeout_per_message="5s"),
            )
            for ref, path in modules.items()
        },
        sources={"source": GraphPort(endpoint="broker", topic=source_topic)},
        sinks={"sink": GraphPort(endpoint="broker", topic=sink_topic)},
        endpoint_files=endpoint_files or {},
        event_time=event_time,
        http_port=free_port(),
        cache_dir=str(shared_compiled_cache(directory / "cache")),
    )
    (directory / "config.json").write_text(config.model_dump_json(by_alias=True, exclude_none=True))
    return WorkerProcess(directory, config)


def pipeline_spec(url: str, prefix: str, module: str = "op", kind: str = "map", **mqtt: Any) -> dict[str, Any]:
    """MQTT in (``<prefix>/in/+``) -> one operator -> MQTT out (``<prefix>/out``), QoS 1 unless told."""
    return {
        "endpoints": {"broker": {"mqtt": {"url": url, "qos": 1, **mqtt}}},
        "nodes": [
            {"name": "in", "type": "source", "endpoint": "broker", "topic": f"{prefix}/in/+"},
            {"name": "op", "type": kind, "module": module},
            {"name": "out", "type": "sink", "endpoint": "broker", "topic": f"{prefix}/out"},
        ],
        "edges": [{"from": "in", "to": "op"}, {"from": "op", "to": "out"}],
    }


@dataclass
class WorkerProcess:
    """One worker's process, restartable with the same config and identity; its output goes to ``log``."""

    directory: Path
    config: WorkerConfig | AioWorkerConfig
    hostname: str = field(default_factory=lambda: f"fault-worker-{uuid.uuid4().hex[:6]}")
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    #: Debug logging (``wasmflow worker -v``): the most the worker ever says.
    verbose: bool = False

    @property
    def log(self) -> Path:
        return self.directory / "worker.log"

    @property
    def port(self) -> int:
        return self.config.http_port

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"--- start {self.starts}\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                [
                    WASMFLOW,
                    "worker",
                    "--config",
                    str(self.directory / "config.json"),
                    *(["-v"] if self.verbose else []),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "HOSTNAME": self.hostname},
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def ready(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float = 60) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)

    def peak_rss_bytes(self) -> int:
        """The process's high-water resident set (VmHWM), read while it runs."""
        return self._status_kib("VmHWM") * 1024

    def rss_bytes(self) -> int:
        """The process's resident set now (VmRSS)."""
        return self._status_kib("VmRSS") * 1024

    def _status_kib(self, field: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc/{self.pid}/status")

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _client(broker: BrokerEnv, client_id: str, *, port: int | None = None, **credentials: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.reconnect_delay_set(1, 2)
    if credentials:
        client.username_pw_set(credentials["username"], credentials["password"])
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 600
    client.connect(broker.host, port or broker.port, clean_start=False, properties=props)
    client.loop_start()
    return client


def sensor_of(payload: bytes) -> str:
    """The key of a reading (and of the f2c operator's output): its ``sensor`` field."""
    return str(json.loads(payload)["sensor"])


def text_of(payload: bytes) -> str:
    return payload.decode("utf-8", "replace")


class Collector:
    """Subscribes (QoS 1, persistent session) to the worker's output and counts what arrives, by key."""

    def __init__(self, broker: BrokerEnv, topic: str, key: Callable[[bytes], str] = sensor_of) -> None:
        self.key = key
        self.keys: list[str] = []
        self.arrivals: list[float] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = _client(broker, f"collector-{uuid.uuid4().hex[:8]}")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.subscribe(topic, qos=1)
        assert subscribed.wait(10), f"subscription to {topic} not acknowledged"

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        key = self.key(bytes(message.payload))
        with self._lock:
            self.keys.append(key)
            self.arrivals.append(time.monotonic())

    def received(self) -> list[str]:
        with self._lock:
            return list(self.keys)

    def count(self) -> int:
        with self._lock:
            return len(self.keys)

    def distinct(self) -> int:
        with self._lock:
            return len(set(self.keys))

    def settle(self, distinct: int, timeout: float) -> None:
        """Wait until ``distinct`` different keys arrived, or ``timeout``: the tally then says what is missing."""
        deadline = time.monotonic() + timeout
        while self.distinct() < distinct and time.monotonic() < deadline:
            time.sleep(0.1)

    def tally(self, expected: list[str]) -> Tally:
        with self._lock:
            counts = Counter(self.keys)
        return Tally(
            lost=sorted(set(expected) - set(counts), key=expected.index),
            duplicated=sum(n - 1 for n in counts.values() if n > 1),
            unexpected=sorted(set(counts) - set(expected)),
        )

    def first_arrival_after(self, moment: float) -> float | None:
        with self._lock:
            return next((t for t in self.arrivals if t > moment), None)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass(frozen=True)
class Tally:
    lost: list[str]
    duplicated: int
    unexpected: list[str]


class Publisher:
    """Publishes numbered readings at QoS 1 from a thread of its own; paho keeps unacknowledged ones across a
    broker restart and sends them again, so every reading is eventually with the broker."""

    def __init__(self, broker: BrokerEnv, prefix: str, total: int, interval: float = 0.005) -> None:
        self.prefix = prefix
        self.total = total
        self.interval = interval
        self.keys = [f"s{i}" for i in range(total)]
        self.published = 0
        self._acknowledged: set[int] = set()
        self._mids: set[int] = set()
        self._lock = threading.Lock()
        self.client = _client(broker, f"publisher-{uuid.uuid4().hex[:8]}")
        self.client.on_publish = self._on_publish
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, _reason: Any, _props: Any) -> None:
        with self._lock:
            self._acknowledged.add(mid)

    @staticmethod
    def reading(key: str) -> bytes:
        return json.dumps({"sensor": key, "value": 212}).encode()

    def _run(self) -> None:
        for key in self.keys:
            # While the broker is away paho answers "no connection" but keeps the message and sends it later.
            info = self.client.publish(f"{self.prefix}/in/{key}", self.reading(key), qos=1)
            with self._lock:
                self._mids.add(info.mid)
            self.published += 1
            time.sleep(self.interval)

    def start(self) -> None:
        self._thread.start()

    def wait_published(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.published < count:
            assert time.monotonic() < deadline, f"only {self.published} of {count} readings handed to paho"
            time.sleep(0.01)

    def finish(self, timeout: float = 60) -> None:
        """Every reading handed over and acknowledged by the broker."""
        self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                missing = len(self._mids - self._acknowledged)
            if not missing:
                return
            assert time.monotonic() < deadline, f"{missing} readings never acknowledged by the broker"
            time.sleep(0.05)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish(broker: BrokerEnv, topic: str, *payloads: bytes) -> None:
    """Publish ``payloads`` in order at QoS 1, each acknowledged by the broker before the next."""
    client = _client(broker, f"once-{uuid.uuid4().hex[:8]}")
    try:
        for payload in payloads:
            info = client.publish(topic, payload, qos=1)
            info.wait_for_publish(10)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()
