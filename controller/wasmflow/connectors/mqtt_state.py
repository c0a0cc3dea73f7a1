"""A state store shared by the replicas of a worker, kept in the MQTT broker as retained messages.

Why retained messages: the replicas already share the broker (it is their shared subscription), so the store needs
no service of its own, and the broker keeps retained messages across restarts when it persists (mosquitto's
``persistence true``). Each key is one retained message on ``<prefix>/<hex key>``: the payload is the value, user
properties carry its HLC version and fencing token, the MQTT v5 message expiry interval carries ``expires``, and an
empty retained payload (with the same properties) deletes it. The prefix is scoped by namespace
(``api.dataflow_graph.state_topic_prefix``): a store subscribes to its own scope only, so records of another
namespace's store never reach it.

Guarantees, and what they are not:

- Every replica subscribes to ``<prefix>/#`` and keeps a local view; before first use it waits until the broker
  has delivered every retained message (a sentinel it publishes after subscribing comes back after them).
- A write is checked against the local view, published (QoS 1, retained), and enters the local view only when the
  broker delivers it back, in the broker's order: every replica applies the same records in the same order, so
  replicas agree with each other and with the retained messages. The call returns once that happened (read your
  writes). A write the broker refuses (a PUBACK with an error, e.g. its ACL) or that cannot be sent (not connected)
  changes nothing and fails the operator's call; a write with no PUBACK in time fails with ``timeout``: it may
  still be applied later, and then reaches every replica, this one included.
- Conditions (``only-if-does-not-exist``...), ``vdel`` and fencing tokens are checked against the local view, so
  two replicas racing on one key may both succeed: this is not a linearizable store. Operators that need mutual
  exclusion should fence with a token they obtained elsewhere, or run one replica.
- Every record from the broker is validated: a topic that is not ``<prefix>/<hex key>``, a missing or malformed
  version or fencing token, a key or value past the limits, a record that would move a key's fencing token
  backwards, or one that would pass the store's bounds (keys, bytes) is refused and logged, and changes nothing.
  CONNECT advertises a Maximum Packet Size just above the largest valid record, so the broker does not even send
  larger ones. A refused record stays retained in the broker: anyone who may publish under the prefix can still
  delete a key (an empty retained message) or plant one that replicas started later take; only the broker's ACL
  (one subtree per namespace: ``wasmflow/state/<namespace>/#``) keeps other clients out.

Host functions call it synchronously from the graph's event loop: a write waits for one round trip to the broker
(about a millisecond on loopback), reads never touch the network. The local view is an
``engine.worlds.aio.state.MemoryStateStore``, so conditions, fencing, bounds and expiry mean the same as in
``wasmflow run``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from wasmflow.api.dataflow_graph import StateStoreLimits
from wasmflow.connectors.mqtt_settings import MqttSettings, read_credentials, tls_context
from wasmflow.engine.worlds.aio.model import Hlc
from wasmflow.engine.worlds.aio.state import (
    Entry,
    MemoryStateStore,
    SetCondition,
    StateRefused,
    StateStoreError,
    StateStoreTimeout,
    StateUsage,
)
from wasmflow.errors import ConnectorError

log = logging.getLogger(__name__)

_SYNC = "~sync"
_MAX_NODE_ID = 1024  # a node id is "<namespace>/<dataflow>/<pod>" or what an operator put in a fencing token
_MAX_DRIFT_SECONDS = 300  # a version further ahead of this host's clock would drag every later stamp with it
_RECORD_OVERHEAD = 4096  # fixed header, topic prefix, version, fencing and expiry properties, with room to spare
_LOGGED_REFUSALS = 10  # then one line per thousand: a flood of bad records must not flood the log too


class RecordError(ValueError):
    """A record from the broker that is not one a wasmflow state store writes."""


def _hlc_text(value: Hlc) -> str:
    return f"{value.secs}.{value.nanos}.{value.counter}.{value.node_id}"


def _hlc_parse(text: str, what: str) -> Hlc:
    """The stamp ``secs.nanos.counter.node``; RecordError unless every part is in the range AIO's types carry."""
    parts = text.split(".", 3)
    if len(parts) != 4 or not all(p.isascii() and p.isdigit() and len(p) <= 20 for p in parts[:3]):
        raise RecordError(f"{what} {text[:64]!r} is not secs.nanos.counter.node")
    secs, nanos, counter = (int(p) for p in parts[:3])
    if secs >= 2**64 or nanos >= 1_000_000_000 or counter >= 2**64 or len(parts[3]) > _MAX_NODE_ID:
        raise RecordError(f"{what} {text[:64]!r} is out of range")
    return Hlc(secs, nanos, counter, parts[3])


@dataclass(frozen=True)
class _Record:
    key: bytes
    value: bytes | None
    version: Hlc
    fencing: Hlc | None
    expires: float | None


def parse_record(suffix: str, message: mqtt.MQTTMessage, limits: StateStoreLimits) -> _Record:
    """The record a message under the prefix carries (``suffix``: its topic after ``<prefix>/``); RecordError
    naming what is wrong when it is not a well-formed record within the limits."""
    try:
        key = bytes.fromhex(suffix)
    except ValueError:
        raise RecordError("the topic is not <prefix>/<hex key>") from None
    if len(key) > limits.max_key_bytes:
        raise RecordError(f"a key of {len(key)} bytes is over the limit of {limits.max_key_bytes}")
    if len(message.payload) > limits.max_value_bytes:
        raise RecordError(f"a value of {len(message.payload)} bytes is over the limit of {limits.max_value_bytes}")
    user: dict[str, str] = {}
    for name, text in getattr(message.properties, "UserProperty", None) or []:
        if name in user:
            raise RecordError(f"user property {name!r} is given twice")
        user[name] = text
    if "version" not in user:
        raise RecordError("it has no version")
    version = _hlc_parse(user["version"], "version")
    if version.secs > time.time() + _MAX_DRIFT_SECONDS:
        raise RecordError(f"version {user['version'][:64]!r} is more than {_MAX_DRIFT_SECONDS}s ahead of this clock")
    fencing = _hlc_parse(user["fencing"], "fencing token") if "fencing" in user else None
    expiry = getattr(message.properties, "MessageExpiryInterval", None)
    return _Record(key, bytes(message.payload) or None, version, fencing, float(expiry) if expiry else None)


@dataclass
class _Echo:
    """A write of ours waiting to be delivered back by the broker (and applied, or refused)."""

    delivered: threading.Event = field(default_factory=threading.Event)
    refusal: StateStoreError | None = None


class MqttStateStore:
    """The state store of one Dataflow in the broker under ``prefix``; ``start()`` before use, ``close()`` after."""

    def __init__(
        self,
        settings: MqttSettings,
        prefix: str,
        *,
        node_id: str,
        limits: StateStoreLimits | None = None,
        timeout: float = 10.0,
    ) -> None:
        if any(c in prefix for c in "+#") or not prefix.strip("/"):
            raise ValueError(f"state-store topic prefix {prefix!r} must be a topic without wildcards")
        self.settings = settings
        self.prefix = prefix.rstrip("/")
        self.timeout = timeout
        self.limits = limits or StateStoreLimits()
        self.refused = 0
        """Records from the broker refused so far (malformed, past the limits, fencing rollback)."""
        self._local = MemoryStateStore(node_id, limits=self.limits)
        self._synced = threading.Event()
        self._sentinel = ""
        self._seen: set[bytes] | None = None  # keys delivered since the last subscription, until its sentinel
        self._writing = threading.Lock()  # one write at a time: check, publish, delivered back
        self._acks: dict[int, ReasonCode] = {}
        self._abandoned: set[int] = set()
        self._acked = threading.Condition()
        self._echoes: dict[tuple[bytes, str], _Echo] = {}
        self._echoes_lock = threading.Lock()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        credentials = read_credentials(settings)
        if credentials:
            self._client.username_pw_set(*credentials)
        if settings.tls:
            self._client.tls_set_context(tls_context(settings))
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.on_publish = self._on_publish
        self._client.reconnect_delay_set(1, 10)  # writes fail while disconnected: come back soon

    @property
    def connected(self) -> bool:
        """Connected to the broker now (writes fail at once while not)."""
        return self._client.is_connected()

    @property
    def max_packet_bytes(self) -> int:
        """The largest PUBLISH a valid record makes: the broker is told not to send anything larger."""
        return self.limits.max_value_bytes + 2 * self.limits.max_key_bytes + len(self.prefix) + _RECORD_OVERHEAD

    # -- network thread ----------------------------------------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, _userdata: object, _flags: object, reason: object, _props: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("state store: the broker refused the connection: %s", reason)
            return
        client.subscribe(f"{self.prefix}/#", qos=1)

    def _on_subscribe(self, client: mqtt.Client, *_args: object) -> None:
        self._sentinel = f"{self.prefix}/{_SYNC}/{uuid.uuid4().hex}"  # a new one each time: an old one ends nothing
        self._seen = set()
        info = client.publish(self._sentinel, b"", qos=1)
        with self._acked:  # nobody waits for this PUBACK (it arrives after this callback, on this thread)
            self._abandoned.add(info.mid)

    def _on_publish(
        self, _client: mqtt.Client, _userdata: object, mid: int, reason: ReasonCode, _props: object
    ) -> None:
        with self._acked:
            if mid in self._abandoned:
                self._abandoned.discard(mid)
                return
            self._acks[mid] = reason
            self._acked.notify_all()

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        if message.topic == self._sentinel:
            # Every retained record came before it: keys not among them were deleted (or expired) while this
            # replica was away, and their deletes were not retained. Only this network thread touches _seen.
            if self._seen is not None:
                self._local.keep_only(self._seen)
            self._seen = None  # until the next subscription
            self._synced.set()
            return
        suffix = message.topic[len(self.prefix) + 1 :]
        if suffix.startswith(_SYNC):
            return
        try:
            record = parse_record(suffix, message, self.limits)
        except RecordError as exc:
            self._refuse(message.topic, str(exc))
            return
        if record.value is not None and self._seen is not None:  # the broker holds something for this key
            self._seen.add(record.key)
            if len(self._seen) > 2 * self.limits.max_keys:  # keys come and go: give up pruning, stay bounded
                self._seen = None
        refusal: StateStoreError | None = None
        try:
            self._local.apply(record.key, record.value, record.version, record.fencing, record.expires)
        except StateRefused as exc:
            refusal = exc
            self._refuse(message.topic, str(exc))
        with self._echoes_lock:
            echo = self._echoes.get((record.key, _hlc_text(record.version)))
        if echo is not None:
            echo.refusal = refusal
            echo.delivered.set()

    def _refuse(self, topic: str, reason: str) -> None:
        self.refused += 1
        if self.refused <= _LOGGED_REFUSALS or self.refused % 1000 == 0:
            log.warning(
                "state store %s: refused the record on %s: %s (%d refused so far)",
                self.prefix,
                topic[:160],
                reason,
                self.refused,
            )

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect, subscribe, and wait until every retained key has arrived; ConnectorError after ``timeout``."""
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.MaximumPacketSize = self.max_packet_bytes
        try:
            self._client.connect(
                self.settings.host,
                self.settings.port,
                keepalive=self.settings.keepalive_seconds,
                properties=properties,
            )
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

    # -- writing: publish, wait for the PUBACK and for the broker to deliver the record back ---------------------

    def _wait_ack(self, mid: int, deadline: float) -> ReasonCode | None:
        with self._acked:
            while mid not in self._acks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._abandoned.add(mid)
                    return None
                self._acked.wait(remaining)
            return self._acks.pop(mid)

    def _write(self, key: bytes, value: bytes, version: Hlc, fencing: Hlc | None, expires: float | None) -> None:
        """Publish one record and return once the broker delivered it back and it was applied to the local view.

        StateRefused when the broker refused it, it could not be sent, or the local view refused it as delivered
        (another replica's write came first); StateStoreTimeout when no answer came in time.
        """
        topic = f"{self.prefix}/{key.hex()}"
        stamps = [("version", _hlc_text(version))] + ([("fencing", _hlc_text(fencing))] if fencing else [])
        for name, text in stamps:  # what every replica will check when the broker delivers it, this one included
            try:
                _hlc_parse(text, "fencing token" if name == "fencing" else name)
            except RecordError as exc:
                raise StateRefused(f"state store: {exc}") from None
        if not self._client.is_connected():
            raise StateRefused(f"state store: not connected to {self.settings.address}; the write was not sent")
        deadline = time.monotonic() + self.timeout
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.UserProperty = stamps
        if expires is not None:
            properties.MessageExpiryInterval = max(1, int(expires + 0.999))
        echo = _Echo()
        mark = (key, _hlc_text(version))
        with self._echoes_lock:
            self._echoes[mark] = echo
        try:
            info = self._client.publish(topic, value, qos=1, retain=True, properties=properties)
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                raise StateRefused(f"state store: the write was not sent: {mqtt.error_string(info.rc)}")
            reason = self._wait_ack(info.mid, deadline)
            if reason is None:
                raise StateStoreTimeout(
                    f"state store: no acknowledgement from {self.settings.address} within {self.timeout:g}s "
                    "(the write may still be applied)"
                )
            if reason.is_failure:
                raise StateRefused(f"state store: the broker refused the write: {reason}")
            if not echo.delivered.wait(max(0.0, deadline - time.monotonic())):
                raise StateStoreTimeout(
                    f"state store: the broker acknowledged the write but did not deliver it back within "
                    f"{self.timeout:g}s (it will be applied when it does)"
                )
            if echo.refusal is not None:
                raise echo.refusal
        finally:
            with self._echoes_lock:
                self._echoes.pop(mark, None)

    # -- the StateStore protocol -------------------------------------------------------------------------------

    def get(self, key: bytes) -> tuple[bytes | None, Hlc | None]:
        return self._local.get(key)

    def set(
        self, key: bytes, value: bytes, fencing: Hlc | None, condition: SetCondition, expires_seconds: float | None
    ) -> tuple[bool, Hlc | None]:
        if not value:
            raise StateRefused(
                "state store: the shared store cannot keep an empty value (an empty retained message is a delete)"
            )
        with self._writing:
            written, entry = self._local.plan_set(key, value, fencing, condition, expires_seconds)
            if written:
                self._write_entry(key, entry, expires_seconds)
            return written, entry.version

    def _write_entry(self, key: bytes, entry: Entry, expires: float | None) -> None:
        assert entry.version is not None  # a planned write is always stamped
        self._write(key, entry.value, entry.version, entry.fencing, expires)

    def delete(self, key: bytes, fencing: Hlc | None, value: bytes | None = None) -> tuple[int, Hlc | None]:
        with self._writing:
            deleted, version = self._local.plan_delete(key, fencing, value)
            if deleted == 1:
                assert version is not None  # a planned delete is always stamped
                self._write(key, b"", version, fencing, None)
            return deleted, version

    def usage(self) -> StateUsage:
        """Keys and bytes the local view holds now."""
        return self._local.usage()
