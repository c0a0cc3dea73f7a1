"""Fixtures of the fault tests: a broker they may restart, workers as processes, and a place to report figures.

Each fault test measures what happened (messages lost and duplicated, time to recover, peak memory) and asserts
the guarantees; the figures are printed (``FAULT ...`` lines, shown even without ``-s``) for the record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.faults.workers import Collector, Publisher, WorkerProcess, write_config
from tests.mqtt_env import BrokerEnv, start_broker, stop_broker
from wasmflow.api.kinds import OperatorKind
from wasmflow.api.workerconfig import PinnedModule


@pytest.fixture(scope="session")
def fault_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerEnv]:
    """A broker of the fault tests' own, which they restart without disturbing the session's shared one."""
    env = start_broker(tmp_path_factory.mktemp("fault-mosquitto"))
    try:
        yield env
    finally:
        stop_broker(env)


def pinned(path: Path, kind: str, **fields: Any) -> PinnedModule:
    """A module file pinned by its real digest (the worker verifies it before running anything)."""
    digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    return PinnedModule(digest=digest, path=str(path), operator=OperatorKind(kind), **fields)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """``workers(spec, modules)``: a WorkerProcess for that config (not started); every one is killed at the end."""
    made: list[WorkerProcess] = []

    def make(spec: dict[str, Any], modules: dict[str, PinnedModule], **kwargs: Any) -> WorkerProcess:
        directory = tmp_path / f"worker-{len(made)}"
        directory.mkdir()
        made.append(WorkerProcess(directory, write_config(directory, spec, modules, **kwargs)))
        return made[-1]

    yield make
    for worker in made:
        worker.kill()


@pytest.fixture
def clients() -> Iterator[list[Collector | Publisher]]:
    """Register the MQTT clients a test opens here: they are closed at the end, whatever happens."""
    opened: list[Collector | Publisher] = []
    yield opened
    for client in opened:
        client.close()
