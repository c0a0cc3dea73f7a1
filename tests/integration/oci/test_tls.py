"""TLS to a real registry whose certificate only a test CA vouches for (hack/registry.sh ``tls``): trusted with the
CA bundle, refused without it saying the certificate is not trusted and naming the host; plain HTTP only when the
reference says insecure."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.components.engine.wat import operator
from tests.registry_env import TlsRegistry
from tests.services import Registry
from wasmflow.oci import Access, Layout, RetryPolicy, ServerError, UnreachableError, pull_artifact, push_component
from wasmflow.oci.digests import sha256_digest

WASMFLOW = str(Path(sys.executable).parent / "wasmflow")
COMPONENT = operator("map")


def ref_in(host: str) -> str:
    return f"{host}/tls-tests/{uuid.uuid4().hex[:10]}:1.0"


def push(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WASMFLOW, "push", *args], capture_output=True, text=True, check=False)


def test_a_component_pushed_and_pulled_over_tls_with_the_registry_ca_pulls_back_verified(
    registry_tls: TlsRegistry,
) -> None:
    ref = ref_in(registry_tls.host)
    access = Access(ca_file=registry_tls.ca_file)
    pushed = asyncio.run(push_component(ref, COMPONENT, access=access))
    pulled = asyncio.run(pull_artifact(ref, access=access))
    assert pulled.manifest_digest == pushed.digest
    assert pulled.layout is Layout.CNCF_WASM
    assert pulled.data == COMPONENT


def test_wasmflow_push_with_ca_file_pushes_over_tls(
    registry_tls: TlsRegistry, component: Callable[[str], Path]
) -> None:
    path = component("wat_identity_map")
    ref = ref_in(registry_tls.host)
    result = push(str(path), ref, "--ca-file", str(registry_tls.ca_file))
    assert result.returncode == 0, result.stderr
    pulled = asyncio.run(pull_artifact(ref, access=Access(ca_file=registry_tls.ca_file)))
    assert pulled.manifest_digest == result.stdout.strip()
    assert pulled.digest == sha256_digest(path.read_bytes())


def test_without_the_ca_a_pull_is_refused_saying_the_certificate_of_that_host_is_not_trusted(
    registry_tls: TlsRegistry,
) -> None:
    ref = ref_in(registry_tls.host)
    asyncio.run(push_component(ref, COMPONENT, access=Access(ca_file=registry_tls.ca_file)))
    with pytest.raises(UnreachableError) as caught:
        asyncio.run(pull_artifact(ref, access=Access()))
    message = str(caught.value)
    assert f"the TLS certificate of {registry_tls.host} is not trusted" in message
    assert "certificate verify failed" in message
    assert "--ca-file" in message and "WASMFLOW_REGISTRY_CA_FILE" in message


def test_without_ca_file_wasmflow_push_is_refused_naming_the_host_and_pushes_nothing(
    registry_tls: TlsRegistry, component: Callable[[str], Path]
) -> None:
    ref = ref_in(registry_tls.host)
    result = push(str(component("wat_identity_map")), ref)
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"the TLS certificate of {registry_tls.host} is not trusted" in result.stderr


def test_a_ca_bundle_does_not_allow_plain_http_to_a_registry_that_serves_it(
    registry: Registry, registry_tls: TlsRegistry
) -> None:
    access = Access(ca_file=registry_tls.ca_file, retry=RetryPolicy(attempts=1))
    with pytest.raises(UnreachableError, match="set insecure: true") as caught:
        asyncio.run(pull_artifact(ref_in(registry.host), access=access))
    assert f"TLS handshake with {registry.host} failed" in str(caught.value)


def test_insecure_speaks_plain_http_even_to_a_tls_registry_which_refuses_it(registry_tls: TlsRegistry) -> None:
    """insecure means plain HTTP, never "TLS without verification": the TLS registry answers 400 to it."""
    access = Access(insecure=True, ca_file=registry_tls.ca_file, retry=RetryPolicy(attempts=1))
    with pytest.raises(ServerError) as caught:
        asyncio.run(pull_artifact(ref_in(registry_tls.host), access=access))
    assert caught.value.status == 400
    assert "HTTP request to an HTTPS server" in str(caught.value)
