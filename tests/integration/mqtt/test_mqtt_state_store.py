"""The replicas' shared AIO state store, kept as retained messages in the real mosquitto."""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.integration.conftest import wait_until
from tests.services import BrokerEnv
from wasmflow.connectors.mqtt_settings import MqttSettings
from wasmflow.connectors.mqtt_state import MqttStateStore
from wasmflow.engine.worlds.aio.model import Hlc
from wasmflow.engine.worlds.aio.state import FencingRefused, SetCondition, StateRefused

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


class CuttableProxy:
    """A TCP proxy in front of the broker whose connections the test can cut (a network partition for one client)
    and later let through again; ``accepted`` counts the connections it let through."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.accepted = 0
        self._open = True
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if not self._open:
                    client.close()
                    continue
                server = socket.create_connection(self.upstream)
                self._sockets += [client, server]
                self.accepted += 1
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self._lock:
            self._open = False
            for end in self._sockets:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
            self._sockets.clear()

    def restore(self) -> None:
        with self._lock:
            self._open = True

    def close(self) -> None:
        self.cut()
        self._listener.close()


def test_a_key_deleted_while_a_replica_was_cut_off_is_gone_when_it_reconnects(
    mqtt_broker: BrokerEnv, replica: Callable[[str], MqttStateStore]
) -> None:
    """The delete is not retained, so the reconnecting replica never receives it: it must drop what the broker no
    longer holds. Before, it kept the key for good (and disagreed with every other replica)."""
    where = prefix()
    proxy = CuttableProxy((mqtt_broker.host, mqtt_broker.port))
    cut_off = MqttStateStore(MqttSettings.from_url(f"mqtt://127.0.0.1:{proxy.port}"), where, node_id="cut-off")
    try:
        cut_off.start()
        other = replica(where)
        other.set(b"k", b"v", None, ALWAYS, None)
        other.set(b"kept", b"v", None, ALWAYS, None)
        wait_until(lambda: cut_off.get(b"k")[0] == b"v", what="the write on the replica to be cut off", timeout=10)
        proxy.cut()
        assert other.delete(b"k", None)[0] == 1
        proxy.restore()
        wait_until(lambda: proxy.accepted >= 2, what="the cut-off replica to reconnect", timeout=60)
        wait_until(
            lambda: cut_off.get(b"k") == (None, None), what="the deleted key gone after the reconnect", timeout=30
        )
        assert cut_off.get(b"kept")[0] == b"v"
    finally:
        cut_off.close()
        proxy.close()


def test_a_fencing_token_other_replicas_would_refuse_is_refused_before_it_is_published(
    replica: Callable[[str], MqttStateStore],
) -> None:
    """An operator's token whose node id is longer than any record may carry: every replica would refuse the record
    (this one included), so it must never reach the broker."""
    where = prefix()
    first = replica(where)
    with pytest.raises(StateRefused, match="fencing token"):
        first.set(b"lock", b"a", Hlc(10, 0, 0, "n" * 2000), ALWAYS, None)
    with pytest.raises(StateRefused, match="fencing token"):
        first.set(b"lock", b"a", Hlc(10, 2_000_000_000), ALWAYS, None)  # nanos past a second
    assert first.get(b"lock") == (None, None)
    assert replica(where).get(b"lock") == (None, None)
