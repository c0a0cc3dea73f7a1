"""MQTT figures on loopback with the real broker (mosquitto 2, started for this run): messages per second.

* ``broker ceiling``: raw paho, one publisher to one subscriber, no wasmflow: what the broker and paho can move on
  this machine. QoS 1 publishes with a window of 100 in flight (paho's default of 20 would measure paho).
* ours: wasmflow's ``MqttSink`` -> broker -> ``MqttSource``, no operators. The source acknowledges each QoS 1
  message when the test pipeline takes it, the sink's ``send`` returns after the broker's PUBACK (one message at a
  time, as the pipeline calls it), so the QoS 1 figure is bounded by one PUBACK round trip per message.
* QoS 1 with ``WINDOW`` sends in flight: the same connector driven by concurrent ``send`` calls, to show what a
  sink node that awaits several PUBACKs at once (acks stay in order: ``ack_order``) would gain.

Payloads are 256 B; each run moves up to ``COUNT`` messages and stops after ``MAX_SECONDS`` (the rate is then what
arrived in that time). Median and spread over ``RUNS`` runs after one warm-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from tests.mqtt_env import BrokerEnv

from bench import services
from bench.report import repeat
from wasmflow.connectors.mqtt import MqttSettings, MqttSink, MqttSource
from wasmflow.engine.message import Message

COUNT = 10_000
MAX_SECONDS = 3.0
RUNS = 3
WINDOW = 32
PAYLOAD = b"x" * 256


def _client(broker: BrokerEnv) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(100)
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def _close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def _raw_rate(broker: BrokerEnv, qos: int) -> float:
    """Messages per second from a paho publisher to a paho subscriber through the broker."""
    topic = f"bench/{uuid.uuid4().hex}"
    received = 0
    done = threading.Event()
    subscribed = threading.Event()

    def on_message(_c: mqtt.Client, _u: Any, _m: mqtt.MQTTMessage) -> None:
        nonlocal received
        received += 1
        if received == COUNT:
            done.set()

    subscriber = _client(broker)
    subscriber.on_message = on_message
    subscriber.on_subscribe = lambda *_args: subscribed.set()
    subscriber.subscribe(topic, qos=qos)
    publisher = _client(broker)
    try:
        if not subscribed.wait(10):
            raise RuntimeError("the benchmark subscriber was not acknowledged")
        start = time.perf_counter()
        deadline = start + MAX_SECONDS
        for _ in range(COUNT):
            publisher.publish(topic, PAYLOAD, qos=qos)
            if time.perf_counter() > deadline:
                break
        done.wait(max(0.0, deadline - time.perf_counter()))
        return received / (time.perf_counter() - start)
    finally:
        _close(publisher)
        _close(subscriber)


async def _connector_rate_async(broker: BrokerEnv, qos: int, in_flight: int) -> float:
    topic = f"bench/{uuid.uuid4().hex}"
    settings = MqttSettings.from_url(broker.url, qos=qos, receive_maximum=256)
    source = MqttSource(settings, topic)
    sink = MqttSink(settings, topic)
    try:
        await asyncio.gather(source.wait_connected(10), sink.wait_connected(10))
        received = 0
        all_in = asyncio.Event()

        async def consume() -> None:
            nonlocal received
            async for inbound in source.messages():
                await inbound.ack()
                received += 1
                if received == COUNT:
                    all_in.set()
                    return

        consumer = asyncio.create_task(consume())
        message = Message(PAYLOAD, topic, "application/octet-stream")
        start = time.perf_counter()
        deadline = start + MAX_SECONDS
        if in_flight == 1:
            for _ in range(COUNT):
                await sink.send(message)
                if time.perf_counter() > deadline:
                    break
        else:
            window = asyncio.Semaphore(in_flight)

            async def send_one() -> None:
                try:
                    await sink.send(message)
                finally:
                    window.release()

            sends = []
            for _ in range(COUNT):
                await window.acquire()
                sends.append(asyncio.create_task(send_one()))
                if time.perf_counter() > deadline:
                    break
            await asyncio.gather(*sends)
        with contextlib.suppress(TimeoutError):  # the rate is then what arrived in time
            await asyncio.wait_for(all_in.wait(), max(0.0, deadline - time.perf_counter()))
        elapsed = time.perf_counter() - start
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        return received / elapsed
    finally:
        await source.stop()
        source.close()
        await sink.close()


def _connector_rate(broker: BrokerEnv, qos: int, in_flight: int = 1) -> float:
    return asyncio.run(_connector_rate_async(broker, qos, in_flight))


def _figure(broker: BrokerEnv, qos: int) -> list[dict[str, Any]]:
    ceiling = repeat(lambda: _raw_rate(broker, qos), RUNS)
    ours = repeat(lambda: _connector_rate(broker, qos), RUNS)
    figures: list[dict[str, Any]] = [
        {
            "name": f"3. MQTT connector: sink -> broker -> source, QoS {qos}, 256 B",
            "unit": "msg/s",
            "ours": ours,
            "comparators": {"broker ceiling (paho pub -> sub, open loop)": ceiling},
            "note": "ratio below 1: slower than the ceiling"
            + ("; one PUBACK round trip per send" if qos else "; bounded hand-over, no acks"),
        },
    ]
    if qos:
        windowed = repeat(lambda: _connector_rate(broker, qos, in_flight=WINDOW), RUNS)
        figures.append(
            {
                "name": f"3. MQTT connector: sink -> broker -> source, QoS {qos}, 256 B, {WINDOW} sends in flight",
                "unit": "msg/s",
                "ours": windowed,
                "comparators": {"broker ceiling": ceiling, "one send at a time": ours},
                "note": "a sink node awaiting several PUBACKs at once (the pipeline sends one at a time)",
            }
        )
    return figures


def run() -> list[dict[str, Any]]:
    with services.broker() as broker:
        return _figure(broker, 0) + _figure(broker, 1)
