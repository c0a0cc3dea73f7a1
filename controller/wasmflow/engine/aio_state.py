"""Re-exports for the modules that still import from here (engine/aio_pipeline.py, worker/aio.py, cli/aio_run.py:
the runtime's rewrite replaces them); the code lives in ``engine/worlds/aio/state.py``. Delete with those modules."""

from wasmflow.engine.worlds.aio.state import (
    FencingRefused,
    MemoryStateStore,
    SetCondition,
    StateLimitExceeded,
    StateRefused,
    StateStore,
    StateStoreError,
    StateStoreTimeout,
    StateUsage,
)

__all__ = [
    "FencingRefused",
    "MemoryStateStore",
    "SetCondition",
    "StateLimitExceeded",
    "StateRefused",
    "StateStore",
    "StateStoreError",
    "StateStoreTimeout",
    "StateUsage",
]
