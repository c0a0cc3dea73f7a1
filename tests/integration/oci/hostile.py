"""Small real HTTP(S) servers on loopback that behave as a hostile or broken registry would, for the tests of what the
registry client refuses: a reverse proxy in front of a real registry whose ``rule`` may answer a request itself
(a redirect, a hostile body, a lying digest, an endless token) instead of forwarding it, and the same server
without an upstream as "an internal service" that must never be reached.

Each server runs in a thread of its own (so the synchronous tests and the controller's event loop both reach it
as they would a registry), records what it was asked (method, path, whether an Authorization header came) and how
many body bytes it managed to send.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from tests.http_proxy import HOP_BY_HOP, read_body

__all__ = ["Answer", "Asked", "Server", "hostile_server"]

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Answer:
    """What the server answers itself: a status, headers, and a body (or ``stream`` bytes of filler)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stream: int = 0


@dataclass(frozen=True)
class Asked:
    method: str
    path: str
    authorization: bool


#: ``rule(method, path)``: an Answer to send instead of forwarding, or None to forward to the upstream.
Rule = Callable[[str, str], Answer | None]
#: ``rewrite(method, path, headers)``: edit the upstream's answer headers before they are sent on.
Rewrite = Callable[[str, str, dict[str, str]], None]


@dataclass
class Server:
    host: str
    scheme: str
    asked: list[Asked] = field(default_factory=list)
    bytes_sent: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def record(self, asked: Asked) -> None:
        with self._lock:
            self.asked.append(asked)

    def sent(self, count: int) -> None:
        with self._lock:
            self.bytes_sent += count


def _handler(server: list[Server], rule: Rule, upstream: httpx.Client | None, rewrite: Rewrite | None) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            state = server[0]
            body = read_body(self)
            state.record(Asked(self.command, self.path, "authorization" in {k.lower() for k in self.headers}))
            answer = rule(self.command, self.path)
            if answer is None and upstream is not None:
                answer = self._forwarded(body)
            if answer is None:
                answer = Answer(404)
            self.send_response(answer.status)
            for key, value in answer.headers.items():
                self.send_header(key, value)
            length = answer.stream or len(answer.body)
            if "content-length" not in {k.lower() for k in answer.headers}:
                self.send_header("Content-Length", str(length))
            self.end_headers()
            if self.command == "HEAD":
                return
            if answer.stream:
                self._stream(state, answer.stream)
            else:
                self.wfile.write(answer.body)
                state.sent(len(answer.body))

        def _forwarded(self, body: bytes | None) -> Answer:
            assert upstream is not None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            response = upstream.request(self.command, self.path, headers=headers, content=body)
            kept = {k: v for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP}
            if rewrite is not None:
                rewrite(self.command, self.path, kept)
            if self.command == "HEAD":
                kept["Content-Length"] = response.headers.get("content-length", "0")
            return Answer(response.status_code, kept, response.content)

        def _stream(self, state: Server, total: int) -> None:
            """Filler until ``total`` bytes or until the client hangs up (what it read is what we could send)."""
            chunk = b"x" * _CHUNK
            sent = 0
            try:
                while sent < total:
                    size = min(_CHUNK, total - sent)
                    self.wfile.write(chunk[:size])
                    sent += size
                    state.sent(size)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                self.close_connection = True

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815 - http.server's naming

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@contextmanager
def hostile_server(
    rule: Rule,
    *,
    upstream: str | None = None,
    upstream_ca: Path | None = None,
    tls: tuple[Path, Path] | None = None,
    rewrite: Rewrite | None = None,
) -> Iterator[Server]:
    """A server on loopback answering by ``rule``, forwarding the rest to ``upstream`` (a base URL) if given.

    ``tls`` is (certificate, key): HTTPS with the test CA's server certificate (valid for 127.0.0.1).
    """
    verify = ssl.create_default_context(cafile=str(upstream_ca)) if upstream_ca else True
    client = httpx.Client(base_url=upstream, verify=verify) if upstream else None
    holder: list[Server] = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(holder, rule, client, rewrite))
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    holder.append(Server(host=f"127.0.0.1:{httpd.server_address[1]}", scheme="https" if tls else "http"))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)
        if client is not None:
            client.close()
