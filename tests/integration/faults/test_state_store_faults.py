"""The shared AIO state store against a hostile broker neighbourhood and broker faults (issue 16, cases 9 and 12).

Real mosquitto throughout: two Dataflows of different namespaces naming the same topic prefix (worker processes),
retained records planted by another client under a store's prefix, a flood of retained records, and the broker
stopped under a write made by a real AIO operator (componentize-py) through its ``state-store`` import.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client import CollectorRegistry

from tests.components.build import cache_dir
from tests.fault_report import Report
from tests.integration.conftest import wait_until
from tests.integration.worker.test_aio_worker import COUNTING_GRAPH, publish
from tests.integration.worker.test_worker_process import WASMFLOW, free_port, ready, subscriber
from tests.mqtt_env import BrokerEnv, start_broker, stop_broker
from wasmflow.api.dataflow import Endpoint
from wasmflow.api.dataflow_graph import GraphPort, SharedStateStore, StateStoreLimits
from wasmflow.api.workerconfig import AioModule, AioWorkerConfig
from wasmflow.connectors.mqtt_settings import MqttSettings
from wasmflow.connectors.mqtt_state import MqttStateStore
from wasmflow.engine.aio_host import AioNodeSpec, AioOperatorNode
from wasmflow.engine.aio_model import AioMessage, Hlc
from wasmflow.engine.aio_state import MemoryStateStore, SetCondition
from wasmflow.engine.host import EngineHost
from wasmflow.engine.metrics import EngineMetrics
from wasmflow.errors import OperatorFailure

ALWAYS = SetCondition.UNCONDITIONAL


class Stores:
    """Opens state stores on one broker and closes them all at the end."""

    def __init__(self, broker: BrokerEnv) -> None:
        self.broker = broker
        self.opened: list[MqttStateStore] = []

    def open(self, prefix: str, node: str = "replica", timeout: float = 10.0) -> MqttStateStore:
        store = MqttStateStore(MqttSettings.from_url(self.broker.url), prefix, node_id=node, timeout=timeout)
        store.start()
        self.opened.append(store)
        return store


@pytest.fixture
def stores(fault_broker: BrokerEnv) -> Iterator[Stores]:
    made = Stores(fault_broker)
    yield made
    for store in made.opened:
        store.close()


def publisher(broker: BrokerEnv) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def plant(client: mqtt.Client, topic: str, payload: bytes, **user: str) -> None:
    """A retained record as any client of the broker may publish it."""
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    if user:
        properties.UserProperty = list(user.items())
    client.publish(topic, payload, qos=1, retain=True, properties=properties).wait_for_publish(10)


def scoped(namespace: str, dataflow: str, topic_prefix: str | None = None) -> str:
    """The prefix the worker gives a Dataflow's store (the default one, from namespace and name)."""
    if topic_prefix is None:
        return f"wasmflow/state/{namespace}/{dataflow}"
    return f"wasmflow/state/{namespace}/~shared/{topic_prefix}"


@pytest.mark.timeout(900)
def test_two_dataflows_in_different_namespaces_with_the_same_prefix_cannot_see_each_others_keys(
    tmp_path: Path, fault_broker: BrokerEnv, component: Callable[[str], Path], report: Report
) -> None:
    """Both name ``topicPrefix: shared-counts``; the counting operator keeps ``seen/<sensor>`` in the store. Before,
    the second namespace's Dataflow went on counting from the first one's keys."""
    run = uuid.uuid4().hex[:8]
    path = component("aio_counting_map")
    module = AioModule(digest="sha256:" + hashlib.sha256(path.read_bytes()).hexdigest(), path=str(path))
    endpoint = Endpoint.model_validate({"mqtt": {"url": fault_broker.url, "qos": 1}})
    processes: list[subprocess.Popen[str]] = []
    ports: dict[str, int] = {}
    try:
        for namespace in (f"team-a-{run}", f"team-b-{run}"):
            ports[namespace] = free_port()
            config = AioWorkerConfig(
                namespace=namespace,
                dataflow="counting",
                definition=COUNTING_GRAPH,
                endpoints={"broker": endpoint},
                modules={"wasmflow-tests/counting:1.0.0": module},
                sources={"source": GraphPort(endpoint="broker", topic=f"{namespace}/in")},
                sinks={"sink": GraphPort(endpoint="broker", topic=f"{namespace}/out")},
                state_store=SharedStateStore(endpoint="broker", topic_prefix="shared-counts"),
                http_port=ports[namespace],
                cache_dir=str(cache_dir().parent),
            )
            (tmp_path / f"{namespace}.json").write_text(config.model_dump_json(by_alias=True, exclude_none=True))
            processes.append(
                subprocess.Popen(
                    [WASMFLOW, "worker", "--config", str(tmp_path / f"{namespace}.json")],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    env={**os.environ, "HOSTNAME": namespace},
                )
            )
        seen: dict[str, list[int]] = {}
        for namespace, port in ports.items():
            wait_until(lambda port=port: ready(port), what=f"{namespace} worker /readyz", timeout=600)  # type: ignore[misc]
            client, received = subscriber(fault_broker, f"{namespace}/out")
            for value in range(3):
                publish(fault_broker, f"{namespace}/in", [(json.dumps({"sensor": "t1", "value": value}).encode(), 1)])
            seen[namespace] = [json.loads(received.get(timeout=60).payload)["seen"] for _ in range(3)]
            client.loop_stop()
            client.disconnect()
        leaked = sum(1 for counts in seen.values() for count in counts if count > 3)
        report(namespaces=2, same_topic_prefix=1, counts_seen_from_the_other_namespace=leaked)
        assert list(seen.values()) == [[1, 2, 3], [1, 2, 3]]
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)


def test_hostile_retained_records_under_the_prefix_are_refused_with_a_log_line(
    stores: Stores, fault_broker: BrokerEnv, caplog: pytest.LogCaptureFixture, report: Report
) -> None:
    """Records planted by another client: no version, a version that does not parse, a value over the size limit,
    a fencing token moved backwards, a fenced key deleted without its token. None may change the store."""
    prefix = scoped(f"ns-{uuid.uuid4().hex[:8]}", "flow")
    hostile = publisher(fault_broker)
    try:
        caplog.set_level(logging.WARNING, logger="wasmflow.connectors.mqtt_state")
        plant(hostile, f"{prefix}/{b'planted'.hex()}", b"evil")  # no version: not a record a store writes
        plant(hostile, f"{prefix}/{b'garbled'.hex()}", b"evil", version="{not: an hlc}")
        plant(hostile, f"{prefix}/{b'future'.hex()}", b"evil", version="99999999999.0.0.h")  # drags every clock
        plant(hostile, f"{prefix}/{b'big'.hex()}", b"x" * 65_537, version="1.0.0.h")  # over maxValueBytes
        plant(hostile, f"{prefix}/{b'huge'.hex()}", b"x" * 8 * 1024 * 1024, version="1.0.0.h")  # over the packet
        store = stores.open(prefix)
        assert store.set(b"lock", b"owner-1", Hlc(10, 0), ALWAYS, None)[0]
        planted_later = [
            {"version": "99.0.0.h", "fencing": "5.0.0.h"},  # a fencing token moved backwards
            {"version": "99.0.0.h"},  # the token dropped
        ]
        for user in planted_later:
            plant(hostile, f"{prefix}/{b'lock'.hex()}", b"stolen", **user)
        plant(hostile, f"{prefix}/{b'lock'.hex()}", b"", version="99.0.0.h")  # delete without the token
        # A write of ours after them: the broker delivers it back after everything it took before it.
        assert store.set(b"after", b"ok", None, ALWAYS, None)[0]
        keys = (b"planted", b"garbled", b"future", b"big", b"huge", b"lock")
        values = {key: store.get(key)[0] for key in keys}
        assert values == {key: None for key in keys[:-1]} | {b"lock": b"owner-1"}
        assert store.set(b"lock", b"owner-1", Hlc(10, 0), ALWAYS, None)[1].secs < 99999999999  # type: ignore[union-attr]
        refusals = [r.getMessage() for r in caplog.records if "refused the record" in r.getMessage()]
        applied = sum(value not in (None, b"owner-1") for value in values.values())
        report(planted=8, refused_with_a_log_line=len(refusals), applied=applied)
        assert len(refusals) == store.refused == 7  # the 8 MiB one is not even sent (Maximum Packet Size)
        assert any("ahead of this clock" in r for r in refusals)
        assert any("has no version" in r for r in refusals)
        assert any("is not secs.nanos.counter.node" in r for r in refusals)
        assert any("over the limit of 65536" in r for r in refusals)
        assert sum("fenced by a newer token" in r for r in refusals) == 3
    finally:
        hostile.loop_stop()
        hostile.disconnect()


def test_a_flood_of_retained_records_does_not_grow_the_store_past_its_bound(
    stores: Stores, fault_broker: BrokerEnv, report: Report
) -> None:
    """10,050 retained keys under one prefix, over the default bound of 10,000 keys: the store loads no more."""
    prefix = scoped(f"ns-{uuid.uuid4().hex[:8]}", "flow")
    flood = publisher(fault_broker)
    keys = [f"k{i}".encode() for i in range(10_050)]
    try:
        infos = [
            flood.publish(f"{prefix}/{key.hex()}", b"v" * 100, qos=1, retain=True, properties=_versioned())
            for key in keys
        ]
        for info in infos:
            info.wait_for_publish(30)
        store = stores.open(prefix, timeout=60)
        loaded = sum(1 for key in keys if store.get(key)[0] is not None)
        assert loaded == 10_000
        report(published=len(keys), loaded=loaded, refused=store.refused, bytes_held=store.usage().bytes)
        assert store.refused == 50
        assert store.usage().bytes <= 64 * 1024 * 1024
    finally:
        for key in keys:  # leave the broker as found
            flood.publish(f"{prefix}/{key.hex()}", b"", qos=1, retain=True)
        flood.publish(f"{prefix}/end", b"", qos=1).wait_for_publish(30)
        flood.loop_stop()
        flood.disconnect()


def _versioned() -> Properties:
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    properties.UserProperty = [("version", "1.0.0.flood")]
    return properties


@pytest.fixture
def aio_host() -> Iterator[EngineHost]:
    with EngineHost(cache_dir=cache_dir().parent / "compiled", metrics=EngineMetrics(CollectorRegistry())) as host:
        yield host


def count(node: AioOperatorNode, sensor: str) -> int:
    out = node.map(AioMessage(json.dumps({"sensor": sensor, "value": 1}).encode(), b"t", Hlc.from_ms(1000)))
    assert isinstance(out, AioMessage)
    return int(json.loads(out.payload)["seen"])


def test_a_write_the_broker_does_not_take_fails_the_operators_call_and_changes_nothing(
    stores: Stores,
    fault_broker: BrokerEnv,
    aio_host: EngineHost,
    component_bytes: Callable[[str], bytes],
    report: Report,
) -> None:
    """The counting operator's ``set`` while the broker is down: before, the host call raised through the guest
    (a trap) after the local view had already taken the new count, so this replica disagreed with the broker and
    every other replica from then on."""
    prefix = scoped(f"ns-{uuid.uuid4().hex[:8]}", "flow")
    store = stores.open(prefix, timeout=3)
    spec = AioNodeSpec("count", "map", component_bytes("aio_counting_map"), timeout_seconds=30.0)
    node = AioOperatorNode(aio_host, spec, state=store, aio_metrics=None)
    node.start()
    try:
        assert [count(node, "t1"), count(node, "t1")] == [1, 2]
        stop_broker(fault_broker)
        try:
            wait_until(lambda: not store.connected, what="the store to see the broker gone", timeout=30)
            with pytest.raises(OperatorFailure) as caught:
                count(node, "t1")
            during_outage = store.get(b"seen/t1")[0]
        finally:
            start_broker(fault_broker.state_dir)
        wait_until(lambda: store.connected, what="the store to reconnect", timeout=60)
        late = stores.open(prefix, node="late")
        report(
            guest_error_kind=caught.value.kind,
            local_value_during_outage=(during_outage or b"").decode(),
            broker_value=(late.get(b"seen/t1")[0] or b"").decode(),
        )
        assert caught.value.kind == "error"  # the operator got state-store-error and failed its message itself
        assert "host call failed" in caught.value.message and "not connected" in caught.value.message
        assert during_outage == b"2"  # the local view did not take the write the broker never had
        assert late.get(b"seen/t1")[0] == b"2"
        assert count(node, "t1") == 3  # the same instance goes on once the broker is back
    finally:
        node.close()


def test_the_guest_gets_a_clear_error_past_the_state_store_bounds(
    aio_host: EngineHost, component_bytes: Callable[[str], bytes], report: Report
) -> None:
    """A store bound to 2 keys: the operator's third key is refused with request-error naming maxKeys."""
    state = MemoryStateStore(limits=StateStoreLimits(max_keys=2))
    spec = AioNodeSpec("count", "map", component_bytes("aio_counting_map"), timeout_seconds=30.0)
    node = AioOperatorNode(aio_host, spec, state=state, aio_metrics=None)
    node.start()
    try:
        assert [count(node, "a"), count(node, "b")] == [1, 1]
        with pytest.raises(OperatorFailure) as caught:
            count(node, "c")
        report(keys_allowed=2, third_key_error=caught.value.kind)
        assert caught.value.kind == "error"
        assert "maxKeys" in caught.value.message
        assert count(node, "a") == 2  # existing keys still update
    finally:
        node.close()
