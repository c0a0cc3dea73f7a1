"""Re-exports for the modules that still import from here (engine/aio_pipeline.py, worker/aio.py, cli/aio_run.py:
the runtime's rewrite replaces them); the code lives in ``engine/worlds/aio/metrics.py``. Delete with those modules."""

from wasmflow.engine.worlds.aio.metrics import (
    AioMetrics,
    MetricsError,
)

__all__ = [
    "AioMetrics",
    "MetricsError",
]
