"""5xx from a real registry path: a real proxy in front of the real registry answers 503 to the first requests
(or to all of them); pulls retry with backoff and succeed, or give up after the policy's tries saying so."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.components.engine.wat import operator
from tests.integration.oci.unavailable_proxy import unavailable_proxy
from tests.services import Registry
from wasmflow.oci import Access, RetryPolicy, ServerError, pull_artifact, push_component

COMPONENT = operator("map")
#: Quick backoff: the policy's shape is unit-tested, here what matters is that the tries happen.
RETRY = RetryPolicy(attempts=4, initial_delay=0.05, max_delay=0.2)


def pushed(registry: Registry) -> str:
    """A component pushed straight to the registry; its repository and tag, to be pulled through the proxy."""
    path = f"unavailable/{uuid.uuid4().hex[:10]}:1.0"
    asyncio.run(push_component(f"{registry.host}/{path}", COMPONENT, access=Access(insecure=True)))
    return path


def test_a_pull_through_a_registry_answering_503_at_first_succeeds_after_retries(registry: Registry) -> None:
    path = pushed(registry)
    with unavailable_proxy(registry.url, failing=3) as (host, proxy):
        pulled = asyncio.run(pull_artifact(f"{host}/{path}", access=Access(insecure=True, retry=RETRY)))
    assert pulled.data == COMPONENT
    assert proxy.refused == 3
    assert proxy.requests > 3  # the refused tries, then the manifest and the layer


def test_a_registry_that_keeps_answering_503_fails_as_a_transient_server_error_after_every_try(
    registry: Registry,
) -> None:
    path = pushed(registry)
    with unavailable_proxy(registry.url, failing=None) as (host, proxy), pytest.raises(ServerError) as caught:
        asyncio.run(pull_artifact(f"{host}/{path}", access=Access(insecure=True, retry=RETRY)))
    assert (caught.value.status, caught.value.transient) == (503, True)
    assert "answered 503: service unavailable: backend restarting" in str(caught.value)
    assert proxy.requests == RETRY.attempts
