"""Why a connection failed, in words an operator can act on, and whether retrying can help."""

from __future__ import annotations

import socket
import ssl

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from wasmflow.connectors.mqtt import describe_connect_error, describe_refusal


def _connack(code: int) -> ReasonCode:
    return ReasonCode(PacketTypes.CONNACK, identifier=code)


def test_bad_credentials_are_final_and_point_at_the_credentials() -> None:
    text, retryable = describe_refusal(_connack(0x86), has_credentials=True)
    assert text == "the broker refused the connection: Bad user name or password (check the username and password)"
    assert not retryable


def test_not_authorized_without_credentials_says_to_configure_them() -> None:
    text, retryable = describe_refusal(_connack(0x87), has_credentials=False)
    assert "set credentialsSecretRef" in text
    assert not retryable


@pytest.mark.parametrize("code", [0x88, 0x89, 0x97])  # server unavailable, server busy, quota exceeded
def test_a_busy_or_unavailable_broker_is_retried(code: int) -> None:
    _text, retryable = describe_refusal(_connack(code), has_credentials=False)
    assert retryable


def test_an_untrusted_certificate_is_final_and_says_why() -> None:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_message = "self-signed certificate in certificate chain"
    text, retryable = describe_connect_error(exc)
    assert text == "TLS: the broker's certificate is not trusted (self-signed certificate in certificate chain)"
    assert not retryable


def test_a_refused_tcp_connection_is_retried() -> None:
    text, retryable = describe_connect_error(ConnectionRefusedError(111, "Connection refused"))
    assert text == "connection refused (is the broker running?)"
    assert retryable


def test_an_unresolvable_host_is_retried() -> None:
    text, retryable = describe_connect_error(socket.gaierror(-2, "Name or service not known"))
    assert text == "cannot resolve the host (Name or service not known)"
    assert retryable


def test_a_handshake_cut_short_is_retried() -> None:
    _text, retryable = describe_connect_error(ssl.SSLEOFError(8, "EOF occurred in violation of protocol"))
    assert retryable
