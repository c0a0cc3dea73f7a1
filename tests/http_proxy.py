"""The forwarding core of the tests' loopback reverse proxies in front of a real registry: read a request, send it
upstream, copy the answer's headers, and serve a handler in a thread of its own. Each proxy keeps its own faults."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"})


def read_body(handler: BaseHTTPRequestHandler) -> bytes | None:
    length = int(handler.headers.get("content-length") or 0)
    return handler.rfile.read(length) if length else None


def forward(handler: BaseHTTPRequestHandler, upstream: str, body: bytes | None) -> httpx.Response:
    """The request ``handler`` is serving, sent to ``upstream`` (``http://host:port``) without hop-by-hop headers."""
    headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
    return httpx.request(
        handler.command, upstream + handler.path, headers=headers, content=body, follow_redirects=False
    )


def send_upstream_headers(handler: BaseHTTPRequestHandler, response: httpx.Response) -> None:
    """Status line and end-to-end headers of ``response``; the caller adds Content-Length and ends the headers."""
    handler.send_response(response.status_code)
    for key, value in response.headers.items():
        if key.lower() not in HOP_BY_HOP:
            handler.send_header(key, value)


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``host:port`` of ``handler`` served on loopback in a thread, shut down afterwards."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
