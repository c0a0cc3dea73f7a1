"""Re-exports for the modules that still import from here (engine/aio_pipeline.py, worker/aio.py, cli/aio_run.py:
the runtime's rewrite replaces them); the code lives in ``engine/worlds/aio/model.py``. Delete with those modules."""

from wasmflow.engine.worlds.aio.model import (
    AioMessage,
    DataModel,
    Hlc,
    HlcClock,
    InlineSchema,
    Schema,
    Snapshot,
    from_message,
    to_message,
)

__all__ = [
    "AioMessage",
    "DataModel",
    "Hlc",
    "HlcClock",
    "InlineSchema",
    "Schema",
    "Snapshot",
    "from_message",
    "to_message",
]
