"""The test broker is a real MQTT v5 mosquitto, and it keeps persistent sessions across a restart (what the
connector's fault tests rely on). Raw paho only: this checks the environment, not wasmflow."""

from __future__ import annotations

from paho.mqtt.packettypes import PacketTypes

from tests.integration.mqtt.helpers import properties_of, raw_client, unique_id, v5_properties
from tests.mqtt_env import BrokerEnv, restart_broker


def test_a_qos1_message_with_v5_properties_round_trips_through_the_broker(mqtt_broker: BrokerEnv, topic: str) -> None:
    props = v5_properties(PacketTypes.PUBLISH)
    props.ContentType = "application/json"
    props.UserProperty = [("k", "v")]
    with raw_client(mqtt_broker) as subscriber, raw_client(mqtt_broker) as publisher:
        subscriber.subscribe(topic)
        publisher.publish(topic, b'{"t": 1}', qos=1, properties=props)
        received = subscriber.next()
    assert (received.topic, received.payload, received.qos) == (topic, b'{"t": 1}', 1)
    assert properties_of(received).ContentType == "application/json"
    assert properties_of(received).UserProperty == [("k", "v")]


def test_a_persistent_session_keeps_its_queued_messages_across_a_broker_restart(
    own_broker: BrokerEnv, topic: str
) -> None:
    client_id = unique_id("persistent")
    with raw_client(own_broker, client_id=client_id, persistent=True) as subscriber:
        subscriber.subscribe(topic)
    with raw_client(own_broker) as publisher:
        publisher.publish(topic, b"while you were away", qos=1)
    restart_broker(own_broker)
    with raw_client(own_broker, client_id=client_id, persistent=True) as subscriber:
        assert subscriber.next().payload == b"while you were away"
