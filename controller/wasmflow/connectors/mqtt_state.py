"""A state store shared by the replicas of a worker, kept in the MQTT broker as retained messages.

Why retained messages: the replicas already share the broker (it is their shared subscription), so the store needs
no service of its own, and the broker keeps retained messages across restarts when it persists (mosquitto's
``persistence true``). Each key is one retained message on ``<prefix>/<hex key>``: the payload is the value, user
properties carry its HLC version and fencing token, the MQTT v5 message expiry interval carries ``expires``, and an
empty retained payload deletes it.

Guarantees, and what they are not:

- Every replica subscribes to ``<prefix>/#`` and keeps a local view; before first use it waits until the broker
  has delivered every retained message (a sentinel it publishes after subscribing comes back after them).
- A write returns after the broker's PUBACK and is visible to its own replica at once (read your writes); other
  replicas see it when the broker delivers it (milliseconds on a LAN). Writes to one key are ordered by the broker:
  the last one it receives wins everywhere.
- Conditions (``only-if-does-not-exist``...), ``vdel`` and fencing tokens are checked against the local view, so
  two replicas racing on one key may both succeed: this is not a linearizable store. Operators that need mutual
  exclusion should fence with a token they obtained elsewhere, or run one replica.

Host functions call it synchronously from the graph's event loop: a write waits for one PUBACK (about a
millisecond on loopback), reads never touch the network. The local view is an ``engine.aio_state.MemoryStateStore``,
so conditions, fencing and expiry mean the same as in ``wasmflow run``; this class only publishes the writes and
applies the broker's retained messages to that view.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from wasmflow.connectors.mqtt_settings import MqttSettings, read_credentials, tls_context
from wasmflow.engine.aio_model import Hlc
from wasmflow.engine.aio_state import Entry, MemoryStateStore, SetCondition
from wasmflow.errors import ConnectorError

log = logging.getLogger(__name__)

_SYNC = "~sync"


def _hlc_text(value: Hlc) -> str:
    return f"{value.secs}.{value.nanos}.{value.counter}.{value.node_id}"


def _hlc_parse(text: str) -> Hlc | None:
    parts = text.split(".", 3)
    if len(parts) != 4 or not all(p.isdigit() for p in parts[:3]):
        return None
    return Hlc(int(parts[0]), int(parts[1]), int(parts[2]), parts[3])


class MqttStateStore:
    """The state store of one Dataflow in the broker under ``prefix``; ``start()`` before use, ``close()`` after."""

    def __init__(self, settings: MqttSettings, prefix: str, *, node_id: str, timeout: float = 10.0) -> None:
        if any(c in prefix for c in "+#") or not prefix:
            raise ValueError(f"state-store topic prefix {prefix!r} must be a topic without wildcards")
        self.settings = settings
        self.prefix = prefix.rstrip("/")
        self.timeout = timeout
        self._local = MemoryStateStore(node_id)
        self._synced = threading.Event()
        self._sentinel = f"{self.prefix}/{_SYNC}/{uuid.uuid4().hex}"
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        credentials = read_credentials(settings)
        if credentials:
            self._client.username_pw_set(*credentials)
        if settings.tls:
            self._client.tls_set_context(tls_context(settings))
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    # -- network thread ----------------------------------------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, _userdata: object, _flags: object, reason: object, _props: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("state store: the broker refused the connection: %s", reason)
            return
        client.subscribe(f"{self.prefix}/#", qos=1)

    def _on_subscribe(self, client: mqtt.Client, *_args: object) -> None:
        client.publish(self._sentinel, b"", qos=1)

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        if message.topic == self._sentinel:
            self._synced.set()
            return
        suffix = message.topic[len(self.prefix) + 1 :]
        if suffix.startswith(_SYNC):
            return
        try:
            key = bytes.fromhex(suffix)
        except ValueError:
            return
        if not message.payload:
            self._local.apply(key, None, None, None, None)
            return
        user = dict(getattr(message.properties, "UserProperty", None) or [])
        expiry = getattr(message.properties, "MessageExpiryInterval", None)
        self._local.apply(
            key,
            bytes(message.payload),
            _hlc_parse(user.get("version", "")),
            _hlc_parse(user.get("fencing", "")),
            float(expiry) if expiry else None,
        )

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect, subscribe, and wait until every retained key has arrived; ConnectorError after ``timeout``."""
        try:
            self._client.connect(self.settings.host, self.settings.port, keepalive=self.settings.keepalive_seconds)
        except (OSError, ValueError) as exc:
            raise ConnectorError(f"state store: cannot connect to {self.settings.address}: {exc}") from exc
        self._client.loop_start()
        if not self._synced.wait(self.timeout):
            self.close()
            raise ConnectorError(f"state store: no answer from {self.settings.address} within {self.timeout:g}s")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.disconnect()
        self._client.loop_stop()

    # -- the StateStore protocol -------------------------------------------------------------------------------

    def _publish(self, key: bytes, entry: Entry, expires: float | None) -> None:
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.UserProperty = [
            (name, _hlc_text(stamp))
            for name, stamp in (("version", entry.version), ("fencing", entry.fencing))
            if stamp
        ]
        if expires is not None:
            properties.MessageExpiryInterval = max(1, int(expires + 0.999))
        info = self._client.publish(
            f"{self.prefix}/{key.hex()}", entry.value, qos=1, retain=True, properties=properties
        )
        info.wait_for_publish(self.timeout)
        if not info.is_published():
            raise ConnectorError(f"state store: the broker did not acknowledge a write within {self.timeout:g}s")

    def get(self, key: bytes) -> tuple[bytes | None, Hlc | None]:
        return self._local.get(key)

    def set(
        self, key: bytes, value: bytes, fencing: Hlc | None, condition: SetCondition, expires_seconds: float | None
    ) -> tuple[bool, Hlc | None]:
        written, entry = self._local.put(key, value, fencing, condition, expires_seconds)
        if written:
            self._publish(key, entry, expires_seconds)
        return written, entry.version

    def delete(self, key: bytes, fencing: Hlc | None, value: bytes | None = None) -> tuple[int, Hlc | None]:
        deleted, version = self._local.delete(key, fencing, value)
        if deleted == 1:
            info = self._client.publish(f"{self.prefix}/{key.hex()}", b"", qos=1, retain=True)
            info.wait_for_publish(self.timeout)
        return deleted, version
