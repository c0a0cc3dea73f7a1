"""MQTT v5 source and sink (paho-mqtt), bridged to the asyncio pipeline.

At-least-once for QoS 1: the source subscribes with manual acknowledgement and PUBACKs a message only when the
pipeline calls its ``ack`` (after every derived message reached its sinks); the sink's ``send`` returns after the
broker's PUBACK. A crash in between means redelivery (duplicates are possible, losses are not), given a persistent
session: a stable client id, ``clean_start`` false and a session expiry, so the broker keeps what was not acked.

Backpressure: paho's network thread hands messages over through a bounded slot count; when the pipeline is behind,
that thread waits, stops reading the socket, and the broker holds the rest (receive maximum bounds what is in
flight). Reconnects use paho's exponential backoff. Credentials are read from mounted files and never logged.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from wasmflow.engine.message import Message
from wasmflow.engine.ports import Inbound
from wasmflow.errors import ConfigError, ConnectorError

log = logging.getLogger(__name__)

RECEIVE_MAXIMUM = 64
SESSION_EXPIRY_SECONDS = 3600


@dataclass(frozen=True)
class MqttSettings:
    """How to reach one broker. Secret material is referenced by file path (mounted Secrets), never inlined."""

    host: str
    port: int
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    username_file: Path | None = None
    password_file: Path | None = None
    qos: int = 1
    shared_group: str | None = None
    client_id: str = ""
    persistent: bool = True

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> MqttSettings:
        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
            raise ConfigError(f"expected mqtt://host:port or mqtts://host:port, got {url!r}", where="mqtt.url")
        tls = parsed.scheme == "mqtts"
        return cls(host=parsed.hostname, port=parsed.port or (8883 if tls else 1883), tls=tls, **kwargs)


def to_message(msg: mqtt.MQTTMessage) -> Message:
    """An MQTT message as an engine Message (source time from a ``timestamp-ms`` user property if present)."""
    props = msg.properties
    pairs = [(str(k), str(v)) for k, v in (getattr(props, "UserProperty", None) or [])]
    timestamp = int(time.time() * 1000)
    for key, value in pairs:
        if key == "timestamp-ms" and value.isdigit():
            timestamp = int(value)
    user = tuple(p for p in pairs if p[0] != "timestamp-ms")
    return Message(
        payload=bytes(msg.payload),
        topic=msg.topic,
        content_type=getattr(props, "ContentType", None),
        properties=user,
        timestamp_ms=timestamp,
    )


def publish_properties(message: Message) -> Properties:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    if message.content_type:
        props.ContentType = message.content_type
    pairs = [p for p in message.properties if p[0] != "timestamp-ms"]
    pairs.append(("timestamp-ms", str(message.timestamp_ms)))
    props.UserProperty = pairs
    return props


class _Client:
    """A paho client running its network loop in its own thread, with connection state for /readyz."""

    def __init__(self, settings: MqttSettings, *, manual_ack: bool, role: str) -> None:
        self.settings = settings
        self.role = role
        self.connected = threading.Event()
        self.last_error = ""
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=manual_ack,
        )
        if settings.username_file is not None:
            password = settings.password_file.read_text().strip() if settings.password_file else None
            self.client.username_pw_set(settings.username_file.read_text().strip(), password)
        if settings.tls:
            context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
            if settings.cert_file and settings.key_file:
                context.load_cert_chain(str(settings.cert_file), str(settings.key_file))
            self.client.tls_set_context(context)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(self, client: mqtt.Client, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self.last_error = f"{self.role}: broker refused the connection: {reason}"
            log.error("%s", self.last_error)
            return
        self.last_error = ""
        self.connected.set()
        log.info("%s connected to %s:%d", self.role, self.settings.host, self.settings.port)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self.connected.clear()
        if reason.is_failure:
            self.last_error = f"{self.role}: disconnected: {reason}"
            log.warning("%s (reconnecting with backoff)", self.last_error)

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        if self.settings.persistent and self.settings.client_id:
            props.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
        clean = not (self.settings.persistent and self.settings.client_id)
        try:
            self.client.connect_async(
                self.settings.host, self.settings.port, keepalive=30, clean_start=clean, properties=props
            )
        except (OSError, ValueError) as exc:
            raise ConnectorError(
                f"{self.role}: cannot connect to {self.settings.host}:{self.settings.port}: {exc}"
            ) from exc
        self.client.loop_start()

    async def wait_connected(self, timeout: float) -> None:
        if not await asyncio.to_thread(self.connected.wait, timeout):
            detail = self.last_error or "no answer"
            raise ConnectorError(f"{self.role}: not connected to {self.settings.host}:{self.settings.port} ({detail})")

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class MqttSource:
    """Subscribes to one topic filter (shared when a group is set) and yields messages with a manual ack."""

    def __init__(self, settings: MqttSettings, topic: str, *, capacity: int = RECEIVE_MAXIMUM) -> None:
        self.settings = settings
        self.topic = f"$share/{settings.shared_group}/{topic}" if settings.shared_group else topic
        self._client = _Client(settings, manual_ack=True, role=f"source {topic}")
        self._client.client.on_connect = self._on_connect
        self._client.client.on_message = self._on_message
        self._client.client.on_subscribe = self._on_subscribe
        self.subscribed = threading.Event()
        self._slots = threading.BoundedSemaphore(capacity)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[mqtt.MQTTMessage | None] = asyncio.Queue()
        self._stopped = threading.Event()

    @property
    def connected(self) -> bool:
        return self._client.connected.is_set()

    @property
    def last_error(self) -> str:
        return self._client.last_error

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._client._on_connect(client, userdata, flags, reason, props)
        if not reason.is_failure:
            client.subscribe(self.topic, qos=self.settings.qos)  # again after every reconnect

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, reasons: Any, _props: Any) -> None:
        if any(r.is_failure for r in reasons):
            self._client.last_error = f"source {self.topic}: subscription refused: {reasons}"
            log.error("%s", self._client.last_error)
        else:
            self.subscribed.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        while not self._slots.acquire(timeout=0.5):  # backpressure: hold paho's thread while the pipeline is full
            if self._stopped.is_set():
                return
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._queue.put_nowait, msg)

    async def messages(self) -> AsyncIterator[Inbound]:
        self._loop = asyncio.get_running_loop()
        self._client.start()
        while True:
            msg = await self._queue.get()
            if msg is None:
                return
            self._slots.release()
            yield Inbound(to_message(msg), self._acker(msg))

    def _acker(self, msg: mqtt.MQTTMessage) -> Any:
        client = self._client.client
        mid, qos = msg.mid, msg.qos

        async def ack() -> None:
            if qos > 0:
                client.ack(mid, qos)

        return ack

    async def wait_connected(self, timeout: float = 30.0) -> None:
        """Wait until connected and subscribed (messages published after this reach the source)."""
        await self._client.wait_connected(timeout)
        if not await asyncio.to_thread(self.subscribed.wait, timeout):
            raise ConnectorError(
                f"source {self.topic}: subscription not acknowledged ({self.last_error or 'no answer'})"
            )

    async def stop(self) -> None:
        self._stopped.set()
        self._client.client.unsubscribe(self.topic)
        await self._queue.put(None)

    def close(self) -> None:
        self._client.stop()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class MqttSink:
    """Publishes to one topic; with QoS 1 ``send`` returns only after the broker's PUBACK."""

    def __init__(self, settings: MqttSettings, topic: str, *, timeout: float = 30.0) -> None:
        self.settings = settings
        self.topic = topic
        self.timeout = timeout
        self._client = _Client(settings, manual_ack=False, role=f"sink {topic}")
        self._client.client.on_publish = self._on_publish
        self._lock = threading.Lock()
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._early: set[int] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False

    @property
    def connected(self) -> bool:
        return self._client.connected.is_set()

    @property
    def last_error(self) -> str:
        return self._client.last_error

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._client.start()

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, _reason: Any, _props: Any) -> None:
        with self._lock:
            future = self._pending.pop(mid, None)
            if future is None:
                self._early.add(mid)  # PUBACK before send() registered the mid
                return
        assert self._loop is not None
        self._loop.call_soon_threadsafe(_resolve, future)

    async def send(self, message: Message) -> None:
        self._loop = asyncio.get_running_loop()
        self.start()
        if not self.connected:
            await self._client.wait_connected(self.timeout)
        info = self._client.client.publish(
            self.topic, message.payload, qos=self.settings.qos, properties=publish_properties(message)
        )
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise ConnectorError(f"sink {self.topic}: publish failed: {mqtt.error_string(info.rc)}")
        if self.settings.qos == 0:
            return
        future: asyncio.Future[None] = self._loop.create_future()
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
                return
            self._pending[info.mid] = future
        try:
            await asyncio.wait_for(future, self.timeout)
        except TimeoutError as exc:
            raise ConnectorError(f"sink {self.topic}: no PUBACK within {self.timeout:.0f}s") from exc

    async def wait_connected(self, timeout: float = 30.0) -> None:
        self.start()
        await self._client.wait_connected(timeout)

    async def close(self) -> None:
        self._client.stop()
