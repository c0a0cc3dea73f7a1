"""The replicas' shared AIO state store, kept as retained messages in the real mosquitto."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.integration.conftest import wait_until
from tests.services import BrokerEnv
from wasmflow.connectors.mqtt_settings import MqttSettings
from wasmflow.connectors.mqtt_state import MqttStateStore
from wasmflow.engine.aio_model import Hlc
from wasmflow.engine.aio_state import FencingRefused, SetCondition

ALWAYS = SetCondition.UNCONDITIONAL


@pytest.fixture
def replica(mqtt_broker: BrokerEnv) -> Iterator[Callable[[str], MqttStateStore]]:
    stores: list[MqttStateStore] = []

    def open_store(prefix: str) -> MqttStateStore:
        settings = MqttSettings.from_url(mqtt_broker.url)
        store = MqttStateStore(settings, prefix, node_id=f"replica-{len(stores)}")
        store.start()
        stores.append(store)
        return store

    yield open_store
    for store in stores:
        store.close()


def prefix() -> str:
    return f"wasmflow-state/{uuid.uuid4().hex[:8]}"


def test_a_write_on_one_replica_is_read_on_another(replica: Callable[[str], MqttStateStore]) -> None:
    where = prefix()
    first, second = replica(where), replica(where)
    done, version = first.set(b"seen/t1", b"3", None, ALWAYS, None)
    assert done and version is not None
    assert first.get(b"seen/t1") == (b"3", version)  # read your writes, at once
    wait_until(lambda: second.get(b"seen/t1")[0] == b"3", what="the write on the second replica", timeout=10)
    assert second.get(b"seen/t1")[1] == version


def test_a_replica_that_starts_later_sees_the_keys_already_there(replica: Callable[[str], MqttStateStore]) -> None:
    where = prefix()
    replica(where).set(b"config", b"on", None, ALWAYS, None)
    late = replica(where)
    assert late.get(b"config")[0] == b"on"


def test_a_delete_reaches_every_replica(replica: Callable[[str], MqttStateStore]) -> None:
    where = prefix()
    first, second = replica(where), replica(where)
    first.set(b"k", b"v", None, ALWAYS, None)
    wait_until(lambda: second.get(b"k")[0] == b"v", what="the write", timeout=10)
    assert second.delete(b"k", None)[0] == 1
    wait_until(lambda: first.get(b"k") == (None, None), what="the delete on the first replica", timeout=10)
    assert replica(where).get(b"k") == (None, None)


def test_conditions_and_fencing_hold_against_what_the_replica_has_seen(
    replica: Callable[[str], MqttStateStore],
) -> None:
    where = prefix()
    first, second = replica(where), replica(where)
    first.set(b"lock", b"a", Hlc(10, 0), ALWAYS, None)
    wait_until(lambda: second.get(b"lock")[0] == b"a", what="the write", timeout=10)
    assert second.set(b"lock", b"b", Hlc(11, 0), SetCondition.ONLY_IF_DOES_NOT_EXIST, None)[0] is False
    with pytest.raises(FencingRefused):
        second.set(b"lock", b"b", Hlc(9, 0), ALWAYS, None)
    assert second.delete(b"lock", Hlc(12, 0), b"not-a")[0] == -1
