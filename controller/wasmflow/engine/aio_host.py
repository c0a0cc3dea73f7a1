"""Re-exports for the modules that still import the AIO node from here (engine/aio_pipeline.py, worker/aio.py,
cli/aio_run.py: the runtime's rewrite replaces them); the code lives in ``engine/worlds/aio/adapter.py`` and
``engine/node.py``. Delete with those modules."""

from __future__ import annotations

from wasmflow.engine.host import EngineHost
from wasmflow.engine.node import Node
from wasmflow.engine.worlds.aio.adapter import AioAdapter, AioNodeSpec, find_operator
from wasmflow.engine.worlds.aio.metrics import AioMetrics
from wasmflow.engine.worlds.aio.state import StateStore

__all__ = ["AioNodeSpec", "AioOperatorNode", "find_operator"]


class AioOperatorNode(Node):
    """The one node class over the AIO adapter, built the way the old callers build it."""

    def __init__(
        self, host: EngineHost, spec: AioNodeSpec, *, state: StateStore, aio_metrics: AioMetrics | None
    ) -> None:
        engine, component = host.compile(spec)
        super().__init__(
            host, spec, AioAdapter(spec, engine, component, state=state, metrics=aio_metrics), engine, component
        )
