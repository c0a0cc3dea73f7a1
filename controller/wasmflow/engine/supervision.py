"""Supervision of a running graph's tasks: the first task that fails stops the whole run, loudly.

A graph runs as long-lived asyncio tasks (one per node, one per source, window tickers, a sink's sends). A task
that dies unobserved halts the graph for good: its queue fills, its producers wait on it forever, the sources stop
reading, and nothing says why. So every task runs under a ``Supervisor``; when one fails, the supervisor logs one
line naming the node and what it was doing, and ``Supervisor.guard`` raises that failure in the graph's ``run()``,
which cancels the rest and returns. The worker then reports it (``/healthz`` and ``/readyz`` 503 with the reason)
and exits non-zero, so Kubernetes restarts it and the broker redelivers what was not acknowledged.

Only failures that retrying cannot fix get here: an ``OperatorFailure`` fails its one message (the error policy),
and a sink waits through a broker outage and resends after the reconnect (connectors/mqtt.py). What is left is a
broker refusing a message, a PUBACK that never comes on a live connection, a dead-letter publish that fails, a
state store that errs, or a bug.

The runtime (engine/runtime.py) runs every graph under it, whatever its front-end, so all fail the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

from wasmflow.errors import EngineError, WasmflowError

log = logging.getLogger(__name__)

T = TypeVar("T")


class NodeError(EngineError):
    """A node of a running graph failed for a reason its error policy does not cover: the graph stops.

    ``node`` names the node, ``doing`` what it was doing (a phrase: "sending a message to its sink"), and the
    original error is chained as ``__cause__``.
    """

    def __init__(self, node: str, doing: str, cause: BaseException) -> None:
        self.node = node
        self.doing = doing
        self.cause = cause
        detail = str(cause) or type(cause).__name__
        super().__init__(f"node {node!r} failed while {doing}: {detail}")


class Supervisor:
    """Owns a graph's tasks; remembers the first failure and makes ``guard`` raise it.

    Cheap on the message path: a task is watched through its done-callback, which runs once when it ends.
    """

    def __init__(self) -> None:
        self._tasks: dict[asyncio.Task[Any], tuple[str, str]] = {}
        self.failure: NodeError | None = None
        self._failed = asyncio.Event()

    def spawn(self, coroutine: Coroutine[Any, Any, None], *, node: str, doing: str) -> asyncio.Task[None]:
        """Run ``coroutine`` as a supervised task of ``node``; an exception it ends with fails the graph."""
        task = asyncio.create_task(coroutine, name=f"{node}: {doing}")
        self._tasks[task] = (node, doing)
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Task[Any]) -> None:
        node, doing = self._tasks.pop(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self.fail(error if isinstance(error, NodeError) else NodeError(node, doing, error))

    def fail(self, failure: NodeError) -> None:
        """Record ``failure`` (the first one wins; later ones are consequences and only logged at debug level)."""
        if self.failure is not None:
            log.debug("after the first failure: %s", failure)
            return
        self.failure = failure
        # A traceback only for what is not one of ours (a bug); a broker's refusal says all in its message.
        bug = not isinstance(failure.cause, WasmflowError)
        log.error("%s: the graph stops", failure, exc_info=failure.cause if bug else None)
        self._failed.set()

    async def guard(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable``; if a supervised task fails first, cancel it and raise that failure instead."""
        if self.failure is not None:
            raise self.failure
        main = asyncio.ensure_future(awaitable)
        failed = asyncio.create_task(self._failed.wait())
        try:
            await asyncio.wait({main, failed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            failed.cancel()
            if not main.done():
                main.cancel()
                await asyncio.gather(main, return_exceptions=True)
        if self.failure is not None:
            raise self.failure
        return main.result()

    async def close(self) -> None:
        """Cancel every task still running and wait for them to end."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
