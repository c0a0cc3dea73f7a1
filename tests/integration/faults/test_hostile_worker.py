"""Hostile operators inside a real worker process: each misbehaviour costs its own message only (dead-lettered,
saying why), the next message is processed, nothing outside the grant is reached, and the worker's own memory
stays bounded while a guest tries to take all it can.

A component that imports an interface no host provides is refused before anything runs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.fault_report import Report
from tests.integration.conftest import wait_until
from tests.integration.faults.conftest import pinned
from tests.integration.faults.workers import Collector, Publisher, WorkerProcess, pipeline_spec, publish, text_of
from tests.mqtt_env import BrokerEnv

Workers = Callable[..., WorkerProcess]
Clients = list[Collector | Publisher]
MEMORY_CAP = 64 * 2**20
#: Behaviours of tests/components/python/hostile_map and the failure kind each must be dead-lettered with.
#: componentize-py ships no ``socket`` module, so the socket attempt dies as a trap inside the guest (the engine
#: tests prove wasi:sockets denied with a WAT probe that calls it directly).
FAILING = {"loop": "timeout", "alloc": "memory", "recurse": "trap", "trap": "trap", "huge": "memory", "socket": "trap"}
#: Behaviours that must be answered, denied, from inside the sandbox.
DENIED = {"file": "denied: file", "env": "env: "}


def failure_of(payload: bytes) -> str:
    envelope = json.loads(payload)
    return f"{envelope['payload']}:{envelope['kind']}"


def test_hostile_messages_fail_alone_and_the_worker_memory_stays_bounded(
    workers: Workers,
    fault_broker: BrokerEnv,
    component: Callable[[str], Path],
    clients: Clients,
    report: Report,
) -> None:
    prefix = f"hostile-{uuid.uuid4().hex[:8]}"
    spec = pipeline_spec(fault_broker.url, prefix)
    spec["errorPolicy"] = {"action": "deadLetter", "endpoint": "broker", "topic": f"{prefix}/dlq"}
    # Generous: under load, filling 64 MiB or exhausting the stack must hit its own limit before the deadline.
    limits = {"memory": "64Mi", "timeoutPerMessage": "3s"}
    worker = workers(spec, {"op": pinned(component("hostile_map"), "map", limits=limits)})
    worker.start()
    wait_until(worker.ready, what="worker /readyz", timeout=180)
    baseline = worker.peak_rss_bytes()
    outputs = Collector(fault_broker, f"{prefix}/out", key=text_of)
    dead = Collector(fault_broker, f"{prefix}/dlq", key=failure_of)
    clients.extend([outputs, dead])

    behaviours = [*FAILING, *DENIED]
    # Each hostile message is followed by a harmless one, which must come out unchanged.
    for behaviour in behaviours:
        publish(fault_broker, f"{prefix}/in/x", behaviour.encode(), f"after-{behaviour}".encode())
    wait_until(lambda: outputs.count() >= 2 * len(DENIED) + len(FAILING), what="every answer", timeout=120)
    wait_until(lambda: dead.count() >= len(FAILING), what="every dead letter", timeout=30)

    answers = outputs.received()
    assert [a for a in answers if a.startswith("after-")] == [f"after-{b}" for b in behaviours]
    for behaviour, expected in DENIED.items():
        (answer,) = [a for a in answers if a.startswith(expected.split(":")[0] + ":")]
        assert answer.startswith(expected), (behaviour, answer)
    assert "env: " in answers  # not one variable of the worker's environment is visible
    assert sorted(dead.received()) == sorted(f"{b}:{kind}" for b, kind in FAILING.items())
    assert worker.exited() is None, worker.output()
    peak = worker.peak_rss_bytes()
    # A guest may take its cap (64 MiB) and hand back a reply as large; the worker itself must not balloon.
    assert peak - baseline < 8 * MEMORY_CAP, f"peak RSS {peak >> 20} MiB, {baseline >> 20} MiB when ready"
    metrics = worker.metrics()
    assert f'wasmflow_node_messages_dead_lettered_total{{node="op"}} {len(FAILING)}.0' in metrics
    report(
        baseline_rss_mib=baseline / 2**20,
        peak_rss_mib=peak / 2**20,
        dead_lettered=dead.count(),
        answered=outputs.count(),
    )


def test_a_component_importing_an_interface_nobody_provides_is_refused_before_it_runs(
    workers: Workers, fault_broker: BrokerEnv, component: Callable[[str], Path]
) -> None:
    worker = workers(pipeline_spec(fault_broker.url, "never"), {"op": pinned(component("unknown_import"), "map")})
    worker.start()
    assert worker.wait(120) != 0
    output = worker.output()
    assert "acme:vault/secrets@1.0.0" in output, output
    assert not worker.ready()


def test_memory_bombs_one_after_another_do_not_grow_the_worker(
    workers: Workers, fault_broker: BrokerEnv, component: Callable[[str], Path], clients: Clients, report: Report
) -> None:
    """Each bomb fills its instance's 64 MiB and the instance is thrown away: a worker that kept them would grow
    by a cap per bomb."""
    prefix = f"bombs-{uuid.uuid4().hex[:8]}"
    spec = pipeline_spec(fault_broker.url, prefix)
    spec["errorPolicy"] = {"action": "deadLetter", "endpoint": "broker", "topic": f"{prefix}/dlq"}
    worker = workers(
        spec, {"op": pinned(component("hostile_map"), "map", limits={"memory": "64Mi", "timeoutPerMessage": "5s"})}
    )
    worker.start()
    wait_until(worker.ready, what="worker /readyz", timeout=180)
    dead = Collector(fault_broker, f"{prefix}/dlq", key=failure_of)
    clients.append(dead)

    def bombs(count: int) -> int:
        before = dead.count()
        publish(fault_broker, f"{prefix}/in/x", *[b"alloc"] * count)
        wait_until(lambda: dead.count() == before + count, what=f"{count} dead letters", timeout=120)
        return worker.rss_bytes()

    warmed = bombs(3)
    after = bombs(15)
    assert set(dead.received()) == {"alloc:memory"}
    assert after - warmed < MEMORY_CAP, f"{(after - warmed) >> 20} MiB more after 15 more bombs"
    report(
        rss_after_3_bombs_mib=warmed / 2**20,
        rss_after_18_bombs_mib=after / 2**20,
        peak_rss_mib=worker.peak_rss_bytes() / 2**20,
    )
