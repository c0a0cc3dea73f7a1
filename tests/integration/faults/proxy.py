"""A small real HTTP reverse proxy in front of a registry that cuts blob downloads short: it announces the whole
Content-Length, sends half the body and closes the connection (what a dying registry or a broken middlebox does).
Everything else passes through unchanged."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from tests.http_proxy import forward, read_body, send_upstream_headers, serving


@dataclass
class CutBlobs:
    """How many blob downloads to cut short (``None``: all of them), and how many were asked for."""

    upstream: str
    cut: int | None
    blob_requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_is_cut(self) -> bool:
        with self._lock:
            self.blob_requests += 1
            return self.cut is None or self.blob_requests <= self.cut


def _handler(state: CutBlobs) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            upstream = forward(self, state.upstream, read_body(self))
            cut = self.command == "GET" and "/blobs/sha256:" in self.path and upstream.status_code == 200
            cut = cut and state.next_is_cut()
            send_upstream_headers(self, upstream)
            self.send_header("Content-Length", str(len(upstream.content)))
            if cut:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(upstream.content[: len(upstream.content) // 2] if cut else upstream.content)
            if cut:
                self.wfile.flush()
                self.close_connection = True

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _forward  # noqa: N815 - http.server's naming

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@contextmanager
def cutting_proxy(upstream: str, cut: int | None) -> Iterator[tuple[str, CutBlobs]]:
    """``(host:port, state)`` of a proxy to ``upstream`` (``http://host:port``) cutting ``cut`` blob downloads."""
    state = CutBlobs(upstream, cut)
    with serving(_handler(state)) as address:
        yield address, state
