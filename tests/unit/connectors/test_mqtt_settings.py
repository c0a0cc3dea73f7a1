"""Endpoint settings: URLs, the Dataflow endpoint with its mounted Secret files, and secrets kept out of messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from wasmflow.api.dataflow import MqttEndpoint
from wasmflow.api.workerconfig import EndpointFiles
from wasmflow.connectors.mqtt_settings import (
    MqttSettings,
    parse_url,
    read_credentials,
    read_secret_file,
    tls_context,
)
from wasmflow.errors import ConfigError


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://broker", ("broker", 1883, False)),
        ("mqtts://broker", ("broker", 8883, True)),
        ("mqtt://10.0.0.1:1884", ("10.0.0.1", 1884, False)),
        ("mqtts://mosquitto.plant:8884/", ("mosquitto.plant", 8884, True)),
    ],
)
def test_urls_give_host_port_and_tls(url: str, expected: tuple[str, int, bool]) -> None:
    assert parse_url(url) == expected


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("tcp://broker:1883", "expected mqtt://"),
        ("mqtt://", "expected mqtt://"),
        ("mqtt://broker:99999", "invalid MQTT URL"),
        ("mqtt://broker/topic", "no path or query"),
        ("mqtt://broker?x=1", "no path or query"),
    ],
)
def test_bad_urls_are_refused_saying_why(url: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as info:
        parse_url(url)
    assert info.value.where == "mqtt.url"


def test_credentials_in_the_url_are_refused_without_repeating_them() -> None:
    with pytest.raises(ConfigError, match="credentialsSecretRef") as info:
        parse_url("mqtt://user:hunter2@broker")
    assert "hunter2" not in str(info.value)


def test_an_endpoint_with_mounted_files_becomes_settings() -> None:
    endpoint = MqttEndpoint.model_validate(
        {
            "url": "mqtts://mosquitto.plant:8883",
            "qos": 0,
            "sharedSubscriptionGroup": "temps",
            "tls": {"caSecretRef": {"name": "ca", "key": "ca.crt"}, "clientCertSecretRef": {"name": "client"}},
            "credentialsSecretRef": {"name": "creds"},
        }
    )
    files = EndpointFiles(
        username_file="/s/credentials/username",
        password_file="/s/credentials/password",
        ca_file="/s/ca/ca.crt",
        cert_file="/s/client/tls.crt",
        key_file="/s/client/tls.key",
    )
    settings = MqttSettings.from_endpoint(endpoint, files, client_id="wf-plant-temps-in-pod-0")
    assert settings == MqttSettings(
        host="mosquitto.plant",
        port=8883,
        tls=True,
        ca_file=Path("/s/ca/ca.crt"),
        cert_file=Path("/s/client/tls.crt"),
        key_file=Path("/s/client/tls.key"),
        username_file=Path("/s/credentials/username"),
        password_file=Path("/s/credentials/password"),
        qos=0,
        shared_group="temps",
        client_id="wf-plant-temps-in-pod-0",
    )
    assert settings.session_persistent


def test_an_endpoint_without_secrets_needs_no_files() -> None:
    settings = MqttSettings.from_endpoint(MqttEndpoint(url="mqtt://broker"), None, client_id="")
    assert (settings.host, settings.port, settings.tls, settings.qos) == ("broker", 1883, False, 1)
    assert settings.username_file is None
    assert not settings.session_persistent  # no stable id: nothing to resume


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"qos": 2}, "qos must be 0 or 1"),
        ({"receive_maximum": 0}, "receive maximum"),
        ({"cert_file": Path("c")}, "both a certificate and a key"),
        ({"password_file": Path("p")}, "needs a username file"),
        ({"client_id": "x" * 129}, "client id longer"),
        ({"reconnect_min_seconds": 10, "reconnect_max_seconds": 5}, "backoff"),
    ],
)
def test_inconsistent_settings_are_refused(fields: dict[str, object], why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        MqttSettings.from_url("mqtt://broker", **fields)


def test_tls_files_need_an_mqtts_url() -> None:
    with pytest.raises(ConfigError, match="not mqtts://"):
        MqttSettings.from_url("mqtt://broker", ca_file=Path("ca.crt"))


def test_secret_files_lose_only_their_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "username").write_text("plant-worker\n")
    (tmp_path / "password").write_text(" pass with spaces \r\n")
    settings = MqttSettings.from_url(
        "mqtt://broker", username_file=tmp_path / "username", password_file=tmp_path / "password"
    )
    assert read_credentials(settings) == ("plant-worker", " pass with spaces ")


def test_a_username_without_a_password_is_allowed(tmp_path: Path) -> None:
    (tmp_path / "username").write_text("anon")
    assert read_credentials(MqttSettings.from_url("mqtt://b", username_file=tmp_path / "username")) == ("anon", None)


def test_no_credentials_without_files() -> None:
    assert read_credentials(MqttSettings.from_url("mqtt://b")) is None


def test_a_missing_secret_file_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the MQTT password file") as info:
        read_secret_file(tmp_path / "password", "password")
    assert info.value.where == str(tmp_path / "password")


def test_a_missing_ca_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    settings = MqttSettings.from_url("mqtts://b", ca_file=tmp_path / "ca.crt")
    with pytest.raises(ConfigError, match="cannot read the MQTT CA file") as info:
        tls_context(settings)
    assert info.value.where == str(tmp_path / "ca.crt")


def test_a_ca_file_that_is_not_pem_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("not a certificate")
    with pytest.raises(ConfigError, match="CA file is not usable"):
        tls_context(MqttSettings.from_url("mqtts://b", ca_file=tmp_path / "ca.crt"))


def test_a_key_file_that_is_not_pem_is_a_config_error_without_its_content(tmp_path: Path) -> None:
    (tmp_path / "tls.crt").write_text("-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END CERTIFICATE-----\n")
    (tmp_path / "tls.key").write_text("secret-key-material")
    settings = MqttSettings.from_url("mqtts://b", cert_file=tmp_path / "tls.crt", key_file=tmp_path / "tls.key")
    with pytest.raises(ConfigError, match="client certificate or key file is not usable") as info:
        tls_context(settings)
    assert "secret-key-material" not in str(info.value)


def test_without_a_ca_file_the_system_trust_store_is_used() -> None:
    context = tls_context(MqttSettings.from_url("mqtts://b"))
    assert context.check_hostname
    assert context.get_ca_certs() is not None
