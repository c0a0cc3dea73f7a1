"""Engine fixtures: one EngineHost per module (it owns a thread), operators from tests/components/engine/wat.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry

from tests.components.engine import wat
from wasmflow.api.kinds import OperatorKind
from wasmflow.engine.host import EngineHost, OperatorNode, OperatorSpec
from wasmflow.engine.metrics import EngineMetrics


@pytest.fixture
def metrics() -> EngineMetrics:
    return EngineMetrics(CollectorRegistry())


@pytest.fixture
def host(metrics: EngineMetrics) -> Iterator[EngineHost]:
    with EngineHost(cache_dir=None, metrics=metrics) as engine_host:
        yield engine_host


@pytest.fixture
def load(host: EngineHost) -> Callable[..., OperatorNode]:
    """``load(body="", kind="map", node="op", **spec_fields)``: a WAT operator loaded into ``host``."""

    def load_operator(body: str = "", kind: str = "map", node: str = "op", **fields: object) -> OperatorNode:
        return host.load(OperatorSpec(node, OperatorKind(kind), wat.operator(kind, body), **fields))  # type: ignore[arg-type]

    return load_operator
