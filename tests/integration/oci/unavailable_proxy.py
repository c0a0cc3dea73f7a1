"""A small real HTTP reverse proxy in front of a real registry that answers 503 Service Unavailable (with a
distribution-style error body) to the first ``failing`` requests, or to all of them until ``heal()``: what a
registry behind a load balancer does while its backends restart. Every other request passes through unchanged.

It listens on loopback in a thread of its own, so the synchronous tests and the controller's event loop (in its
own thread) both reach it as they would a registry.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from tests.http_proxy import forward, read_body, send_upstream_headers, serving

_UNAVAILABLE = json.dumps(
    {"errors": [{"code": "UNAVAILABLE", "message": "service unavailable: backend restarting"}]}
).encode()


@dataclass
class Unavailable:
    """How many requests still get a 503 (``None``: every one until ``heal``), and what the proxy has seen."""

    upstream: str
    failing: int | None
    requests: int = 0
    refused: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_is_refused(self) -> bool:
        with self._lock:
            self.requests += 1
            refuse = self.failing is None or self.failing > 0
            if refuse:
                self.refused += 1
                if self.failing is not None:
                    self.failing -= 1
            return refuse

    def heal(self) -> None:
        """From now on every request reaches the registry."""
        with self._lock:
            self.failing = 0


def _handler(state: Unavailable) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            body = read_body(self)
            if state.next_is_refused():
                self.send_response(503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(_UNAVAILABLE)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(_UNAVAILABLE)
                return
            upstream = forward(self, state.upstream, body)
            send_upstream_headers(self, upstream)
            # HEAD: the upstream's Content-Length describes the body a GET would get, so pass it on as it is.
            self.send_header(
                "Content-Length",
                upstream.headers.get("content-length", "0") if self.command == "HEAD" else str(len(upstream.content)),
            )
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(upstream.content)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward  # noqa: N815 - http.server's naming

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@contextmanager
def unavailable_proxy(upstream: str, failing: int | None) -> Iterator[tuple[str, Unavailable]]:
    """``(host:port, state)`` of a proxy to ``upstream`` (``http://host:port``) refusing ``failing`` requests."""
    state = Unavailable(upstream, failing)
    with serving(_handler(state)) as address:
        yield address, state
