"""Real componentize-py operators in the engine. Compiling one takes seconds, so the host caches compiled code in
``$WASMFLOW_CACHE/compiled`` across sessions (the cache's own tests use fresh directories)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry

from tests.components.build import cache_dir
from wasmflow.api.kinds import OperatorKind
from wasmflow.engine.host import EngineHost, OperatorNode, OperatorSpec
from wasmflow.engine.metrics import EngineMetrics

Bytes = Callable[[str], bytes]


@pytest.fixture(scope="session")
def engine_host() -> Iterator[EngineHost]:
    with EngineHost(cache_dir=cache_dir().parent / "compiled", metrics=EngineMetrics(CollectorRegistry())) as host:
        yield host


@pytest.fixture
def operator(engine_host: EngineHost, component_bytes: Bytes) -> Callable[..., OperatorNode]:
    """``operator("hostile_map", "map", node=..., **spec_fields)``: a real component, loaded and initialised."""
    nodes: list[OperatorNode] = []

    def load(name: str, kind: str, node: str = "", **fields: object) -> OperatorNode:
        spec = OperatorSpec(node or name, OperatorKind(kind), component_bytes(name), **fields)  # type: ignore[arg-type]
        nodes.append(engine_host.load(spec))
        return nodes[-1]

    yield load
    for node in nodes:
        node.close()
