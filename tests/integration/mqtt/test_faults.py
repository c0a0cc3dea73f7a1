"""Broker restarts mid-stream: the source and the sink reconnect by themselves, and what the pipeline had not
acknowledged is delivered again (persistent session, QoS 1)."""

from __future__ import annotations

import asyncio

from tests.integration.mqtt.helpers import inbox_of, opened_sink, opened_source, raw_client, settings, unique_id
from tests.mqtt_env import BrokerEnv, restart_broker
from wasmflow.engine.message import Message


async def _restart(broker: BrokerEnv) -> None:
    await asyncio.to_thread(restart_broker, broker)


def test_the_source_reconnects_after_a_broker_restart_and_receives_again(own_broker: BrokerEnv, topic: str) -> None:
    async def scenario() -> tuple[bytes, bool, bytes]:
        async with opened_source(settings(own_broker.url), topic) as source, inbox_of(source) as inbox:
            with raw_client(own_broker) as publisher:
                publisher.publish(topic, b"before")
            before = await inbox.get()
            await before.ack()
            await _restart(own_broker)
            await source.wait_connected(15)
            reconnected = source.connected
            with raw_client(own_broker) as publisher:
                publisher.publish(topic, b"after")
            after = await inbox.get()
            await after.ack()
            return before.message.payload, reconnected, after.message.payload

    assert asyncio.run(scenario()) == (b"before", True, b"after")


def test_an_unacknowledged_message_is_delivered_again_after_a_broker_restart(own_broker: BrokerEnv, topic: str) -> None:
    persistent = settings(own_broker.url, client_id=unique_id("source"))

    async def scenario() -> tuple[bytes, bytes, bytes]:
        async with opened_source(persistent, topic) as source, inbox_of(source) as inbox:
            with raw_client(own_broker) as publisher:
                publisher.publish(topic, b"in flight")
            in_flight = await inbox.get()
            await _restart(own_broker)
            again = await inbox.get(timeout=15)
            # The old delivery finishing late must not acknowledge anything on the new connection ...
            await in_flight.ack()
            await again.ack()
            # ... and the redelivered one, acknowledged, does not come back a third time.
            with raw_client(own_broker) as publisher:
                publisher.publish(topic, b"marker")
            marker = await inbox.get()
            await marker.ack()
            return in_flight.message.payload, again.message.payload, marker.message.payload

    assert asyncio.run(scenario()) == (b"in flight", b"in flight", b"marker")


def test_the_sink_reconnects_after_a_broker_restart(own_broker: BrokerEnv, topic: str) -> None:
    async def scenario() -> None:
        async with opened_sink(settings(own_broker.url), topic) as sink:
            await sink.send(Message(b"before", topic))
            await _restart(own_broker)
            await sink.send(Message(b"after", topic))  # waits for the reconnect, then for the PUBACK

    client_id = unique_id("watcher")
    with raw_client(own_broker, client_id=client_id, persistent=True) as subscriber:
        subscriber.subscribe(topic)
    asyncio.run(scenario())
    with raw_client(own_broker, client_id=client_id, persistent=True) as subscriber:
        assert [subscriber.next().payload, subscriber.next().payload] == [b"before", b"after"]
