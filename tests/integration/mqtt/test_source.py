"""The MQTT source: what it yields, shared subscriptions, and at-least-once acknowledgement (QoS 1)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from paho.mqtt.packettypes import PacketTypes

from tests.integration.mqtt.helpers import (
    inbox_of,
    opened_source,
    raw_client,
    settings,
    split_between,
    unique_id,
    v5_properties,
)
from tests.mqtt_env import BrokerEnv
from wasmflow.engine.message import Message


def _props(content_type: str | None = None, *pairs: tuple[str, str]) -> Any:
    props = v5_properties(PacketTypes.PUBLISH)
    if content_type:
        props.ContentType = content_type
    if pairs:
        props.UserProperty = list(pairs)
    return props


def test_the_source_yields_payload_topic_content_type_properties_and_source_time(
    mqtt_broker: BrokerEnv, topic: str
) -> None:
    async def scenario() -> Message:
        async with opened_source(settings(mqtt_broker.url), f"{topic}/+") as source, inbox_of(source) as inbox:
            with raw_client(mqtt_broker) as publisher:
                props = _props("application/json", ("unit", "F"), ("timestamp-ms", "1700000000123"), ("unit", "K"))
                publisher.publish(f"{topic}/line-1", b'{"t": 71.6}', properties=props)
            inbound = await inbox.get()
            await inbound.ack()
            return inbound.message

    assert asyncio.run(scenario()) == Message(
        payload=b'{"t": 71.6}',
        topic=f"{topic}/line-1",
        content_type="application/json",
        properties=(("unit", "F"), ("unit", "K")),
        timestamp_ms=1700000000123,
    )


def test_without_a_timestamp_property_the_source_time_is_the_receive_time(mqtt_broker: BrokerEnv, topic: str) -> None:
    async def scenario() -> Message:
        async with opened_source(settings(mqtt_broker.url), topic) as source, inbox_of(source) as inbox:
            with raw_client(mqtt_broker) as publisher:
                publisher.publish(topic, b"x")
            return (await inbox.get()).message

    before = int(time.time() * 1000)
    message = asyncio.run(scenario())
    assert before <= message.timestamp_ms <= int(time.time() * 1000)
    assert message.content_type is None
    assert message.properties == ()


def test_a_qos0_source_receives_messages(mqtt_broker: BrokerEnv, topic: str) -> None:
    async def scenario() -> list[bytes]:
        async with opened_source(settings(mqtt_broker.url, qos=0), topic) as source, inbox_of(source) as inbox:
            with raw_client(mqtt_broker) as publisher:
                for i in range(3):
                    publisher.publish(topic, b"%d" % i, qos=0)
            return [(await inbox.get()).message.payload for _ in range(3)]

    assert asyncio.run(scenario()) == [b"0", b"1", b"2"]


def test_a_shared_subscription_gives_each_message_to_exactly_one_member_and_both_get_some(
    mqtt_broker: BrokerEnv, topic: str
) -> None:
    count = 60

    async def scenario() -> list[list[bytes]]:
        group = settings(mqtt_broker.url, shared_group=unique_id("group"))
        async with (
            opened_source(group, topic) as first,
            opened_source(group, topic) as second,
            inbox_of(first) as inbox_1,
            inbox_of(second) as inbox_2,
        ):
            assert first.subscription == f"$share/{group.shared_group}/{topic}"
            with raw_client(mqtt_broker) as publisher:
                for i in range(count):
                    publisher.publish(topic, b"%d" % i)
            split = await split_between([inbox_1, inbox_2], count)
            for inbound in split[0] + split[1]:
                await inbound.ack()
            assert await inbox_1.nothing_within(0.2) and inbox_2.items.empty(), "a message was delivered twice"
            return [[inbound.message.payload for inbound in member] for member in split]

    one, two = asyncio.run(scenario())
    assert sorted(one + two) == sorted(b"%d" % i for i in range(count))  # each exactly once
    assert one and two, (len(one), len(two))


def test_an_unacknowledged_message_is_delivered_again_to_the_next_session(mqtt_broker: BrokerEnv, topic: str) -> None:
    persistent = settings(mqtt_broker.url, client_id=unique_id("source"))

    async def scenario() -> tuple[Message, Message]:
        async with opened_source(persistent, topic) as source, inbox_of(source) as inbox:
            with raw_client(mqtt_broker) as publisher:
                publisher.publish(topic, b"must not be lost")
            first = (await inbox.get()).message  # not acknowledged: the worker "crashed"
        async with opened_source(persistent, topic) as source, inbox_of(source) as inbox:
            inbound = await inbox.get()
            await inbound.ack()
            return first, inbound.message

    first, again = asyncio.run(scenario())
    assert first.payload == again.payload == b"must not be lost"


def test_an_acknowledged_message_is_not_delivered_again(mqtt_broker: BrokerEnv, topic: str) -> None:
    persistent = settings(mqtt_broker.url, client_id=unique_id("source"))

    async def scenario() -> bytes:
        async with opened_source(persistent, topic) as source, inbox_of(source) as inbox:
            with raw_client(mqtt_broker) as publisher:
                publisher.publish(topic, b"done")
            await (await inbox.get()).ack()
        with raw_client(mqtt_broker) as publisher:
            publisher.publish(topic, b"next")  # queued for the persistent session while it is away
        async with opened_source(persistent, topic) as source, inbox_of(source) as inbox:
            return (await inbox.get()).message.payload

    assert asyncio.run(scenario()) == b"next"


def test_acknowledgements_go_out_in_arrival_order(mqtt_broker: BrokerEnv, topic: str) -> None:
    """Finishing 2 and 3 before 1 acknowledges nothing yet: all three come back to the next session."""
    persistent = settings(mqtt_broker.url, client_id=unique_id("source"))

    async def scenario() -> list[bytes]:
        async with opened_source(persistent, topic) as source, inbox_of(source) as inbox:
            with raw_client(mqtt_broker) as publisher:
                for payload in (b"1", b"2", b"3"):
                    publisher.publish(topic, payload)
            _first, second, third = [await inbox.get() for _ in range(3)]
            await third.ack()
            await second.ack()
            assert source.unacknowledged == 3
        async with opened_source(persistent, topic) as source, inbox_of(source) as inbox:
            again = [await inbox.get() for _ in range(3)]
            for inbound in reversed(again):
                await inbound.ack()
            assert source.unacknowledged == 0
            return [inbound.message.payload for inbound in again]

    assert asyncio.run(scenario()) == [b"1", b"2", b"3"]


def test_receive_maximum_bounds_what_the_pipeline_holds_unacknowledged(mqtt_broker: BrokerEnv, topic: str) -> None:
    """A slow pipeline leaves the rest with the broker; acknowledging lets the next ones come."""

    async def scenario() -> tuple[list[bytes], bool, list[bytes]]:
        bounded = settings(mqtt_broker.url, client_id=unique_id("source"), receive_maximum=4)
        async with opened_source(bounded, topic) as source, inbox_of(source) as inbox:
            with raw_client(mqtt_broker) as publisher:
                for i in range(8):
                    publisher.publish(topic, b"%d" % i)
            held = [await inbox.get() for _ in range(4)]
            stalled = await inbox.nothing_within(0.5)
            for inbound in held:
                await inbound.ack()
            rest = [await inbox.get() for _ in range(4)]
            for inbound in rest:
                await inbound.ack()
            return [i.message.payload for i in held], stalled, [i.message.payload for i in rest]

    held, stalled, rest = asyncio.run(scenario())
    assert held == [b"0", b"1", b"2", b"3"]
    assert stalled
    assert rest == [b"4", b"5", b"6", b"7"]


def test_a_source_is_connected_only_while_subscribed(mqtt_broker: BrokerEnv, topic: str) -> None:
    async def scenario() -> tuple[bool, bool]:
        async with opened_source(settings(mqtt_broker.url), topic) as source:
            during = source.connected
        return during, source.connected

    assert asyncio.run(scenario()) == (True, False)


def test_a_gone_group_members_unacknowledged_messages_wait_for_its_client_id(
    mqtt_broker: BrokerEnv, topic: str
) -> None:
    """mosquitto does not hand a departed shared-subscription member's in-flight messages to the others: they come
    back only when a client with the same id returns. So a worker's client id must survive its restarts."""
    group = unique_id("group")
    member_a = settings(mqtt_broker.url, client_id=unique_id("a"), shared_group=group)
    member_b = settings(mqtt_broker.url, client_id=unique_id("b"), shared_group=group)

    async def scenario() -> tuple[list[bytes], bool, list[bytes]]:
        async with opened_source(member_b, topic) as b, inbox_of(b) as inbox_b:
            async with opened_source(member_a, topic) as a, inbox_of(a) as inbox_a:
                with raw_client(mqtt_broker) as publisher:
                    for i in range(6):
                        publisher.publish(topic, b"%d" % i)
                held_by_a, taken_by_b = await split_between([inbox_a, inbox_b], 6)
                for inbound in taken_by_b:
                    await inbound.ack()
            # a left without acknowledging; b stays in the group and gets none of a's messages
            b_idle = await inbox_b.nothing_within(1.0)
        async with opened_source(member_a, topic) as a, inbox_of(a) as inbox_a:
            returned = [await inbox_a.get() for _ in held_by_a]
            for inbound in returned:
                await inbound.ack()
        return [i.message.payload for i in held_by_a], b_idle, [i.message.payload for i in returned]

    held, b_idle, returned = asyncio.run(scenario())
    assert held, "the shared subscription gave the first member nothing"
    assert b_idle
    assert returned == held
