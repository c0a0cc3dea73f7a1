"""The worker's HTTP endpoint: /metrics for Prometheus, /healthz for the liveness probe, /readyz for readiness.

Liveness only says the event loop answers (a stuck loop fails it, so the kubelet restarts the pod); readiness says
the modules are loaded and every connector is connected, with the reasons when not, so ``kubectl describe pod``
shows what is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler


@dataclass(frozen=True)
class Readiness:
    """Whether the worker can take traffic, and if not, why (one reason per missing piece)."""

    ready: bool
    reasons: tuple[str, ...] = ()


def build_app(registry: CollectorRegistry, readiness: Callable[[], Readiness]) -> web.Application:
    """The aiohttp application serving the three endpoints."""

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_request: web.Request) -> web.Response:
        state = readiness()
        if state.ready:
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready:\n" + "".join(f"- {r}\n" for r in state.reasons))

    app = web.Application()
    app.router.add_get("/metrics", make_aiohttp_handler(registry))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start serving in the running loop; the caller stops it with ``await runner.cleanup()``."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
