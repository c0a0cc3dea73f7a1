"""The worker's HTTP endpoints, served for real on a loopback port."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter

from wasmflow.worker.http import HttpServer, Readiness, serve


@contextmanager
def _running_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in its own thread, as the worker's main loop is while the endpoint serves."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


@contextmanager
def _server(readiness: Readiness, registry: CollectorRegistry, loop: asyncio.AbstractEventLoop) -> Iterator[str]:
    server = serve(registry, lambda: readiness, "127.0.0.1", 0, loop=loop, loop_timeout=0.5)
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.close()


READY = Readiness(ready=True)


def _get(path: str, readiness: Readiness = READY, registry: CollectorRegistry | None = None) -> httpx.Response:
    with _running_loop() as loop, _server(readiness, registry or CollectorRegistry(), loop) as url:
        return httpx.get(url + path)


def test_healthz_answers_ok_while_the_loop_runs() -> None:
    response = _get("/healthz")
    assert response.status_code == 200
    assert response.text == "ok\n"


def test_healthz_is_503_when_the_loop_does_not_answer() -> None:
    with _running_loop() as loop, _server(Readiness(ready=True), CollectorRegistry(), loop) as url:
        release = threading.Event()
        loop.call_soon_threadsafe(release.wait)  # the loop is stuck in this callback until released
        try:
            response = httpx.get(url + "/healthz")
        finally:
            release.set()
    assert response.status_code == 503
    assert "event loop" in response.text


def test_readyz_is_503_with_every_reason_when_not_ready() -> None:
    response = _get("/readyz", Readiness(False, ("module to-celsius not loaded", "mqtt plant not connected")))
    assert response.status_code == 503
    assert "module to-celsius not loaded" in response.text
    assert "mqtt plant not connected" in response.text


def test_readyz_is_200_when_ready() -> None:
    assert _get("/readyz").status_code == 200


def test_metrics_serves_the_injected_registry() -> None:
    registry = CollectorRegistry()
    Counter("wasmflow_test_things", "things", registry=registry).inc(3)
    body = _get("/metrics", registry=registry).text
    assert "wasmflow_test_things_total 3.0" in body


def test_an_unknown_path_is_404_naming_the_endpoints() -> None:
    response = _get("/nope")
    assert response.status_code == 404
    assert "/readyz" in response.text


def test_close_frees_the_port() -> None:
    with _running_loop() as loop:
        server = serve(CollectorRegistry(), lambda: Readiness(ready=True), "127.0.0.1", 0, loop=loop)
        port = server.port
        server.close()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))


def test_a_taken_port_is_an_oserror_at_start() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            HttpServer(lambda environ, start_response: [], "127.0.0.1", taken.getsockname()[1])
