"""The second half of `make demo` (hack/demo.sh runs the first: builds, services, `wasmflow push`).

It does what the controller and the cluster would do, on this machine, through the project's own code:
  1. resolve each WasmModule of examples/manifests the way the controller does (pull the pushed reference, pinned by
     the digest `wasmflow push` printed, verified), with the references pointing at the local registry;
  2. render the worker config with the controller's pure function (operator/render.py ``worker_config``): the graph,
     every module pinned by the digest it resolved to, the MQTT endpoint pointing at the local broker;
  3. run `wasmflow worker --config` on it (the worker pod's command) and wait for /readyz;
  4. publish examples/data/telemetry.jsonl over MQTT and show, live, what flows through each node (the worker's
     /metrics), the alerts and the window averages the sinks publish;
  5. stop the worker (SIGTERM: it drains, flushing the open window) and print a summary.
Exit 1 when the flow does not add up (a reading lost, a sink message missing), so `make demo` is also a check.

usage: .venv/bin/python hack/demo.py --registry HOST:PORT --broker mqtt://HOST:PORT --run-dir DIR
                                     --pushed NAME=DIGEST... [--rate MESSAGES_PER_SECOND]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client.parser import text_string_to_metric_families

from wasmflow.api.dataflow import Dataflow, NodeType
from wasmflow.api.manifests import parse_manifest
from wasmflow.api.wasmmodule import WasmModule
from wasmflow.api.workerconfig import WorkerConfig
from wasmflow.cli.build import cache_base
from wasmflow.connectors.jsonl import parse_line
from wasmflow.connectors.mqtt_messages import publish_properties
from wasmflow.engine.message import Message
from wasmflow.oci import Access, pull_artifact
from wasmflow.operator.render import worker_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
WASMFLOW = str(Path(sys.executable).parent / "wasmflow")
TTY = sys.stdout.isatty()
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


# -- the manifests, pointed at this machine ----------------------------------------------------------------------


def read_documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def localise_modules(documents: list[dict[str, Any]], registry: str, pins: dict[str, str]) -> dict[str, WasmModule]:
    """The WasmModules as an OT engineer would edit them for this registry: host replaced, digest pinned."""
    modules = {}
    for document in documents:
        name = document["metadata"]["name"]
        oci = document["spec"]["source"]["oci"]
        oci["reference"] = f"{registry}/{oci['reference'].split('/', 1)[1]}"
        oci["digest"] = pins[name]
        module = parse_manifest(document, f"wasmmodules.yaml ({name})")
        assert isinstance(module, WasmModule)
        modules[name] = module
    return modules


def localise_dataflow(document: dict[str, Any], broker: str) -> Dataflow:
    """The Dataflow with every MQTT endpoint on the local broker (plain MQTT on loopback)."""
    for endpoint in document["spec"]["endpoints"].values():
        endpoint["mqtt"]["url"] = broker
    dataflow = parse_manifest(document, "dataflow.yaml")
    assert isinstance(dataflow, Dataflow)
    return dataflow


async def resolve(modules: dict[str, WasmModule]) -> dict[str, str]:
    """Each module's content digest, as the controller's WasmModule reconcile resolves it (pin checked, verified)."""
    digests = {}
    for name, module in modules.items():
        oci = module.spec.source.oci
        assert oci is not None
        artifact = await pull_artifact(
            oci.reference, access=Access(insecure=oci.insecure), expected_digest=oci.digest, cache_dir=None
        )
        digests[name] = artifact.digest
    return digests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def local_worker_config(
    dataflow: Dataflow, modules: dict[str, WasmModule], digests: dict[str, str], run_dir: Path, http_port: int
) -> WorkerConfig:
    """What the controller renders into the ConfigMap, with the two pod paths a laptop lacks moved here.

    The cache is this run's own (so the worker really pulls from the registry) but its compiled-code part is the
    per-user cache that `wasmflow build` fills: a warm demo does not compile the components again.
    """
    cache = run_dir / "worker-cache"
    cache.mkdir(parents=True, exist_ok=True)
    compiled = cache_base() / "compiled"
    compiled.mkdir(parents=True, exist_ok=True)
    if not (cache / "compiled").exists():
        (cache / "compiled").symlink_to(compiled, target_is_directory=True)
    rendered = worker_config(dataflow, modules, digests)
    return rendered.model_copy(update={"http_port": http_port, "cache_dir": str(cache)})


# -- watching the worker -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeCounts:
    received: int = 0
    emitted: int = 0
    dropped: int = 0
    failed: int = 0


def node_counts(metrics_text: str) -> dict[str, NodeCounts]:
    """Per-node message counts from the worker's /metrics (counters summed over their other labels)."""
    sums: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name.endswith("_total") and "node" in sample.labels:
                key = (sample.name.removesuffix("_total"), sample.labels["node"])
                sums[key] = sums.get(key, 0.0) + sample.value
    nodes = {node for _, node in sums}
    return {
        node: NodeCounts(
            received=int(sums.get(("wasmflow_node_messages_in", node), 0)),
            emitted=int(sums.get(("wasmflow_node_messages_out", node), 0)),
            dropped=int(sums.get(("wasmflow_node_messages_dropped", node), 0)),
            failed=int(sums.get(("wasmflow_node_failures", node), 0)),
        )
        for node in nodes
    }


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - a loopback http:// URL we built
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


class Worker:
    """`wasmflow worker --config` as a child process, its log in the run directory."""

    def __init__(self, config_path: Path, port: int, run_dir: Path) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = run_dir / "worker.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [WASMFLOW, "worker", "--config", str(config_path)], stdout=self._log, stderr=subprocess.STDOUT
        )
        (run_dir / "worker.pid").write_text(f"{self.process.pid}\n")

    def log_tail(self, lines: int = 25) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def ready(self) -> tuple[bool, str]:
        if self.process.poll() is not None:
            raise SystemExit(f"the worker exited ({self.process.returncode}):\n{self.log_tail()}")
        status, text = http_get(f"{self.base}/readyz")
        reason = text.strip().splitlines()[-1].lstrip("- ") if text.strip() else "starting"
        return status == 200, "ready" if status == 200 else reason

    def counts(self) -> dict[str, NodeCounts]:
        status, text = http_get(f"{self.base}/metrics")
        return node_counts(text) if status == 200 else {}

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, as the kubelet does: the worker drains what is in flight (the open window flushed), then exits."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


# -- MQTT: the plant's side --------------------------------------------------------------------------------------


def mqtt_client(client_id: str, broker: str) -> mqtt.Client:
    """A connected MQTT v5 client (paho's network loop on its own thread)."""
    host, port = broker.removeprefix("mqtt://").rsplit(":", 1)
    connected = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.on_connect = lambda *_: connected.set()
    client.connect(host, int(port))
    client.loop_start()
    if not connected.wait(10):
        raise SystemExit(f"could not connect to {broker}")
    return client


@dataclass
class Received:
    """What the sinks published, by topic, in arrival order (filled on paho's thread)."""

    by_topic: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    last: float = 0.0

    def add(self, topic: str, payload: bytes | bytearray) -> None:
        with self.lock:
            self.by_topic.setdefault(topic, []).append(json.loads(payload))
            self.last = time.monotonic()

    def get(self, topic: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.by_topic.get(topic, []))


def subscribe(broker: str, topics: list[str]) -> tuple[mqtt.Client, Received]:
    """A client that records what the sinks publish on ``topics``, subscribed before this returns."""
    received = Received()
    subscribed = threading.Event()
    client = mqtt_client("wasmflow-demo-watch", broker)
    client.on_message = lambda _c, _u, msg: received.add(msg.topic, msg.payload)
    client.on_subscribe = lambda *_: subscribed.set()
    client.subscribe([(topic, 1) for topic in topics])
    if not subscribed.wait(10):
        raise SystemExit(f"could not subscribe to {topics} on {broker}")
    return client, received


def readings() -> list[Message]:
    path = EXAMPLES / "data" / "telemetry.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    return [parse_line(line, f"{path}:{n}") for n, line in enumerate(lines, 1) if line.strip()]


# -- display -----------------------------------------------------------------------------------------------------


def table(dataflow: Dataflow, counts: dict[str, NodeCounts]) -> list[str]:
    rows = [f"  {'node':<16}{'kind':<12}{'in':>6}{'out':>6}{'dropped':>9}{'failed':>8}"]
    for node in dataflow.spec.nodes:
        c = counts.get(node.name, NodeCounts())
        rows.append(
            f"  {node.name:<16}{node.type.value:<12}{c.received:>6}{c.emitted:>6}"
            f"{c.dropped or '':>9}{c.failed or '':>8}"
        )
    return rows


def alert_line(alert: dict[str, Any]) -> str:
    return (
        f"  ALERT {alert.get('asset', '?')}: {alert.get('value')} °{alert.get('unit', 'C')} "
        f"({alert.get('site', '?')}, {alert.get('line', '?')})"
    )


def window_line(window: dict[str, Any]) -> str:
    return (
        f"count {window['count']:>2}  min {window['min']:>6}  max {window['max']:>6}  "
        f"avg {window['avg']:>7} °{window.get('unit', 'C')}"
    )


class Screen:
    """A block of lines redrawn in place on a terminal; elsewhere (a log, a test) it prints only what is final."""

    def __init__(self) -> None:
        self.height = 0

    def draw(self, lines: list[str]) -> None:
        if not TTY:
            return
        out = f"\x1b[{self.height}F" if self.height else ""
        out += "".join(f"\x1b[2K{line}\n" for line in lines)
        sys.stdout.write(out)
        sys.stdout.flush()
        self.height = len(lines)

    def above(self, line: str) -> None:
        """A line that stays (an alert): printed above the live block."""
        if TTY and self.height:
            sys.stdout.write(f"\x1b[{self.height}F\x1b[J")
            self.height = 0
        print(line, flush=True)

    def done(self) -> None:
        self.height = 0


def wait_with_spinner(what: str, check: Callable[[], tuple[bool, str]], timeout: float) -> float:
    """Poll ``check`` (done?, detail) with a spinner and the elapsed time; returns the seconds it took."""
    started = time.monotonic()
    screen = Screen()
    for tick in _ticks(0.1):
        done, detail = check()
        elapsed = time.monotonic() - started
        if done:
            screen.draw([f"✓ {what} ({elapsed:.0f}s)"])
            if not TTY:
                print(f"✓ {what} ({elapsed:.0f}s)", flush=True)
            return elapsed
        if elapsed > timeout:
            raise SystemExit(f"✗ {what}: not done after {timeout:.0f}s ({detail})")
        screen.draw([f"{SPINNER[tick % len(SPINNER)]} {what} ({elapsed:.0f}s: {detail})"])
    raise AssertionError("unreachable")


def _ticks(interval: float) -> Iterator[int]:
    tick = 0
    while True:
        yield tick
        tick += 1
        time.sleep(interval)


# -- the run -----------------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--registry", required=True, help="HOST:PORT of the registry the modules were pushed to")
    parser.add_argument("--broker", required=True, help="mqtt://HOST:PORT of the broker")
    parser.add_argument("--run-dir", required=True, type=Path, help="this run's scratch directory")
    parser.add_argument(
        "--pushed", action="append", default=[], metavar="NAME=DIGEST", help="what wasmflow push printed"
    )
    parser.add_argument("--rate", type=float, default=20.0, help="readings published per second")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    pins = dict(item.split("=", 1) for item in args.pushed)
    manifests = EXAMPLES / "manifests"
    modules = localise_modules(read_documents(manifests / "wasmmodules.yaml"), args.registry, pins)
    dataflow = localise_dataflow(read_documents(manifests / "dataflow.yaml")[0], args.broker)

    started = time.monotonic()
    digests = asyncio.run(resolve(modules))
    print(f"✓ resolved {len(digests)} WasmModules as the controller does ({time.monotonic() - started:.1f}s):")
    for name, digest in digests.items():
        print(f"    {name:<16}{pins[name][:19]}… → component {digest[:19]}…")

    port = free_port()
    config = local_worker_config(dataflow, modules, digests, args.run_dir, port)
    config_path = args.run_dir / "worker-config.json"
    config_path.write_text(config.model_dump_json(by_alias=True, exclude_none=True, indent=2), encoding="utf-8")
    print(f"✓ rendered the worker config the controller would put in the ConfigMap: {config_path}")

    sinks = {n.name: n.topic or "" for n in dataflow.spec.nodes if n.type is NodeType.SINK}
    watcher, received = subscribe(args.broker, sorted(set(sinks.values())))
    worker = Worker(config_path, port, args.run_dir)
    print(f"$ wasmflow worker --config {config_path}   (log: {worker.log_path})")
    try:
        wait_with_spinner("worker ready: modules pulled, checked, compiled; MQTT connected", worker.ready, 600)
        counts = feed_and_watch(dataflow, worker, received, sinks, args.broker, args.rate)
        print("■ stopping the worker (SIGTERM): it drains, and flushes the window still open")
    finally:
        code = worker.stop()
    wait_for_quiet(received)
    watcher.loop_stop()
    watcher.disconnect()
    return summary(received, sinks, counts, code)


def feed_and_watch(
    dataflow: Dataflow, worker: Worker, received: Received, sinks: dict[str, str], broker: str, rate: float
) -> dict[str, NodeCounts]:
    """Publish the readings at ``rate`` while redrawing the per-node counts; returns the counts once all is in."""
    messages = readings()
    source = next(n.name for n in dataflow.spec.nodes if n.type is NodeType.SOURCE)
    alerts_topic = sinks.get("alerts", "")
    publisher = mqtt_client("wasmflow-demo-plant", broker)
    screen = Screen()
    shown_alerts = 0
    print(f"▶ publishing {len(messages)} readings on sensors/<asset>/temperature at {rate:g}/s")
    started = time.monotonic()
    sent = 0
    quiet_since: float | None = None
    last_counts: dict[str, NodeCounts] = {}
    try:
        while True:
            due = min(len(messages), int((time.monotonic() - started) * rate) + 1)
            while sent < due:
                message = messages[sent]
                info = publisher.publish(message.topic, message.payload, qos=1, properties=publish_properties(message))
                info.wait_for_publish(10)
                sent += 1
            counts = worker.counts()
            alerts = received.get(alerts_topic)
            for alert in alerts[shown_alerts:]:
                screen.above(alert_line(alert))
            shown_alerts = len(alerts)
            progress = f"  published {sent}/{len(messages)}  ({time.monotonic() - started:.1f}s)"
            windows = received.get(sinks.get("averages", ""))
            latest = f"  latest window on plant/averages: {window_line(windows[-1])}" if windows else ""
            screen.draw([*table(dataflow, counts), latest, progress])
            if sent == len(messages) and counts.get(source, NodeCounts()).received == sent:
                # Everything is in; done once no counter moved for half a second (the last ones are in flight).
                if counts != last_counts:
                    quiet_since = time.monotonic()
                elif quiet_since is not None and time.monotonic() - quiet_since > 0.5:
                    break
            last_counts = counts
            if time.monotonic() - started > len(messages) / rate + 60:
                raise SystemExit(f"✗ the worker did not take all {sent} readings within a minute:\n{worker.log_tail()}")
            time.sleep(0.1)
    finally:
        publisher.loop_stop()
        publisher.disconnect()
    screen.done()
    if not TTY:
        print("\n".join(table(dataflow, last_counts)))
    return last_counts


def wait_for_quiet(received: Received, timeout: float = 5.0) -> None:
    """Until nothing arrived for half a second: the window the worker flushed on its way out is still in transit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and time.monotonic() - received.last < 0.5:
        time.sleep(0.1)


def summary(received: Received, sinks: dict[str, str], counts: dict[str, NodeCounts], worker_exit: int) -> int:
    """Print what came out; 1 unless every reading is accounted for (an alert, in a window, or dropped)."""
    fed = len(readings())
    alerts = received.get(sinks.get("alerts", ""))
    averages = received.get(sinks.get("averages", ""))
    averaged = sum(int(a.get("count", 0)) for a in averages)
    dropped = sum(c.dropped for c in counts.values())
    failed = sum(c.failed for c in counts.values())
    print()
    print("== summary")
    print(f"  readings published        {fed}")
    print(f"  alerts on plant/alerts    {len(alerts)}: " + ", ".join(f"{a['asset']} {a['value']}°C" for a in alerts))
    print(f"  windows on plant/averages {len(averages)}, averaging {averaged} readings:")
    for window in averages:
        print(f"    {window_line(window)}")
    print(f"  dropped                   {dropped} (sensor faults, out of in-range's min..max)")
    print(f"  failed in an operator     {failed}")
    print(f"  worker exit status        {worker_exit}")
    if worker_exit != 0 or not alerts or not averages or len(alerts) + averaged + dropped != fed:
        print(f"✗ the flow does not add up: {len(alerts)} + {averaged} + {dropped} != {fed} readings")
        return 1
    print(f"✓ every reading accounted for: {len(alerts)} alerts + {averaged} averaged + {dropped} dropped = {fed}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
