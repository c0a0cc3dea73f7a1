"""Which hosts may get credentials over plain HTTP (loopback, or listed), and what reaches an error message.

The refusal itself, before any connection, is proven through the public surface in
tests/integration/faults/test_registry_plain_http_credentials.py; here the host rules are enumerated.
"""

from __future__ import annotations

import asyncio

import pytest

from wasmflow.oci import Credentials, InsecureCredentialsError, parse_reference
from wasmflow.oci.client import RegistryClient, _clean

CREDENTIALS = Credentials(username="u", password="secret-password")


@pytest.mark.parametrize(
    "host", ["127.0.0.1:5000", "127.1.2.3:5000", "localhost:5000", "LOCALHOST", "[::1]:5000", "[::1]"]
)
def test_loopback_hosts_may_get_credentials_over_plain_http(host: str) -> None:
    assert RegistryClient(host, insecure=True, credentials=CREDENTIALS)._plain_http_allowed(host)


@pytest.mark.parametrize(
    "host", ["10.0.0.5:5000", "registry.plant:5000", "localhost.example.com:5000", "127.0.0.1.nip.io", "[::2]:5000"]
)
def test_other_hosts_are_refused_before_any_request_naming_the_host_and_how_to_allow_it(host: str) -> None:
    ref = parse_reference(f"{host}/team/op:1.0")
    client = RegistryClient(ref.registry, insecure=True, credentials=CREDENTIALS)
    with pytest.raises(InsecureCredentialsError) as refused:
        asyncio.run(client.fetch_manifest(ref))
    message = str(refused.value)
    assert host in message and "WASMFLOW_REGISTRY_PLAIN_HTTP_CREDENTIAL_HOSTS" in message
    assert "secret-password" not in message
    assert refused.value.reason == "InsecureCredentials" and not refused.value.transient


@pytest.mark.parametrize("listed", ["registry.plant", "registry.plant:5000", "REGISTRY.plant:5000"])
def test_a_listed_host_may_get_credentials_over_plain_http(listed: str) -> None:
    client = RegistryClient(
        "registry.plant:5000", insecure=True, credentials=CREDENTIALS, plain_http_credential_hosts=[listed]
    )
    assert client._plain_http_allowed("registry.plant:5000")
    assert not client._plain_http_allowed("registry.plant.evil:5000")


def test_a_listed_host_and_port_allows_that_port_only() -> None:
    client = RegistryClient("registry.plant:5000", insecure=True, plain_http_credential_hosts=["registry.plant:5000"])
    assert not client._plain_http_allowed("registry.plant:6000")


def test_text_from_a_registry_is_stripped_of_control_characters_and_cut() -> None:
    assert _clean("manifest\nunknown\x1b[31m\x00!", 100) == "manifest unknown [31m !"
    assert _clean("A" * 500, 20) == "A" * 17 + "..."


def test_the_controller_reads_the_allowed_hosts_from_its_environment() -> None:
    from wasmflow.operator.config import load_config  # noqa: PLC0415 - the operator's side of the same setting

    env = {"WASMFLOW_REGISTRY_PLAIN_HTTP_CREDENTIAL_HOSTS": " registry.plant:5000, ,mirror.plant "}
    assert load_config(env).registry_plain_http_credential_hosts == ("registry.plant:5000", "mirror.plant")
    assert load_config({}).registry_plain_http_credential_hosts == ()
