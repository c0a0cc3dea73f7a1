"""How a worker runs its graph until SIGTERM or a failure, shared by the Dataflow worker and the AIO graph worker.

SIGTERM stops the sources and lets what is in flight reach its sinks (acknowledging it), then the worker exits 0.
A node that fails for good (engine/supervision.py: a refused message, a failed dead-letter publish, a state store
error, a bug) ends the graph at once; the worker then says so everywhere it can (the log line naming the node,
``/healthz`` 503 and ``/readyz`` 503 with the reason) and exits non-zero, so Kubernetes restarts it and the broker
redelivers what was not acknowledged. It keeps answering those 503s for ``FAILURE_LINGER_SECONDS`` while it closes
its connections, so a probe or a person looking sees why rather than a refused connection; SIGTERM cuts that short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from wasmflow.engine.supervision import NodeError

log = logging.getLogger("wasmflow.worker")

#: After a failure, how long the worker keeps answering 503 (with the reason) before it exits.
FAILURE_LINGER_SECONDS = 2.0


class Health:
    """Whether the worker's graph failed for good, and why (for /healthz and /readyz)."""

    def __init__(self) -> None:
        self.failure: str | None = None
        self._failed_at = 0.0

    def fail(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason
            self._failed_at = asyncio.get_running_loop().time()

    async def linger(self, stop: asyncio.Event, seconds: float = FAILURE_LINGER_SECONDS) -> None:
        """After a failure: keep the process (and its HTTP endpoint) up until ``seconds`` after it, or SIGTERM."""
        if self.failure is None:
            return
        remaining = self._failed_at + seconds - asyncio.get_running_loop().time()
        if remaining > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), remaining)


async def run_graph(
    run: Callable[[], Awaitable[None]], drain: Callable[[], Awaitable[None]], stop: asyncio.Event, health: Health
) -> None:
    """Run the graph until its sources end, or ``stop`` (SIGTERM: drain, then return); NodeError when a node
    failed for good (recorded in ``health`` first), whether before or during the drain."""
    running = asyncio.ensure_future(run())
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({running, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not running.done():
            log.info("stopping: draining in-flight messages")
            await drain()
        await running
    except NodeError as exc:
        health.fail(str(exc))
        log.error("the worker stops with exit code 1: %s", exc)
        raise
    finally:
        stopped.cancel()
        if not running.done():
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
