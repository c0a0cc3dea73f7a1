"""The MQTT sink: what it publishes, QoS 1 sends that return only after the broker's PUBACK, QoS 0, and a pipeline
keeping a bounded window of QoS 1 sends in flight."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable

import pytest

from tests.integration.mqtt.helpers import (
    inbox_of,
    opened_sink,
    opened_source,
    properties_of,
    raw_client,
    settings,
    unique_id,
)
from tests.mqtt_env import BrokerEnv
from wasmflow.api.dataflow import DataflowSpec
from wasmflow.api.frontends.dataflow import dataflow_graph
from wasmflow.engine.message import Message
from wasmflow.engine.runtime import Runtime


def test_the_sink_publishes_qos1_with_content_type_properties_and_source_time(
    mqtt_broker: BrokerEnv, topic: str
) -> None:
    async def scenario() -> None:
        async with opened_sink(settings(mqtt_broker.url), topic) as sink:
            await sink.send(Message(b"21.5", "ignored/topic", "text/plain", (("unit", "C"),), 1700000000999))

    with raw_client(mqtt_broker) as subscriber:
        subscriber.subscribe(topic)
        asyncio.run(scenario())
        received = subscriber.next()
    assert (received.topic, received.payload, received.qos) == (topic, b"21.5", 1)
    assert properties_of(received).ContentType == "text/plain"
    assert properties_of(received).UserProperty == [("unit", "C"), ("timestamp-ms", "1700000000999")]


def test_a_qos0_sink_delivers(mqtt_broker: BrokerEnv, topic: str) -> None:
    async def scenario() -> None:
        async with opened_sink(settings(mqtt_broker.url, qos=0), topic) as sink:
            for i in range(3):
                await sink.send(Message(b"%d" % i, topic))

    with raw_client(mqtt_broker) as subscriber:
        subscriber.subscribe(topic, qos=0)
        asyncio.run(scenario())
        assert [subscriber.next().payload for _ in range(3)] == [b"0", b"1", b"2"]


def test_a_message_survives_sink_broker_source_unchanged(mqtt_broker: BrokerEnv, topic: str) -> None:
    message = Message(b"\x00binary\xff", topic, "application/octet-stream", (("a", "1"), ("a", "2")), 1700000000000)

    async def scenario() -> Message:
        async with (
            opened_source(settings(mqtt_broker.url), topic) as source,
            inbox_of(source) as inbox,
            opened_sink(settings(mqtt_broker.url), topic) as sink,
        ):
            await sink.send(message)
            inbound = await inbox.get()
            await inbound.ack()
            return inbound.message

    assert asyncio.run(scenario()) == message


def test_a_qos1_send_returns_only_after_the_puback(own_broker: BrokerEnv, topic: str) -> None:
    """The broker is frozen (SIGSTOP) with the connection up: the PUBLISH is written, no PUBACK comes, send waits."""
    pid = int((own_broker.state_dir / "mosquitto.pid").read_text())

    async def scenario() -> tuple[bool, bool]:
        async with opened_sink(settings(own_broker.url), topic) as sink:
            os.kill(pid, signal.SIGSTOP)
            try:
                send = asyncio.create_task(sink.send(Message(b"acked?", topic)))
                done, _pending = await asyncio.wait({send}, timeout=0.5)
                waited_while_frozen = not done
            finally:
                os.kill(pid, signal.SIGCONT)
            await asyncio.wait_for(send, 10)
            return waited_while_frozen, send.done()

    with raw_client(own_broker) as subscriber:
        subscriber.subscribe(topic)
        assert asyncio.run(scenario()) == (True, True)
        assert subscriber.next().payload == b"acked?"


async def _until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.01)


def _source_to_sink(source_url: str, sink_url: str, topic: str) -> DataflowSpec:
    return DataflowSpec.model_validate(
        {
            "endpoints": {"in": {"mqtt": {"url": source_url}}, "out": {"mqtt": {"url": sink_url}}},
            "nodes": [
                {"name": "src", "type": "source", "endpoint": "in", "topic": f"{topic}/in"},
                {"name": "dst", "type": "sink", "endpoint": "out", "topic": f"{topic}/out"},
            ],
            "edges": [{"from": "src", "to": "dst"}],
        }
    )


def test_a_pipeline_keeps_a_bounded_window_of_qos1_sends_awaiting_their_pubacks(
    mqtt_broker: BrokerEnv, own_broker: BrokerEnv, topic: str
) -> None:
    """The sink's broker is frozen (SIGSTOP): the pipeline publishes exactly ``window`` of the 20 inputs without
    waiting for a PUBACK and no more, and acknowledges none of its inputs to their broker; thawed, each input is
    acknowledged and every output arrives, in order."""
    count, window = 20, 4
    pid = int((own_broker.state_dir / "mosquitto.pid").read_text())
    spec = _source_to_sink(mqtt_broker.url, own_broker.url, topic)

    async def scenario() -> tuple[tuple[int, int, int], int, int]:
        async with (
            opened_source(settings(mqtt_broker.url, client_id=unique_id("window-src")), f"{topic}/in") as source,
            opened_sink(settings(own_broker.url), f"{topic}/out") as sink,
        ):
            pipeline = Runtime(
                dataflow_graph(spec),
                operators={},
                sources={"src": source},
                sinks={"dst": sink},
                sink_window=window,
            )
            queued = pipeline.queues["dst"]
            peak = 0
            running = asyncio.create_task(pipeline.run())

            async def watch() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, sink.in_flight)
                    await asyncio.sleep(0.002)

            watcher = asyncio.create_task(watch())
            os.kill(pid, signal.SIGSTOP)
            try:
                with raw_client(mqtt_broker) as publisher:
                    for i in range(count):
                        await asyncio.to_thread(publisher.publish, f"{topic}/in", b"%d" % i)
                # Everything reached the pipeline; the sink is full: ``window`` sends out, one more taken and
                # waiting for room, the rest in its queue.
                await _until(
                    lambda: source.unacknowledged == count and sink.in_flight == window,
                    "the sink window to fill while the broker is frozen",
                )
                await _until(lambda: queued.qsize() == count - window - 1, "the rest of the inputs to queue up")
                frozen = (sink.in_flight, source.unacknowledged, queued.qsize())
            finally:
                os.kill(pid, signal.SIGCONT)
            await _until(lambda: source.unacknowledged == 0, "every input acknowledged once its PUBACK came")
            await pipeline.drain()
            await asyncio.wait_for(running, 10)
            watcher.cancel()
            return frozen, peak, pipeline.stats["dst"].emitted

    with raw_client(own_broker) as subscriber:
        subscriber.subscribe(f"{topic}/out")
        frozen, peak, emitted = asyncio.run(scenario())
        outputs = [subscriber.next().payload for _ in range(count)]
    assert frozen == (window, count, count - window - 1)
    assert peak == window
    assert emitted == count
    assert outputs == [b"%d" % i for i in range(count)]
