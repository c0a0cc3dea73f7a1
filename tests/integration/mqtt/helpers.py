"""Helpers for the MQTT connector tests: raw paho clients that check our connector from the outside, connector
lifecycles as async context managers, and an inbox that waits for what a source yields."""

from __future__ import annotations

import asyncio
import queue
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.mqtt_env import BrokerEnv
from wasmflow.connectors.mqtt import MqttSettings, MqttSink, MqttSource
from wasmflow.engine.ports import Inbound


def settings(url: str, **fields: Any) -> MqttSettings:
    """Connector settings for the tests: reconnect quickly, so restart tests wait about a second."""
    fields.setdefault("reconnect_max_seconds", 2)
    return MqttSettings.from_url(url, **fields)


def v5_properties(packet_type: int) -> Any:
    """paho's Properties class is untyped: the one place that says so."""
    return Properties(packet_type)  # type: ignore[no-untyped-call]


def properties_of(message: mqtt.MQTTMessage) -> Any:
    return message.properties


def unique_id(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


class RawClient:
    """A plain paho MQTT v5 client: publishes and collects independently of wasmflow's connector."""

    def __init__(self, broker: BrokerEnv, *, client_id: str = "", persistent: bool = False) -> None:
        self.received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.on_message = lambda _c, _u, msg: self.received.put(msg)
        props = v5_properties(PacketTypes.CONNECT)
        if persistent:
            props.SessionExpiryInterval = 600
        self.client.connect(broker.host, broker.port, clean_start=not persistent, properties=props)
        self.client.loop_start()

    def subscribe(self, topic: str, qos: int = 1) -> None:
        subscribed: queue.Queue[bool] = queue.Queue()
        self.client.on_subscribe = lambda _c, _u, _m, codes, _p: subscribed.put(all(not c.is_failure for c in codes))
        self.client.subscribe(topic, qos=qos)
        assert subscribed.get(timeout=5), f"subscription to {topic} refused"

    def publish(self, topic: str, payload: bytes, qos: int = 1, properties: Properties | None = None) -> None:
        info = self.client.publish(topic, payload, qos=qos, properties=properties)
        info.wait_for_publish(5)
        assert info.is_published()

    def next(self, timeout: float = 5.0) -> mqtt.MQTTMessage:
        return self.received.get(timeout=timeout)

    def close(self) -> None:
        self.client.disconnect()  # first: it wakes the network thread, so loop_stop does not wait for select()
        self.client.loop_stop()


@contextmanager
def raw_client(broker: BrokerEnv, **kwargs: Any) -> Iterator[RawClient]:
    client = RawClient(broker, **kwargs)
    try:
        yield client
    finally:
        client.close()


@asynccontextmanager
async def opened_source(mqtt_settings: MqttSettings, topic: str, **kwargs: Any) -> AsyncIterator[MqttSource]:
    """A source connected and subscribed (messages published from now on reach it); closed afterwards."""
    source = MqttSource(mqtt_settings, topic, **kwargs)
    try:
        await source.wait_connected(10)
        yield source
    finally:
        await source.stop()
        source.close()


@asynccontextmanager
async def opened_sink(mqtt_settings: MqttSettings, topic: str) -> AsyncIterator[MqttSink]:
    sink = MqttSink(mqtt_settings, topic, timeout=10)
    try:
        await sink.wait_connected(10)
        yield sink
    finally:
        await sink.close()


class Inbox:
    """What a source yields, collected by a task of its own, so a test can wait for it with a timeout."""

    def __init__(self, source: MqttSource) -> None:
        self.items: asyncio.Queue[Inbound] = asyncio.Queue()
        self._task = asyncio.create_task(self._collect(source))

    async def _collect(self, source: MqttSource) -> None:
        async for inbound in source.messages():
            self.items.put_nowait(inbound)

    async def get(self, timeout: float = 5.0) -> Inbound:
        return await asyncio.wait_for(self.items.get(), timeout)

    async def nothing_within(self, seconds: float) -> bool:
        """True when nothing arrives for ``seconds`` (the only way to observe an absence)."""
        try:
            await asyncio.wait_for(self.items.get(), seconds)
        except TimeoutError:
            return True
        return False

    async def close(self) -> None:
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task


@asynccontextmanager
async def inbox_of(source: MqttSource) -> AsyncIterator[Inbox]:
    inbox = Inbox(source)
    try:
        yield inbox
    finally:
        await inbox.close()


async def split_between(inboxes: Sequence[Inbox], count: int, timeout: float = 5.0) -> list[list[Inbound]]:
    """The next ``count`` messages from several inboxes together, grouped by inbox, taken as they arrive."""
    got: list[list[Inbound]] = [[] for _ in inboxes]
    getters = {asyncio.ensure_future(inbox.items.get()): index for index, inbox in enumerate(inboxes)}
    try:
        while sum(map(len, got)) < count:
            done, _pending = await asyncio.wait(getters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                raise TimeoutError(f"{sum(map(len, got))} of {count} messages after {timeout:g}s")
            for getter in done:
                index = getters.pop(getter)
                got[index].append(getter.result())
                getters[asyncio.ensure_future(inboxes[index].items.get())] = index
    finally:
        for getter in getters:
            getter.cancel()
    return got
