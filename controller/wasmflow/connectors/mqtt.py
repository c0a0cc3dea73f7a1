"""MQTT v5 source and sink (paho-mqtt 2), bridged to the asyncio pipeline.

Why paho and not aiomqtt: paho is already a dependency and aiomqtt is a layer over it; what at-least-once needs is
paho itself: ``manual_ack`` (PUBACK when we say so), its reconnect loop with backoff, and hooks around each
connection attempt. paho runs its network loop in a thread of its own; everything crossing to the pipeline goes
through ``loop.call_soon_threadsafe`` (or the bounded ``Handoff``), so the asyncio side shares nothing with that
thread but a few atomically replaced attributes and two locks.

At-least-once for QoS 1:
- the source PUBACKs a message only when the pipeline calls its ``ack`` (after everything derived from it reached
  a sink or was dropped on purpose), in arrival order (``ack_order``), and never on a newer connection than the one
  that delivered it;
- the sink's ``send`` returns only after the broker's PUBACK (a refusal raises ConnectorError); concurrent sends
  are published in the order they were called and await their PUBACKs together (the pipeline keeps a window of
  them in flight); a broker outage is waited out and the PUBLISH sent again on the new connection;
- with a stable client id the source's session is persistent (clean start off, session expiry on), so what was
  not acknowledged when the worker or the broker went away is delivered again. Duplicates are possible, loss is not.

Backpressure: Receive Maximum tells the broker how many unacknowledged QoS 1 messages it may send, so a slow
pipeline leaves the rest with the broker. The hand-over to the pipeline is bounded too: when it is full, paho's
thread waits (for QoS 0 that stops reading the socket, and TCP pushes back). The QoS 0 sink bounds what is queued
but not yet written.

Reconnects use paho's exponential backoff (doubling from ``reconnect_min_seconds`` to ``reconnect_max_seconds``).
``connected`` and ``last_error`` are for ``/readyz``; ``wait_connected`` fails at once when the broker refuses for
a reason retrying will not fix (bad credentials, untrusted certificate, refused subscription). Credentials are read
from the mounted files before every connection attempt and never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from wasmflow.connectors.ack_order import AckOrder, Ticket
from wasmflow.connectors.handoff import Handoff
from wasmflow.connectors.mqtt_messages import message_from_publish, publish_properties
from wasmflow.connectors.mqtt_settings import MqttSettings, maximum_packet_size, read_credentials, tls_context
from wasmflow.connectors.mqtt_topics import check_topic_name, subscription
from wasmflow.engine import limits
from wasmflow.engine.message import Message
from wasmflow.engine.ports import Inbound
from wasmflow.errors import ConfigError, ConnectorError

__all__ = ["MqttSettings", "MqttSink", "MqttSource"]

log = logging.getLogger(__name__)

#: CONNACK reason codes that another attempt with the same settings will get again.
PERMANENT_REFUSALS = frozenset({0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C})
_CREDENTIAL_REFUSALS = frozenset({0x86, 0x87})
#: TLS alerts by which a broker refuses our client certificate (or its absence) after the handshake.
_CLIENT_CERTIFICATE_ALERTS = ("CERTIFICATE", "UNKNOWN_CA", "ACCESS_DENIED")
#: QoS 0 messages a sink may have queued in paho but not yet written to the socket.
QOS0_UNWRITTEN = 1024


def describe_connect_error(exc: OSError) -> tuple[str, bool]:
    """What a failed connection attempt means to an operator, and whether retrying can help."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: the broker's certificate is not trusted ({exc.verify_message})", False
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return "TLS: the broker closed the connection during the handshake", True
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({exc.reason or exc})", False
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the broker running?)", True
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host ({exc.strerror})", True
    if isinstance(exc, TimeoutError):
        return "connection timed out", True
    return exc.strerror or str(exc) or type(exc).__name__, True


def describe_refusal(reason: ReasonCode, *, has_credentials: bool) -> tuple[str, bool]:
    """A refused CONNACK as a sentence, and whether retrying can help."""
    text = f"the broker refused the connection: {reason}"
    if reason.value in _CREDENTIAL_REFUSALS:
        text += (
            " (check the username and password)"
            if has_credentials
            else " (the broker wants credentials: set credentialsSecretRef)"
        )
    return text, reason.value not in PERMANENT_REFUSALS


class _Paho(mqtt.Client):
    """paho's client, reporting why a connection attempt failed (its own loop retries without saying)."""

    def __init__(self, client_id: str, *, manual_ack: bool, on_connect_error: Callable[[OSError], None]) -> None:
        super().__init__(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=manual_ack)
        self._wasmflow_connect_error = on_connect_error

    def reconnect(self) -> MQTTErrorCode:
        try:
            return super().reconnect()
        except OSError as exc:
            self._wasmflow_connect_error(exc)
            raise


class _ClosingSSLSocket(ssl.SSLSocket):
    """paho 2.2 leaves the socket open when the TLS handshake fails (it only has a local name for it then), so
    every refused attempt would leak a descriptor until the garbage collector finds it: close it right here."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except OSError:
            self.close()
            raise


class _PahoLogHandler(logging.Handler):
    def __init__(self, connection: _Connection) -> None:
        super().__init__(logging.WARNING)
        self._connection = connection

    def emit(self, record: logging.LogRecord) -> None:
        self._connection.paho_said(record.levelno, record.getMessage())


def _paho_logger(connection: _Connection) -> logging.Logger:
    """A private logger for one paho client: its warnings and errors reach that connection (below WARNING paho's
    per-packet messages are not even formatted, so the hot path pays nothing)."""
    logger = logging.Logger(f"{__name__}.paho", logging.WARNING)  # not registered: no parent, no propagation
    logger.addHandler(_PahoLogHandler(connection))
    return logger


class _Connection:
    """One paho client and its network thread, bridged to the asyncio loop that called ``start``.

    ``epoch`` changes whenever a connection is made or lost (network thread, under ``_lock``): packet ids from
    one epoch mean nothing in another.
    """

    def __init__(self, settings: MqttSettings, *, role: str, manual_ack: bool, persistent: bool) -> None:
        self.settings = settings
        self.role = role
        self.persistent = persistent and settings.session_persistent
        self.connected = False
        self.epoch = 0
        self.last_error = ""
        #: The broker's last definitive "no" (cleared by a successful connection).
        self.refused = ""
        #: Called on the network thread after each successful connection, with the session-present flag.
        self.on_connected: Callable[[mqtt.Client, bool], None] | None = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed = asyncio.Event()
        self._started = False
        self._closing = False
        self.client = _Paho(settings.client_id, manual_ack=manual_ack, on_connect_error=self._connect_failed)
        credentials = read_credentials(settings)  # a missing file is a ConfigError now, not a retry loop later
        if credentials:
            self.client.username_pw_set(*credentials)
        if settings.tls:
            context = tls_context(settings)
            context.sslsocket_class = _ClosingSSLSocket
            self.client.tls_set_context(context)
        self.client.reconnect_delay_set(settings.reconnect_min_seconds, settings.reconnect_max_seconds)
        # A bug in a callback must cost one message, not the network thread (paho re-raises by default, which
        # ends its loop and with it every reconnect): paho logs it instead, to the logger below.
        self.client.suppress_exceptions = True
        self.client.enable_logger(_paho_logger(self))
        self.client.on_pre_connect = self._on_pre_connect
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    # --- network thread -------------------------------------------------------------------------------------

    def report(self, text: str, *, retryable: bool) -> None:
        """Record (and log once) why this connection is not usable; ``retryable=False`` makes waiters give up."""
        if text != self.last_error:
            log.warning("%s: %s%s", self.role, text, " (retrying with backoff)" if retryable else "")
        self.last_error = text
        if not retryable:
            self.refused = text

    def _connect_failed(self, exc: OSError) -> None:
        text, retryable = describe_connect_error(exc)
        self.report(f"cannot connect to {self.settings.address}: {text}", retryable=retryable)
        self.notify()

    def paho_said(self, level: int, text: str) -> None:
        """A warning or error from paho. Some read errors are only reported this way: a broker that requires a
        client certificate accepts the TLS 1.3 handshake and then sends an alert, which paho meets as a failed
        read (``[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED]``) and logs; nothing else tells us."""
        if text.startswith("Client is not connected"):
            return  # paho's loop between a lost connection and the next attempt: not news
        if "[SSL:" in text:
            alert = text.split("[SSL:", 1)[1].split("]", 1)[0].strip()
            if any(word in alert for word in _CLIENT_CERTIFICATE_ALERTS):
                self.report(
                    f"TLS: the broker rejected this client ({alert.lower().replace('_', ' ')}): "
                    "check the client certificate",
                    retryable=False,
                )
                self.notify()
                return
        log.log(level, "%s: %s", self.role, text)

    def _on_pre_connect(self, client: mqtt.Client, _userdata: Any) -> None:
        # Mounted Secrets change in place when rotated: read them again for every attempt.
        try:
            credentials = read_credentials(self.settings)
        except ConfigError as exc:
            self.report(str(exc), retryable=True)  # keeps the previous credentials
            return
        if credentials:
            client.username_pw_set(*credentials)

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, flags: mqtt.ConnectFlags, reason: ReasonCode, _props: Any
    ) -> None:
        with self._lock:
            self.epoch += 1
            self.connected = not reason.is_failure
        if reason.is_failure:
            text, retryable = describe_refusal(reason, has_credentials=self.settings.username_file is not None)
            self.report(text, retryable=retryable)
        else:
            self.last_error = self.refused = ""
            log.info(
                "%s: connected to %s%s",
                self.role,
                self.settings.address,
                " (session resumed)" if flags.session_present else "",
            )
            if self.on_connected is not None:
                self.on_connected(client, flags.session_present)
        self.notify()

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: mqtt.DisconnectFlags, reason: ReasonCode, _props: Any
    ) -> None:
        with self._lock:
            self.epoch += 1
            was_connected = self.connected
            self.connected = False
        if was_connected and not self._closing:
            self.report(f"disconnected from {self.settings.address}: {reason}", retryable=True)
        self.notify()

    # --- either thread --------------------------------------------------------------------------------------

    def call_soon(self, callback: Callable[..., object], *args: object) -> bool:
        """Run ``callback(*args)`` on the asyncio loop; False when there is no loop to run it any more."""
        loop = self._loop
        if loop is None:
            return False
        try:
            loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: nobody is waiting for anything
            return False
        return True

    def notify(self) -> None:
        self.call_soon(self._changed.set)

    def puback(self, epoch: int, mids: list[int]) -> None:
        """PUBACK ``mids``, unless the connection that delivered them is gone (the broker redelivers those)."""
        with self._lock:
            if epoch != self.epoch or not self.connected:
                return
            for mid in mids:
                self.client.ack(mid, 1)

    # --- asyncio side ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (idempotent). Must run on the loop that will consume this connection."""
        if self._started:
            return
        self._loop = asyncio.get_running_loop()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.ReceiveMaximum = self.settings.receive_maximum
        props.SessionExpiryInterval = self.settings.session_expiry_seconds if self.persistent else 0
        if self.settings.max_message_size is not None:
            props.MaximumPacketSize = maximum_packet_size(self.settings.max_message_size)
        try:
            self.client.connect_async(
                self.settings.host,
                self.settings.port,
                keepalive=self.settings.keepalive_seconds,
                clean_start=not self.persistent,
                properties=props,
            )
        except ValueError as exc:
            raise ConnectorError(f"{self.role}: cannot connect to {self.settings.address}: {exc}") from exc
        self.client.loop_start()
        self._started = True

    async def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Return once ``ready()``; ConnectorError at once on a definitive refusal, or after ``timeout``."""
        self.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not ready():
            if self.refused:
                raise ConnectorError(f"{self.role}: {self.refused}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                detail = self.last_error or "no answer from the broker"
                raise ConnectorError(f"{self.role}: not {what} within {timeout:g}s ({detail})")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def close(self) -> None:
        """Disconnect (a persistent session stays with the broker) and stop the network thread."""
        self._closing = True
        if self._started:
            self.client.disconnect()
            self.client.loop_stop()
            self._started = False
        with self._lock:
            self.connected = False
            self.epoch += 1


@dataclass(frozen=True, slots=True)
class _Delivery:
    message: Message
    mid: int
    qos: int
    epoch: int
    refused: limits.Refusal | None = None


class MqttSource:
    """Subscribes to one topic filter (``$share/<group>/...`` when a group is set); yields messages with an ack.

    ``connected`` means connected *and* subscribed on the current connection: messages published from then on
    reach this source.
    """

    def __init__(self, settings: MqttSettings, topic: str, *, capacity: int | None = None) -> None:
        self.settings = settings
        self.topic = topic
        self.subscription = subscription(topic, settings.shared_group)
        self._conn = _Connection(settings, role=f"source {topic}", manual_ack=True, persistent=settings.persistent)
        self._conn.on_connected = self._subscribe
        self._conn.client.on_subscribe = self._on_subscribe
        self._conn.client.on_message = self._on_message
        self._subscribed_epoch = -1
        # As large as the broker's QoS 1 window, so for QoS 1 the broker (Receive Maximum) is what holds back.
        self._handoff: Handoff[_Delivery] = Handoff(capacity or settings.receive_maximum)
        self._acks = AckOrder()
        self._stopping = threading.Event()

    @property
    def connected(self) -> bool:
        return self._conn.connected and self._subscribed_epoch == self._conn.epoch

    @property
    def last_error(self) -> str:
        return self._conn.last_error

    @property
    def unacknowledged(self) -> int:
        """QoS 1 messages handed to the pipeline and not yet acknowledged to the broker."""
        return self._acks.waiting

    @property
    def in_flight_budget(self) -> int | None:
        """How many unacknowledged messages the broker sends at most (QoS 1: our Receive Maximum); None: no bound."""
        return self.settings.receive_maximum if self.settings.qos == 1 else None

    # --- network thread -------------------------------------------------------------------------------------

    def _subscribe(self, client: mqtt.Client, _session_present: bool) -> None:
        # Again after every connection: harmless when the session kept it, needed when it did not.
        client.subscribe(self.subscription, qos=self.settings.qos)

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: list[ReasonCode], _props: Any
    ) -> None:
        refused = [r for r in reasons if r.is_failure]
        if refused:
            self._conn.report(
                f"the broker refused the subscription to {self.subscription!r}: {refused[0]}", retryable=False
            )
        else:
            granted = min((r.value for r in reasons), default=0)
            if granted < self.settings.qos:
                log.warning("%s: the broker granted QoS %d only", self._conn.role, granted)
            self._subscribed_epoch = self._conn.epoch
            log.info("%s: subscribed to %r", self._conn.role, self.subscription)
        self._conn.notify()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self._stopping.is_set():
            return  # not acknowledged: the broker keeps it for the session
        received_ms = time.time_ns() // 1_000_000
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            log.error("%s: dropping a message whose topic is not UTF-8 (a broker bug)", self._conn.role)
            return
        message, refused = limits.check(
            message_from_publish(topic, msg.payload, msg.properties, received_ms), self.settings.max_message_size
        )
        if refused is not None:  # only its start goes on, to the error policy (which logs it): never the whole
            log.debug("%s: refusing a message on %r: %s", self._conn.role, topic, refused.reason)
        delivery = _Delivery(message, msg.mid, msg.qos, self._conn.epoch, refused)
        # Bounded: while the pipeline is behind, this thread waits here (and does not read the socket).
        self._handoff.put(delivery)

    # --- asyncio side ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect and subscribe in the background (idempotent; ``messages()`` does it too)."""
        self._handoff.bind(asyncio.get_running_loop())
        self._conn.start()

    async def wait_connected(self, timeout: float = 30.0) -> None:
        """Wait until connected and subscribed; ConnectorError says why not (at once if retrying cannot help)."""
        self.start()
        await self._conn.wait_until(lambda: self.connected, timeout, "connected and subscribed")

    async def messages(self) -> AsyncIterator[Inbound]:
        self.start()
        while True:
            delivery = await self._handoff.get()
            if delivery is None:
                return
            if delivery.qos == 0:
                yield Inbound(delivery.message, refused=delivery.refused)
            else:
                ticket = self._acks.track(delivery.epoch, delivery.mid)
                yield Inbound(delivery.message, functools.partial(self._ack, ticket), delivery.refused)

    async def _ack(self, ticket: Ticket) -> None:
        due = self._acks.finish(ticket)
        if due:
            self._conn.puback(ticket.epoch, due)

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop yielding.

        A shared subscription is left first (UNSUBSCRIBE, then its UNSUBACK, within ``timeout``): the broker gives
        new messages to the other members, and everything it had already sent here is still handed over, so the
        pipeline finishes and acknowledges it. Otherwise a departing member (a pod replaced by a rollout: a new
        name, a new client id) would leave its received-but-unprocessed messages in a session nobody resumes.
        A plain subscription stays in the persistent session instead, so the same client id, back, receives what
        was published meanwhile; what was delivered and not handed over stays unacknowledged with the broker.
        """
        if self.settings.shared_group and self.connected and await self._unsubscribe(timeout):
            self._stopping.set()
            self._handoff.finish()
            return
        self._stopping.set()
        self._handoff.close()

    async def _unsubscribe(self, timeout: float) -> bool:
        """Leave the subscription; True once the broker confirmed it on this connection (nothing more will come)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def settle() -> None:
            if not done.done():
                done.set_result(None)

        def confirmed(*_args: Any) -> None:  # paho's network thread
            self._conn.call_soon(settle)

        self._conn.client.on_unsubscribe = confirmed
        result, _mid = self._conn.client.unsubscribe(self.subscription)
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return False
        try:
            await asyncio.wait_for(done, timeout)
        except TimeoutError:
            log.warning("%s: no UNSUBACK within %gs: leaving the undelivered to the session", self._conn.role, timeout)
            return False
        log.info(
            "%s: unsubscribed from %r, handing over what was already delivered", self._conn.role, self.subscription
        )
        return True

    def close(self) -> None:
        """Disconnect. Call after the pipeline has acknowledged what it finished (acks need the connection)."""
        self._stopping.set()
        self._handoff.close()  # first: paho's thread may be waiting in it, and close() joins that thread
        self._conn.close()


class MqttSink:
    """Publishes to one topic. QoS 1: ``send`` returns after the broker's PUBACK. QoS 0: once paho has it queued.

    Several sends may be awaited at once: they are published in call order and their PUBACKs awaited together
    (paho itself writes at most its ``max_inflight_messages``, 20, and queues the rest until PUBACKs free room).

    The sink's session is never persistent: it subscribes to nothing, and paho itself resends an unacknowledged
    QoS 1 PUBLISH after a reconnect.
    """

    def __init__(self, settings: MqttSettings, topic: str, *, timeout: float = 30.0) -> None:
        self.settings = settings
        self.topic = check_topic_name(topic)
        self.timeout = timeout
        self._conn = _Connection(settings, role=f"sink {topic}", manual_ack=False, persistent=False)
        self._conn.client.on_publish = self._on_publish
        self._pending: dict[int, asyncio.Future[None]] = {}
        # Concurrent sends publish one at a time, in the order they were called (asyncio's Lock is FIFO and an
        # uncontended acquire does not yield), even while they wait for a reconnect; PUBACKs are awaited outside.
        self._publishing = asyncio.Lock()
        # QoS 0: messages handed to paho and not yet written to the socket (paho's queue is unbounded).
        self._window = threading.Lock()
        self._queued = 0
        self._written = 0
        self._window_epoch = -1
        self._room_wanted = False
        self._room = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self._conn.connected

    @property
    def last_error(self) -> str:
        return self._conn.last_error

    @property
    def in_flight(self) -> int:
        """QoS 1 messages published and still awaiting the broker's PUBACK."""
        return len(self._pending)

    def start(self) -> None:
        """Connect in the background (idempotent; ``send`` does it too)."""
        self._conn.start()

    async def wait_connected(self, timeout: float = 30.0) -> None:
        await self._conn.wait_until(lambda: self.connected, timeout, "connected")

    def _on_publish(self, _client: mqtt.Client, _userdata: Any, mid: int, reason: ReasonCode, _props: Any) -> None:
        if self.settings.qos == 0:  # written to the socket: count it, wake the sender only if it waits for room
            with self._window:
                self._written += 1
                wake = self._room_wanted and self._queued - self._written < QOS0_UNWRITTEN
                if wake:
                    self._room_wanted = False
            if wake:
                self._conn.call_soon(self._room.set)
            return
        self._conn.call_soon(self._published, mid, reason)

    def _published(self, mid: int, reason: ReasonCode) -> None:
        future = self._pending.pop(mid, None)
        if future is None or future.done():
            return
        if reason.is_failure:
            future.set_exception(ConnectorError(f"sink {self.topic}: the broker refused the message: {reason}"))
        else:
            future.set_result(None)

    async def send(self, message: Message) -> None:
        """Publish ``message``; return once the broker has it (QoS 1: its PUBACK).

        A broker outage is waited out, however long: the send waits for the reconnect, and paho sends an
        unacknowledged PUBLISH again on the new connection, so the message is delivered at least once. What
        retrying cannot fix raises ConnectorError: the broker refusing the message (a PUBACK reason code of 0x80
        or more, e.g. "Not authorized"), refusing the connection for good (bad credentials, an untrusted
        certificate), or leaving a PUBLISH without a PUBACK for ``timeout`` on a connection that stayed up.
        """
        async with self._publishing:
            if not self.connected:
                await self._wait_connected_again()
            if self.settings.qos == 0:
                await self._send_qos0(message)
                return
            info = self._publish(message)
            epoch = self._conn.epoch
            # Registered before the next await: the PUBACK callback runs on this loop, so it cannot come first.
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._pending[info.mid] = future
        try:
            # asyncio.wait, not wait_for: the future must outlive a timeout, as its PUBACK may still come.
            await asyncio.wait((future,), timeout=self.timeout)
            while not future.done():
                if self.connected and self._conn.epoch == epoch:
                    raise ConnectorError(
                        f"sink {self.topic}: no PUBACK from the broker within {self.timeout:g}s on a live connection"
                    )
                # The connection was lost since the PUBLISH: paho sends it again once reconnected.
                await self._wait_connected_again()
                epoch = self._conn.epoch
                await asyncio.wait((future,), timeout=self.timeout)
            future.result()  # the broker's refusal, if it refused
        finally:
            self._pending.pop(info.mid, None)
            if future.done() and not future.cancelled():
                future.exception()  # a refusal that came as this send was cancelled: seen, not "never retrieved"

    async def _wait_connected_again(self) -> None:
        """Wait for the connection, however long the broker is away (``/readyz`` says so meanwhile); raise
        ConnectorError only when the broker refuses for a reason retrying will not fix."""
        while True:
            try:
                await self.wait_connected(self.timeout)
                return
            except ConnectorError:
                if self._conn.refused:
                    raise
                log.warning(
                    "sink %s: still waiting for %s (%d message(s) awaiting a PUBACK); sending resumes on reconnect",
                    self.topic,
                    self.settings.address,
                    len(self._pending),
                )

    async def _send_qos0(self, message: Message) -> None:
        while True:
            with self._window:
                if self._window_epoch != self._conn.epoch:  # a reconnect dropped what paho had queued
                    self._window_epoch, self._queued = self._conn.epoch, self._written
                if self._queued - self._written < QOS0_UNWRITTEN:
                    break
                self._room_wanted = True
                self._room.clear()
            epoch = self._conn.epoch
            try:
                await asyncio.wait_for(self._room.wait(), self.timeout)
            except TimeoutError as exc:
                if self.connected and self._conn.epoch == epoch:
                    raise ConnectorError(
                        f"sink {self.topic}: nothing written to the broker for {self.timeout:g}s"
                    ) from exc
                await self._wait_connected_again()  # the window restarts with the new connection (above)
        while True:
            info = self._publish(message)
            if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                with self._window:
                    self._queued += 1
                return
            # The connection was lost just now and paho dropped the message: send it again once reconnected.
            await asyncio.sleep(0)
            await self._wait_connected_again()

    def _publish(self, message: Message) -> mqtt.MQTTMessageInfo:
        try:
            info = self._conn.client.publish(
                self.topic, message.payload, qos=self.settings.qos, properties=publish_properties(message)
            )
        except ValueError as exc:  # paho's own checks (payload over 256 MiB)
            raise ConnectorError(f"sink {self.topic}: cannot publish: {exc}") from exc
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise ConnectorError(f"sink {self.topic}: publish failed: {mqtt.error_string(info.rc)}")
        return info

    async def close(self) -> None:
        await asyncio.to_thread(self._conn.close)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectorError(f"sink {self.topic}: closed before the broker's PUBACK"))
        self._pending.clear()
