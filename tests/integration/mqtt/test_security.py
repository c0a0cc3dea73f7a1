"""Credentials from mounted files, TLS with a CA, client certificates: accepted when right, refused at once with a
ConnectorError that says why (and never repeats a secret) when wrong."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integration.mqtt.helpers import inbox_of, opened_sink, opened_source, settings
from tests.mqtt_env import BrokerEnv
from wasmflow.connectors.mqtt import MqttSettings, MqttSink
from wasmflow.engine.message import Message
from wasmflow.errors import ConfigError, ConnectorError


def _credentials(tmp_path: Path, username: str, password: str) -> dict[str, Path]:
    """Files as Kubernetes mounts a Secret's keys (with a trailing newline, as `echo` would leave)."""
    (tmp_path / "username").write_text(username + "\n")
    (tmp_path / "password").write_text(password + "\n")
    return {"username_file": tmp_path / "username", "password_file": tmp_path / "password"}


def _refusal(mqtt_settings: MqttSettings) -> tuple[ConnectorError, MqttSink]:
    async def scenario() -> tuple[ConnectorError, MqttSink]:
        sink = MqttSink(mqtt_settings, "t")
        try:
            with pytest.raises(ConnectorError) as info:
                await sink.wait_connected(10)  # a definitive refusal does not wait this long
            return info.value, sink
        finally:
            await sink.close()

    return asyncio.run(asyncio.wait_for(scenario(), 5))


def _round_trip(mqtt_settings: MqttSettings, topic: str) -> bytes:
    async def scenario() -> bytes:
        async with (
            opened_source(mqtt_settings, topic) as source,
            inbox_of(source) as inbox,
            opened_sink(mqtt_settings, topic) as sink,
        ):
            await sink.send(Message(b"secured", topic))
            inbound = await inbox.get()
            await inbound.ack()
            return inbound.message.payload

    return asyncio.run(scenario())


def test_the_right_username_and_password_from_files_connect(mqtt_broker: BrokerEnv, topic: str, tmp_path: Path) -> None:
    auth = settings(mqtt_broker.auth_url, **_credentials(tmp_path, mqtt_broker.username, mqtt_broker.password))
    assert _round_trip(auth, topic) == b"secured"


def test_a_wrong_password_is_refused_with_a_connector_error_saying_so(mqtt_broker: BrokerEnv, tmp_path: Path) -> None:
    wrong = settings(mqtt_broker.auth_url, **_credentials(tmp_path, mqtt_broker.username, "not-the-password"))
    error, sink = _refusal(wrong)
    assert "the broker refused the connection" in str(error)
    assert "check the username and password" in str(error)
    assert "not-the-password" not in str(error)
    assert not sink.connected
    assert sink.last_error in str(error)


def test_no_credentials_on_a_listener_that_wants_them_says_to_configure_them(mqtt_broker: BrokerEnv) -> None:
    error, _sink = _refusal(settings(mqtt_broker.auth_url))
    assert "set credentialsSecretRef" in str(error)


def test_a_missing_password_file_is_a_config_error_naming_the_file(mqtt_broker: BrokerEnv, tmp_path: Path) -> None:
    files = _credentials(tmp_path, "wasmflow", "x")
    files["password_file"].unlink()
    with pytest.raises(ConfigError, match="cannot read the MQTT password file") as info:
        MqttSink(settings(mqtt_broker.auth_url, **files), "t")
    assert info.value.where == str(files["password_file"])


def test_tls_with_the_brokers_ca_connects(mqtt_broker: BrokerEnv, topic: str) -> None:
    assert _round_trip(settings(mqtt_broker.tls_url, ca_file=mqtt_broker.ca_file), topic) == b"secured"


def test_tls_without_the_brokers_ca_is_refused_as_untrusted(mqtt_broker: BrokerEnv) -> None:
    error, _sink = _refusal(settings(mqtt_broker.tls_url))
    assert "TLS: the broker's certificate is not trusted" in str(error)


def test_a_client_certificate_is_accepted_where_one_is_required(mqtt_broker: BrokerEnv, topic: str) -> None:
    mtls = settings(
        mqtt_broker.mtls_url,
        ca_file=mqtt_broker.ca_file,
        cert_file=mqtt_broker.client_cert,
        key_file=mqtt_broker.client_key,
    )
    assert _round_trip(mtls, topic) == b"secured"


def test_no_client_certificate_where_one_is_required_is_refused_saying_so(mqtt_broker: BrokerEnv) -> None:
    error, _sink = _refusal(settings(mqtt_broker.mtls_url, ca_file=mqtt_broker.ca_file))
    assert "TLS: the broker rejected this client" in str(error)
    assert "check the client certificate" in str(error)


def test_a_message_the_broker_refuses_is_a_connector_error_saying_so(mqtt_broker: BrokerEnv, tmp_path: Path) -> None:
    """The auth listener's ACL denies forbidden/#: the PUBACK carries "Not authorized", and send raises."""
    auth = settings(mqtt_broker.auth_url, **_credentials(tmp_path, mqtt_broker.username, mqtt_broker.password))

    async def scenario() -> None:
        async with opened_sink(auth, "forbidden/x") as sink:
            await sink.send(Message(b"no", "forbidden/x"))

    with pytest.raises(ConnectorError, match=r"sink forbidden/x: the broker refused the message: Not authorized"):
        asyncio.run(scenario())
