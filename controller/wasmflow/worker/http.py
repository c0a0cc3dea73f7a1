"""The worker's HTTP endpoint: /metrics for Prometheus, /healthz for the liveness probe, /readyz for readiness.

Liveness says the event loop answers and the graph has not failed: /healthz asks the loop to run a callback and
fails (503) when it does not within ``loop_timeout``, so a stuck loop gets the pod restarted; it also fails, with
the reason, once a node has failed for good (the worker is then on its way out with a non-zero exit). Readiness
says the modules are loaded and every connector is connected, with the reasons when not, so ``kubectl describe
pod`` shows what is missing.

Served from a thread by the standard library's WSGI server with prometheus-client's WSGI app for /metrics, as
prometheus-client's own ``start_wsgi_server`` does: that is already imported with prometheus-client, where an
asyncio web framework would add a fifth of a second to every worker start, and a thread keeps answering (and
can say the loop is stuck) when the loop cannot.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

_StartResponse = Callable[[str, list[tuple[str, str]]], Any]
_WsgiApp = Callable[[dict[str, Any], _StartResponse], Iterable[bytes]]


@dataclass(frozen=True)
class Readiness:
    """Whether the worker can take traffic, and if not, why (one reason per missing piece)."""

    ready: bool
    reasons: tuple[str, ...] = ()


def loop_answers(loop: asyncio.AbstractEventLoop, timeout: float) -> bool:
    """Whether ``loop`` runs a callback within ``timeout`` seconds (called from another thread)."""
    answered = threading.Event()
    try:
        loop.call_soon_threadsafe(answered.set)
    except RuntimeError:  # the loop is closed
        return False
    return answered.wait(timeout)


def _no_failure() -> str | None:
    return None


def build_app(
    registry: CollectorRegistry,
    readiness: Callable[[], Readiness],
    alive: Callable[[], bool],
    failure: Callable[[], str | None] = _no_failure,
) -> _WsgiApp:
    """The WSGI application serving the three endpoints (anything else is 404). ``failure()`` is why the worker
    failed for good, or None."""
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            body: Iterable[bytes] = metrics(environ, start_response)
            return body
        if path == "/healthz":
            failed = failure()
            if failed is not None:
                return _text(start_response, "503 Service Unavailable", f"failed: {failed}\n")
            if alive():
                return _text(start_response, "200 OK", "ok\n")
            return _text(start_response, "503 Service Unavailable", "the event loop does not answer\n")
        if path == "/readyz":
            state = readiness()
            if state.ready:
                return _text(start_response, "200 OK", "ready\n")
            reasons = "".join(f"- {r}\n" for r in state.reasons)
            return _text(start_response, "503 Service Unavailable", "not ready:\n" + reasons)
        return _text(start_response, "404 Not Found", f"no such endpoint: {path} (try /metrics, /healthz, /readyz)\n")

    return app


def _text(start_response: _StartResponse, status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]


class _Server(ThreadingMixIn, WSGIServer):
    """One thread per request, none of them keeping the process alive."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """No access log: probes would write one line every few seconds."""

    def log_message(self, format: str, *args: Any) -> None:
        return


class HttpServer:
    """The endpoint, serving from its own thread until ``close()``."""

    def __init__(self, app: _WsgiApp, host: str, port: int) -> None:
        self._server = make_server(host, port, app, _Server, _QuietHandler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="wasmflow-http", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving and free the port; idempotent."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()


def serve(
    registry: CollectorRegistry,
    readiness: Callable[[], Readiness],
    host: str,
    port: int,
    *,
    loop: asyncio.AbstractEventLoop,
    loop_timeout: float = 5.0,
    failure: Callable[[], str | None] = _no_failure,
) -> HttpServer:
    """Serve the endpoints for the worker running ``loop``; OSError when the port cannot be bound."""
    return HttpServer(build_app(registry, readiness, lambda: loop_answers(loop, loop_timeout), failure), host, port)
