"""The worker's HTTP endpoints, served for real on a loopback port."""

from __future__ import annotations

import asyncio
import socket

import httpx
from prometheus_client import CollectorRegistry, Counter

from wasmflow.worker.http import Readiness, build_app, serve


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get_all(readiness: Readiness, registry: CollectorRegistry) -> dict[str, httpx.Response]:
    async def scenario() -> dict[str, httpx.Response]:
        port = _free_port()
        runner = await serve(build_app(registry, lambda: readiness), "127.0.0.1", port)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                return {path: await client.get(path) for path in ("/healthz", "/readyz", "/metrics")}
        finally:
            await runner.cleanup()

    return asyncio.run(scenario())


def test_healthz_answers_ok() -> None:
    responses = _get_all(Readiness(ready=True), CollectorRegistry())
    assert responses["/healthz"].status_code == 200


def test_readyz_is_503_with_every_reason_when_not_ready() -> None:
    responses = _get_all(
        Readiness(False, ("module to-celsius not loaded", "mqtt plant not connected")), CollectorRegistry()
    )
    assert responses["/readyz"].status_code == 503
    assert "module to-celsius not loaded" in responses["/readyz"].text
    assert "mqtt plant not connected" in responses["/readyz"].text


def test_readyz_is_200_when_ready() -> None:
    assert _get_all(Readiness(ready=True), CollectorRegistry())["/readyz"].status_code == 200


def test_metrics_serves_the_injected_registry() -> None:
    registry = CollectorRegistry()
    Counter("wasmflow_test_things", "things", registry=registry).inc(3)
    body = _get_all(Readiness(ready=True), registry)["/metrics"].text
    assert "wasmflow_test_things_total 3.0" in body
