"""An operator calling an import it was not granted fails its own message, never the process.

Every componentize-js component imports wasi:http, so a JavaScript operator may call ``fetch()`` whether or not its
WasmModule grants ``http``. wasmtime's wasi:http needs an HTTP context in the store, which only a granted node has:
linked without one, the first call panicked inside wasmtime and the worker died with SIGABRT (exit 134), every
node with it. Without the grant the import is linked as traps: the message is dead-lettered saying which import was
denied, the instance is replaced, and the next messages flow. With the grant, ``fetch()`` reaches the server.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.components.build import cache_dir
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
from tests.mqtt_env import BrokerEnv

Workers = Callable[..., WorkerProcess]
Clients = list[Collector | Publisher]
#: How a process killed by SIGABRT (what wasmtime's panic did to the worker) ends: -6 for Python's subprocess,
#: 128 + 6 = 134 for a shell or a container runtime.
ABORTED = (-signal.SIGABRT, 128 + signal.SIGABRT)
#: The first start compiles the componentize-js component (about a minute on a loaded 2-core machine).
FIRST_START_S = 600
#: A generous per-message deadline: the JavaScript engine must meet the denied import, not the deadline.
LIMITS = {"memory": "128Mi", "timeoutPerMessage": "5s"}


class _Requests(BaseHTTPRequestHandler):
    """Records each request's path; the guest drops the response unread, so a broken pipe is expected."""

    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.path)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.send_response(204)
            self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads ``seen``."""


@pytest.fixture
def http_target() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server: (URL, the paths it was asked for)."""
    seen: list[str] = []
    handler = type("Requests", (_Requests,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/probe", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def dead_letter(payload: bytes) -> str:
    """``<payload>|<kind>|<error>`` of a dead-letter envelope."""
    envelope = json.loads(payload)
    return f"{envelope['payload']}|{envelope['kind']}|{envelope['error']}"


def sample(worker: WorkerProcess, name: str) -> float:
    """The value of ``name`` for node ``op`` in the worker's /metrics (0 when absent)."""
    for family in text_string_to_metric_families(worker.metrics()):
        for found in family.samples:
            if found.name == name and found.labels.get("node") == "op":
                return float(found.value)
    return 0.0


def test_a_javascript_fetch_without_the_http_grant_fails_its_message_and_the_worker_lives(
    workers: Workers,
    fault_broker: BrokerEnv,
    component: Callable[[str], Path],
    clients: Clients,
    http_target: tuple[str, list[str]],
    report: Report,
) -> None:
    url, requests = http_target
    prefix = f"fetch-{uuid.uuid4().hex[:8]}"
    spec = pipeline_spec(fault_broker.url, prefix)
    spec["errorPolicy"] = {"action": "deadLetter", "endpoint": "broker", "topic": f"{prefix}/dlq"}
    worker = workers(spec, {"op": pinned(component("js_fetch_map"), "map", limits=LIMITS)})
    worker.start()
    wait_until(lambda: worker.ready() or worker.exited() is not None, what="worker /readyz", timeout=FIRST_START_S)
    assert worker.exited() is None, worker.output()
    outputs = Collector(fault_broker, f"{prefix}/out", key=text_of)
    dead = Collector(fault_broker, f"{prefix}/dlq", key=dead_letter)
    clients.extend([outputs, dead])

    fetch = f"fetch {url}".encode()
    publish(fault_broker, f"{prefix}/in/x", b"before", fetch, b"after-1", fetch, b"after-2")
    wait_until(
        lambda: worker.exited() is not None or (outputs.count() >= 3 and dead.count() >= 2),
        what="every answer and dead letter",
        timeout=120,
    )
    died = worker.exited()
    assert died is None, f"the worker died (exit code {died}, aborted: {died in ABORTED}):\n{worker.output()[-3000:]}"
    assert outputs.received() == ["before", "after-1", "after-2"]
    denied = "denied: the operator called wasi:http/"
    assert [d.split("|")[:2] for d in dead.received()] == [[fetch.decode(), "trap"]] * 2
    assert all(denied in d and "grant 'http'" in d for d in dead.received()), dead.received()
    assert requests == []  # nothing left the sandbox
    assert sample(worker, "wasmflow_node_messages_dead_lettered_total") == 2
    assert sample(worker, "wasmflow_node_instantiations_total") == 3  # the first, then one after each denied call
    worker.signal(signal.SIGTERM)
    code = worker.wait(60)
    assert code == 0, worker.output()[-3000:]
    report(exit_code=code, dead_lettered=dead.count(), answered=outputs.count(), requests_out=len(requests))


def test_a_javascript_fetch_with_the_http_grant_reaches_the_server(
    workers: Workers,
    fault_broker: BrokerEnv,
    component: Callable[[str], Path],
    clients: Clients,
    http_target: tuple[str, list[str]],
    report: Report,
) -> None:
    url, requests = http_target
    prefix = f"fetch-ok-{uuid.uuid4().hex[:8]}"
    spec = pipeline_spec(fault_broker.url, prefix)
    spec["errorPolicy"] = {"action": "deadLetter", "endpoint": "broker", "topic": f"{prefix}/dlq"}
    module = pinned(component("js_fetch_map"), "map", limits=LIMITS, capabilities=["http"])
    worker = workers(spec, {"op": module})
    worker.start()
    wait_until(lambda: worker.ready() or worker.exited() is not None, what="worker /readyz", timeout=FIRST_START_S)
    assert worker.exited() is None, worker.output()
    outputs = Collector(fault_broker, f"{prefix}/out", key=text_of)
    dead = Collector(fault_broker, f"{prefix}/dlq", key=dead_letter)
    clients.extend([outputs, dead])

    fetch = f"fetch {url}"
    publish(fault_broker, f"{prefix}/in/x", b"before", fetch.encode(), b"after")
    wait_until(lambda: worker.exited() is not None or outputs.count() >= 3, what="every answer", timeout=120)
    assert worker.exited() is None, worker.output()[-3000:]
    assert outputs.received() == ["before", fetch, "after"]
    assert dead.count() == 0, dead.received()
    wait_until(lambda: requests == ["/probe"], what="the granted request at the server", timeout=30)
    report(requests_out=len(requests), dead_lettered=dead.count(), answered=outputs.count())


def test_wasmflow_run_dead_letters_a_fetch_without_the_grant_and_goes_on(
    tmp_path: Path, component: Callable[[str], Path], http_target: tuple[str, list[str]], report: Report
) -> None:
    url, requests = http_target
    manifest = one_map_dataflow("fetch", "fetcher")
    (tmp_path / "df.yaml").write_text(yaml.safe_dump(manifest))
    lines = ["before", f"fetch {url}", "after"]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"topic": "t", "payload": p}) + "\n" for p in lines))
    compiled = cache_dir().parent / "compiled"
    args = [WASMFLOW, "run", str(tmp_path / "df.yaml"), "--input", str(tmp_path / "in.jsonl"), "--output", "-"]
    args += ["--module", f"fetcher={component('js_fetch_map')}", "--cache-dir", str(compiled)]
    result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=FIRST_START_S)
    assert result.returncode not in ABORTED, "wasmtime aborted the process (SIGABRT)"
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [o["payload"] for o in outputs if o["sink"] == "out"] == ["before", "after"]
    (dead,) = [json.loads(o["payload"]) for o in outputs if o["sink"] == "dead-letter:dead"]
    assert (dead["payload"], dead["kind"], dead["node"]) == (f"fetch {url}", "trap", "op")
    assert "denied: the operator called wasi:http/" in dead["error"]
    assert requests == []
    report(exit_code=result.returncode, dead_lettered=1, answered=2, requests_out=len(requests))
