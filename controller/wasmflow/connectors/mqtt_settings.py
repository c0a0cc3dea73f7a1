"""How to reach one MQTT broker: address, TLS, credentials, session and flow-control settings.

Secret material is referenced by file path (a mounted Kubernetes Secret), never held in the settings, and read
only when a connection is made, so a rotated Secret is picked up by the next reconnect. Nothing here logs or
reports a secret's content: errors name the file, not what is in it.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from wasmflow.api.dataflow import MqttEndpoint
from wasmflow.api.workerconfig import EndpointFiles
from wasmflow.errors import ConfigError

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883
#: QoS 1 messages the broker may have in flight to a source, unacknowledged. With manual acks this is the
#: at-least-once window: it bounds what a slow pipeline holds, and what is redelivered after a crash.
DEFAULT_RECEIVE_MAXIMUM = 64
#: How long the broker keeps a persistent session (subscription + unacknowledged messages) of a gone client.
DEFAULT_SESSION_EXPIRY_SECONDS = 3600
MAX_CLIENT_ID = 128
#: MQTT's own ceiling on a packet (a four-byte remaining length, plus the fixed header).
MQTT_MAX_PACKET = 268_435_455
#: How far beyond ``max_message_size`` a source still receives a message (so it can route it to the error policy
#: itself): 16 times the limit, at most 64 MiB more, plus room for the PUBLISH header, topic and properties.
RECEIVE_FACTOR = 16
RECEIVE_EXTRA_MAX = 64 * 2**20
RECEIVE_HEADROOM = 64 * 2**10


def maximum_packet_size(max_message_size: int) -> int:
    """The Maximum Packet Size a client advertises in CONNECT for a message limit (MQTT 5 section 3.1.2.11.4).

    Larger than the limit on purpose: a message just over it must reach the worker, which sends it to the error
    policy (dead letter) and acknowledges it, instead of the broker discarding it unseen. What exceeds even this
    bound the broker discards without sending (the specification's rule), so no one publisher can make a worker
    read more than this at once.
    """
    receive = min(RECEIVE_FACTOR * max_message_size, max_message_size + RECEIVE_EXTRA_MAX)
    return min(receive + RECEIVE_HEADROOM, MQTT_MAX_PACKET)


@dataclass(frozen=True)
class MqttSettings:
    """Everything a source or sink needs to connect. Paths are mounted Secret files; contents are read late."""

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
    #: A stable id makes a source's session persistent (see ``persistent``); empty: the broker assigns one.
    client_id: str = ""
    #: Keep the source's session (clean start off, session expiry on) when ``client_id`` is set.
    persistent: bool = True
    session_expiry_seconds: int = DEFAULT_SESSION_EXPIRY_SECONDS
    receive_maximum: int = DEFAULT_RECEIVE_MAXIMUM
    keepalive_seconds: int = 30
    #: Reconnect backoff: doubles from min to max after each failed attempt, back to min once connected.
    reconnect_min_seconds: int = 1
    reconnect_max_seconds: int = 30
    #: The largest message a source passes on (``spec.limits.maxMessageSize``); None: no limit (and no Maximum
    #: Packet Size in CONNECT). See ``maximum_packet_size`` for what the broker is told.
    max_message_size: int | None = None

    def __post_init__(self) -> None:
        if self.qos not in (0, 1):
            raise ConfigError(f"qos must be 0 or 1, got {self.qos}", where="mqtt.qos")
        if not 0 < self.port < 65536:
            raise ConfigError(f"port must be 1..65535, got {self.port}", where="mqtt.url")
        if not 0 < self.receive_maximum < 65536:
            raise ConfigError(f"receive maximum must be 1..65535, got {self.receive_maximum}", where="mqtt")
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError("a client certificate needs both a certificate and a key file", where="mqtt.tls")
        if (self.ca_file or self.cert_file) and not self.tls:
            raise ConfigError("TLS files are configured but the URL is not mqtts://", where="mqtt.url")
        if self.password_file is not None and self.username_file is None:
            raise ConfigError("a password file needs a username file", where="mqtt.credentials")
        if len(self.client_id) > MAX_CLIENT_ID:
            raise ConfigError(f"client id longer than {MAX_CLIENT_ID} characters", where="mqtt.clientId")
        if not 0 < self.reconnect_min_seconds <= self.reconnect_max_seconds:
            raise ConfigError("reconnect backoff needs 0 < min <= max", where="mqtt")
        if self.max_message_size is not None and not 0 < self.max_message_size < MQTT_MAX_PACKET:
            raise ConfigError(f"max message size must be 1..{MQTT_MAX_PACKET - 1} bytes", where="mqtt")

    @property
    def address(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def session_persistent(self) -> bool:
        return self.persistent and bool(self.client_id)

    @classmethod
    def from_url(cls, url: str, **fields: Any) -> MqttSettings:
        """``mqtt://host[:port]`` (1883) or ``mqtts://host[:port]`` (TLS, 8883), plus any other field."""
        host, port, tls = parse_url(url)
        return cls(host=host, port=port, tls=tls, **fields)

    @classmethod
    def from_endpoint(
        cls, endpoint: MqttEndpoint, files: EndpointFiles | None, *, client_id: str, persistent: bool = True
    ) -> MqttSettings:
        """The settings of a Dataflow endpoint, with the paths where the worker's pod mounts its Secrets."""
        host, port, tls = parse_url(endpoint.url)
        files = files or EndpointFiles()
        return cls(
            host=host,
            port=port,
            tls=tls,
            ca_file=_path(files.ca_file),
            cert_file=_path(files.cert_file),
            key_file=_path(files.key_file),
            username_file=_path(files.username_file),
            password_file=_path(files.password_file),
            qos=endpoint.qos,
            shared_group=endpoint.shared_subscription_group,
            client_id=client_id,
            persistent=persistent,
        )


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def parse_url(url: str) -> tuple[str, int, bool]:
    """(host, port, tls) of an ``mqtt://`` or ``mqtts://`` URL; ConfigError says what is wrong with it."""
    try:
        parsed = urlparse(url)
        port = parsed.port
    except ValueError as exc:
        raise ConfigError(f"invalid MQTT URL {url!r}: {exc}", where="mqtt.url") from exc
    if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
        raise ConfigError(f"expected mqtt://host[:port] or mqtts://host[:port], got {url!r}", where="mqtt.url")
    if parsed.username or parsed.password:
        # Never accept secrets inline: they would end up in the Dataflow, its ConfigMap and its logs.
        raise ConfigError("credentials do not belong in the URL: use credentialsSecretRef", where="mqtt.url")
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment:
        raise ConfigError(f"an MQTT URL has no path or query, got {url!r}", where="mqtt.url")
    tls = parsed.scheme == "mqtts"
    return parsed.hostname, port or (DEFAULT_TLS_PORT if tls else DEFAULT_PORT), tls


def read_secret_file(path: Path, what: str) -> str:
    """The content of a mounted Secret key, without the trailing newline an editor or ``echo`` leaves."""
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"cannot read the MQTT {what} file: {exc.strerror}", where=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the MQTT {what} file is not UTF-8 text", where=str(path)) from exc


def read_credentials(settings: MqttSettings) -> tuple[str, str | None] | None:
    """(username, password) from the mounted files, or None when the endpoint has no credentials."""
    if settings.username_file is None:
        return None
    username = read_secret_file(settings.username_file, "username")
    password = read_secret_file(settings.password_file, "password") if settings.password_file else None
    return username, password


def _no_passphrase() -> bytes:
    return b""


def tls_context(settings: MqttSettings) -> ssl.SSLContext:
    """A verifying client context: the configured CA (else the system's), the client certificate if any."""
    ca = settings.ca_file
    try:
        context = ssl.create_default_context(cafile=str(ca) if ca else None)
    except OSError as exc:
        raise _tls_file_error("CA", [ca] if ca else [], exc) from exc
    if settings.cert_file and settings.key_file:
        files = [settings.cert_file, settings.key_file]
        try:
            # An encrypted key fails here instead of OpenSSL prompting on a terminal a pod does not have.
            context.load_cert_chain(str(files[0]), str(files[1]), password=_no_passphrase)
        except OSError as exc:
            raise _tls_file_error("client certificate or key", files, exc) from exc
    return context


def _tls_file_error(what: str, files: list[Path], exc: OSError) -> ConfigError:
    """Name the file and the reason (OpenSSL's reasons never quote key material)."""
    missing = next((f for f in files if not f.is_file()), None)
    if missing is not None or not isinstance(exc, ssl.SSLError):
        where = str(missing or (files[0] if files else "mqtt.tls"))
        return ConfigError(f"cannot read the MQTT {what} file: {exc.strerror or exc}", where=where)
    return ConfigError(f"the MQTT {what} file is not usable: {exc.reason or exc}", where=" ".join(map(str, files)))
