"""A QoS 1 stream through a real worker process (MQTT in -> f2c operator -> MQTT out) under faults injected for
real: the broker restarted mid-stream, the worker SIGKILLed and started again, the worker SIGTERMed.

At-least-once is the promise: every reading published must come out at least once (lost == 0); duplicates are
allowed and reported. The worker's source session is persistent (a stable client id), so whatever it had not
acknowledged when the fault hit is delivered again.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.components.engine import wat
from tests.fault_report import Report
from tests.integration.conftest import wait_until
from tests.integration.faults.conftest import pinned
from tests.integration.faults.workers import Collector, Publisher, WorkerProcess, pipeline_spec
from tests.mqtt_env import BrokerEnv, restart_broker

Workers = Callable[..., WorkerProcess]
Clients = list[Collector | Publisher]

#: A map that burns about 20 ms of CPU per message, then echoes it: messages queue up inside the worker.
SLOW_ECHO = """(local $n i32) (local.set $n (i32.const 20000000))
      (loop $spin (br_if $spin (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))"""


def f2c_worker(workers: Workers, broker: BrokerEnv, component: Callable[[str], Path], prefix: str) -> WorkerProcess:
    return workers(pipeline_spec(broker.url, prefix), {"op": pinned(component("f2c_map"), "map")})


def stream(broker: BrokerEnv, clients: Clients, prefix: str, total: int) -> tuple[Publisher, Collector]:
    collector = Collector(broker, f"{prefix}/out")
    publisher = Publisher(broker, prefix, total)
    clients.extend([collector, publisher])
    return publisher, collector


def test_a_broker_restart_mid_stream_loses_no_message(
    workers: Workers, fault_broker: BrokerEnv, component: Callable[[str], Path], clients: Clients, report: Report
) -> None:
    prefix = f"restart-{uuid.uuid4().hex[:8]}"
    worker = f2c_worker(workers, fault_broker, component, prefix)
    worker.start()
    wait_until(worker.ready, what="worker /readyz", timeout=180)
    publisher, collector = stream(fault_broker, clients, prefix, total=400)
    publisher.start()
    wait_until(lambda: collector.count() >= 100, what="the first 100 outputs", timeout=60)

    down = time.monotonic()
    restart_broker(fault_broker)
    back = time.monotonic()
    wait_until(worker.ready, what="worker /readyz after the broker restart", timeout=60)
    reconnected = time.monotonic()
    publisher.finish()
    collector.settle(400, timeout=90)

    tally = collector.tally(publisher.keys)
    flowing = collector.first_arrival_after(back)
    assert worker.exited() is None, worker.output()
    assert tally.lost == [] and tally.unexpected == [], f"lost {len(tally.lost)}: {tally.lost}"
    report(
        messages=400,
        lost=len(tally.lost),
        duplicated=tally.duplicated,
        broker_outage_s=back - down,
        worker_ready_after_broker_back_s=reconnected - back,
        first_output_after_broker_back_s=(flowing - back) if flowing else -1.0,
    )


def test_a_worker_killed_mid_stream_and_started_again_loses_no_message(
    workers: Workers, fault_broker: BrokerEnv, component: Callable[[str], Path], clients: Clients, report: Report
) -> None:
    prefix = f"kill-{uuid.uuid4().hex[:8]}"
    worker = f2c_worker(workers, fault_broker, component, prefix)
    worker.start()
    wait_until(worker.ready, what="worker /readyz", timeout=180)
    publisher, collector = stream(fault_broker, clients, prefix, total=300)
    publisher.start()
    wait_until(lambda: collector.count() >= 100, what="the first 100 outputs", timeout=60)

    worker.signal(signal.SIGKILL)
    assert worker.wait(30) == -signal.SIGKILL
    before_restart = collector.count()
    publisher.wait_published(250)  # readings keep coming while no worker runs: the broker queues them
    restarted = time.monotonic()
    worker.start()
    wait_until(worker.ready, what="worker /readyz after the restart", timeout=120)
    ready = time.monotonic()
    publisher.finish()
    collector.settle(300, timeout=90)

    tally = collector.tally(publisher.keys)
    flowing = collector.first_arrival_after(restarted)
    assert tally.lost == [] and tally.unexpected == [], f"lost {len(tally.lost)}: {tally.lost}"
    report(
        messages=300,
        lost=len(tally.lost),
        duplicated=tally.duplicated,
        outputs_before_kill=before_restart,
        restart_to_ready_s=ready - restarted,
        restart_to_first_output_s=(flowing - restarted) if flowing else -1.0,
    )


def test_sigterm_drains_what_is_in_flight_before_the_worker_exits(
    workers: Workers, fault_broker: BrokerEnv, tmp_path: Path, clients: Clients, report: Report
) -> None:
    prefix = f"drain-{uuid.uuid4().hex[:8]}"
    slow = tmp_path / "slow-echo.wasm"
    slow.write_bytes(wat.operator("map", SLOW_ECHO))
    worker = workers(
        pipeline_spec(fault_broker.url, prefix), {"op": pinned(slow, "map", limits={"timeoutPerMessage": "2s"})}
    )
    worker.start()
    wait_until(worker.ready, what="worker /readyz", timeout=120)
    publisher, collector = stream(fault_broker, clients, prefix, total=120)
    publisher.interval = 0
    publisher.start()
    publisher.finish()  # all 120 with the broker; the worker holds up to its Receive Maximum of them
    wait_until(lambda: collector.count() >= 1, what="the first output", timeout=30)

    at_sigterm = collector.count()
    worker.signal(signal.SIGTERM)
    assert worker.wait(60) == 0, worker.output()
    # What was in flight came out after the signal (the broker had PUBACKed each one before the worker exited).
    wait_until(lambda: collector.count() > at_sigterm, what="outputs drained after SIGTERM", timeout=10)
    drained = collector.count() - at_sigterm

    # Started again, the worker gets exactly what it had not finished: everything it sent out before exiting
    # was acknowledged to the broker (no duplicates), and nothing it had taken in was dropped (no loss).
    worker.start()
    collector.settle(120, timeout=90)
    wait_until(worker.ready, what="worker /readyz after the restart", timeout=60)
    tally = collector.tally(publisher.keys)
    assert tally.lost == [] and tally.unexpected == [], f"lost {len(tally.lost)}: {tally.lost}"
    assert tally.duplicated == 0
    report(messages=120, outputs_at_sigterm=at_sigterm, drained_after_sigterm=drained, duplicated=tally.duplicated)


def test_a_rolling_update_of_shared_subscription_workers_loses_no_message(
    workers: Workers, fault_broker: BrokerEnv, tmp_path: Path, clients: Clients, report: Report
) -> None:
    """A Deployment's rollout: the new pod (a new name, so a new client id) joins the shared subscription, the old
    one is SIGTERMed and never comes back. What the old one had received must not stay behind in its session."""
    prefix = f"rollout-{uuid.uuid4().hex[:8]}"
    slow = tmp_path / "slow-echo.wasm"
    slow.write_bytes(wat.operator("map", SLOW_ECHO))
    spec = pipeline_spec(fault_broker.url, prefix, sharedSubscriptionGroup=f"g-{prefix}")
    modules = {"op": pinned(slow, "map", limits={"timeoutPerMessage": "2s"})}
    old, new = workers(spec, modules), workers(spec, modules)
    old.start()
    wait_until(old.ready, what="the old worker's /readyz", timeout=120)
    new.start()
    wait_until(new.ready, what="the new worker's /readyz", timeout=120)
    publisher, collector = stream(fault_broker, clients, prefix, total=300)
    publisher.interval = 0  # faster than the operator: both workers hold all the broker lets them have
    publisher.start()
    publisher.finish()
    wait_until(lambda: collector.count() >= 20, what="the first outputs", timeout=60)
    at_sigterm = collector.count()
    old.signal(signal.SIGTERM)
    assert old.wait(60) == 0, old.output()
    publisher.finish()
    collector.settle(300, timeout=90)
    tally = collector.tally(publisher.keys)
    assert tally.lost == [] and tally.unexpected == [], f"lost {len(tally.lost)}: {tally.lost}"
    report(messages=300, outputs_at_sigterm=at_sigterm, lost=len(tally.lost), duplicated=tally.duplicated)
