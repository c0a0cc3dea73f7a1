"""Worker figures, with the real ``wasmflow worker`` process and the real broker (mosquitto, started for this run).

Figure 3, pipeline messages per second: MQTT -> map (°F→°C) -> filter (range) -> MQTT on one worker, with the
componentize-py operators and with the WAT ones (bench/wat_operators), at QoS 0 and QoS 1, next to the broker's
own loopback ceiling measured in the same run: the same publisher and subscriber with no worker between them.
The load is closed-loop: the publisher keeps at most ``WINDOW`` messages in flight (published, not yet received
back), so no queue overflows and the rate is what the path sustains. Each message carries the run's id and only
matching outputs are counted.

Figure 4, worker cold start: a fresh ``wasmflow worker`` process with 3 componentize-py operators (map, filter,
branch), from exec until ``/readyz`` answers 200 (modules verified, checked, compiled or loaded from the
compiled-module cache, instantiated, broker connected); without the cache (an empty cache directory) and with it
(the same directory a previous start filled). The floor beside them: the interpreter importing the worker.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from tests.components.build import build
from tests.mqtt_env import BrokerEnv

from bench import services, wat_operators
from bench.report import Sample
from wasmflow.api.dataflow import DataflowSpec
from wasmflow.api.workerconfig import PinnedModule, WorkerConfig

WASMFLOW = str(Path(sys.executable).parent / "wasmflow")
WINDOW = 100
RUN_SECONDS = 3.0
RUNS = 3
START_RUNS_COLD = 1
START_RUNS_WARM = 3


def _client(broker: BrokerEnv, name: str) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-{name}-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5
    )
    client.max_inflight_messages_set(WINDOW)
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def _close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


class ClosedLoop:
    """A publisher to ``in_topic`` and a subscriber on ``out_topic`` that keep at most WINDOW messages between them."""

    def __init__(self, broker: BrokerEnv, in_topic: str, out_topic: str, qos: int) -> None:
        self.in_topic, self.qos = in_topic, qos
        self._received = 0
        self._run = ""
        self._changed = threading.Condition()
        subscribed = threading.Event()
        self.subscriber = _client(broker, "sub")
        self.subscriber.on_message = self._on_message
        self.subscriber.on_subscribe = lambda *_a: subscribed.set()
        self.subscriber.subscribe(out_topic, qos=qos)
        if not subscribed.wait(10):
            raise RuntimeError(f"the broker did not acknowledge the subscription to {out_topic}")
        self.publisher = _client(broker, "pub")

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if self._run.encode() in message.payload:
            with self._changed:
                self._received += 1
                self._changed.notify()

    def rate(self, seconds: float) -> float:
        """Messages per second received back over ``seconds`` of closed-loop publishing."""
        run = uuid.uuid4().hex
        payload = json.dumps({"sensor": "line-3/oven-2", "run": run, "value": 98.6}, separators=(",", ":")).encode()
        with self._changed:
            self._run, self._received = run, 0
        sent = 0
        start = time.perf_counter()
        deadline = start + seconds
        while (now := time.perf_counter()) < deadline:
            with self._changed:
                while sent - self._received >= WINDOW and (now := time.perf_counter()) < deadline:
                    self._changed.wait(deadline - now)
            if now >= deadline:
                break
            self.publisher.publish(self.in_topic, payload, qos=self.qos)
            sent += 1
        with self._changed:
            received = self._received
            self._run = ""  # late arrivals of this run are not counted in the next one
        if received == 0:
            raise RuntimeError(f"nothing came back from {self.in_topic} in {seconds:.0f} s")
        return received / (time.perf_counter() - start)

    def close(self) -> None:
        _close(self.publisher)
        _close(self.subscriber)


def _rates(loop: ClosedLoop) -> Sample:
    loop.rate(1.0)  # warm-up: connections, caches, the worker's first instances
    return Sample.of([loop.rate(RUN_SECONDS) for _ in range(RUNS)])


def _module(path_or_bytes: Path | bytes, kind: str, directory: Path, name: str) -> PinnedModule:
    if isinstance(path_or_bytes, bytes):
        path = directory / f"{name}.wasm"
        path.write_bytes(path_or_bytes)
    else:
        path = path_or_bytes
    digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    return PinnedModule.model_validate({"digest": digest, "path": str(path), "operator": kind})


def _config(
    directory: Path,
    broker: BrokerEnv,
    qos: int,
    nodes: list[dict[str, Any]],
    edges: list[dict[str, Any]],
    modules: dict[str, PinnedModule],
    cache: Path,
) -> tuple[Path, int]:
    port = services.free_port()
    spec = DataflowSpec.model_validate(
        {"endpoints": {"broker": {"mqtt": {"url": broker.url, "qos": qos}}}, "nodes": nodes, "edges": edges}
    )
    config = WorkerConfig(
        namespace="bench", dataflow="bench", spec=spec, modules=modules, http_port=port, cache_dir=str(cache)
    )
    path = directory / f"config-{uuid.uuid4().hex[:6]}.json"
    path.write_text(config.model_dump_json(by_alias=True, exclude_none=True))
    return path, port


@contextlib.contextmanager
def _worker(config: Path, port: int) -> Iterator[float]:
    """A running worker; yields the seconds from exec to /readyz 200. SIGTERM at the end (it must exit 0)."""
    log = config.with_suffix(".log").open("w")
    start = time.perf_counter()
    process = subprocess.Popen([WASMFLOW, "worker", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            services.wait_for(
                lambda: process.poll() is not None or services.http_ok(f"http://127.0.0.1:{port}/readyz"),
                what="worker /readyz",
                timeout=300,
            )
        finally:
            log.flush()
        if process.poll() is not None:
            raise RuntimeError(
                f"the worker exited with {process.returncode}: {config.with_suffix('.log').read_text()[-3000:]}"
            )
        yield time.perf_counter() - start
        process.send_signal(signal.SIGTERM)
        if process.wait(timeout=60) != 0:
            raise RuntimeError(f"the worker exited with {process.returncode} on SIGTERM")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


def _pipeline(name: str, prefix: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    nodes = [
        {"name": "in", "type": "source", "endpoint": "broker", "topic": f"{prefix}/in"},
        {"name": "to-celsius", "type": "map", "module": f"{name}-map"},
        {"name": "in-range", "type": "filter", "module": f"{name}-filter"},
        {"name": "out", "type": "sink", "endpoint": "broker", "topic": f"{prefix}/out"},
    ]
    edges = [
        {"from": "in", "to": "to-celsius"},
        {"from": "to-celsius", "to": "in-range"},
        {"from": "in-range", "to": "out"},
    ]
    return nodes, edges


def _pipeline_figures(broker: BrokerEnv, work: Path) -> list[dict[str, Any]]:
    operator_sets: dict[str, tuple[Path | bytes, Path | bytes]] = {
        "componentize-py": (build("f2c_map"), build("range_filter")),
        "WAT": (wat_operators.f2c_map(), wat_operators.range_filter()),
    }
    cache = work / f"cache-{START_RUNS_COLD - 1}"  # filled by the start figure: the pipelines start warm
    figures: list[dict[str, Any]] = []
    for qos in (0, 1):
        prefix = f"bench/{uuid.uuid4().hex[:8]}"
        ceiling_loop = ClosedLoop(broker, f"{prefix}/ceiling", f"{prefix}/ceiling", qos)
        try:
            ceiling = _rates(ceiling_loop)
        finally:
            ceiling_loop.close()
        for label, (map_component, filter_component) in operator_sets.items():
            name = label.split("-")[0].lower()
            modules = {
                f"{name}-map": _module(map_component, "map", work, f"{name}-map"),
                f"{name}-filter": _module(filter_component, "filter", work, f"{name}-filter"),
            }
            nodes, edges = _pipeline(name, f"{prefix}/{name}")
            config, port = _config(work, broker, qos, nodes, edges, modules, cache)
            with _worker(config, port):
                loop = ClosedLoop(broker, f"{prefix}/{name}/in", f"{prefix}/{name}/out", qos)
                try:
                    ours = _rates(loop)
                finally:
                    loop.close()
            figures.append(
                {
                    "name": f"3. pipeline MQTT -> map -> filter -> MQTT, {label} operators, QoS {qos}",
                    "unit": "msg/s",
                    "ours": ours,
                    "comparators": {"broker loopback ceiling (no worker)": ceiling},
                    "note": f"one worker, closed loop with {WINDOW} in flight; ratio below 1: slower than the ceiling",
                }
            )
    return figures


def _import_floor() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import wasmflow.worker.main"], check=True)
    return time.perf_counter() - start


def _start_figure(broker: BrokerEnv, work: Path) -> dict[str, Any]:
    modules = {
        "f2c": _module(build("f2c_map"), "map", work, "f2c"),
        "range": _module(build("range_filter"), "filter", work, "range"),
        "hot": _module(build("threshold_branch"), "branch", work, "hot"),
    }
    prefix = f"bench/{uuid.uuid4().hex[:8]}"
    nodes: list[dict[str, Any]] = [
        {"name": "in", "type": "source", "endpoint": "broker", "topic": f"{prefix}/in"},
        {"name": "to-celsius", "type": "map", "module": "f2c"},
        {"name": "in-range", "type": "filter", "module": "range"},
        {"name": "overheat", "type": "branch", "module": "hot"},
        {"name": "alerts", "type": "sink", "endpoint": "broker", "topic": f"{prefix}/alerts"},
        {"name": "normal", "type": "sink", "endpoint": "broker", "topic": f"{prefix}/normal"},
    ]
    edges: list[dict[str, Any]] = [
        {"from": "in", "to": "to-celsius"},
        {"from": "to-celsius", "to": "in-range"},
        {"from": "in-range", "to": "overheat"},
        {"from": "overheat", "to": "alerts", "arm": True},
        {"from": "overheat", "to": "normal", "arm": False},
    ]
    cold, warm = [], []
    for run in range(START_RUNS_COLD):
        cache = work / f"cache-{run}"  # empty: every component is compiled
        config, port = _config(work, broker, 1, nodes, edges, modules, cache)
        with _worker(config, port) as seconds:
            cold.append(seconds)
    for _ in range(START_RUNS_WARM):  # the cache the last cold start filled
        config, port = _config(work, broker, 1, nodes, edges, modules, cache)
        with _worker(config, port) as seconds:
            warm.append(seconds)
    floor = Sample.of([_import_floor() for _ in range(3)])
    return {
        "name": "4. worker cold start to /readyz, 3 componentize-py operators, compiled-module cache warm",
        "unit": "s",
        "ours": Sample.of(warm),
        "comparators": {"without the cache (compile)": Sample.of(cold), "interpreter importing the worker": floor},
        "target": "< 1 s (issue 5)",
        "note": "exec -> /readyz: verify digests, check, load or compile, instantiate, init, connect MQTT",
    }


def run() -> list[dict[str, Any]]:
    with services.broker() as broker, tempfile.TemporaryDirectory(prefix="wasmflow-bench-worker-") as tmp:
        work = Path(tmp)
        start = _start_figure(broker, work)  # first: it fills the compiled-module cache the pipelines reuse
        return [start, *_pipeline_figures(broker, work)]
