"""The MQTT sink: what it publishes, QoS 1 sends that return only after the broker's PUBACK, QoS 0."""

from __future__ import annotations

import asyncio
import os
import signal

from tests.integration.mqtt.helpers import inbox_of, opened_sink, opened_source, properties_of, raw_client, settings
from tests.mqtt_env import BrokerEnv
from wasmflow.engine.message import Message


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
