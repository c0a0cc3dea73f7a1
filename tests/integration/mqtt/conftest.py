"""Fixtures of the MQTT connector tests: a broker of their own for the fault tests, a fresh topic per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.mqtt_env import BrokerEnv, start_broker, stop_broker


@pytest.fixture(scope="session")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerEnv]:
    """A broker these tests may restart or pause without disturbing the session's shared one (only the tests in
    this folder ask for it, so it starts once, when the first of them runs)."""
    env = start_broker(tmp_path_factory.mktemp("own-mosquitto"))
    try:
        yield env
    finally:
        stop_broker(env)


@pytest.fixture
def topic() -> str:
    return f"wasmflow-test/{uuid.uuid4().hex[:12]}"
