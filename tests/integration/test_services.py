"""The test services are the real ones: a CNCF distribution registry and a mosquitto MQTT v5 broker.

These are deliberately raw (httpx, paho) so they prove the services themselves, independent of wasmflow's clients.
"""

from __future__ import annotations

import hashlib
import queue
import uuid

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.services import AuthRegistry, BrokerEnv, Registry


def _push_and_pull_blob(base: str, auth: httpx.Auth | None) -> bytes:
    data = uuid.uuid4().bytes * 64
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    repo = f"wasmflow-test/{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=base, auth=auth, timeout=10) as client:
        start = client.post(f"/v2/{repo}/blobs/uploads/")
        assert start.status_code == 202, start.text
        # The Location keeps the upload state in its query: add the digest to it, don't replace it.
        upload = client.put(
            httpx.URL(start.headers["location"]).copy_merge_params({"digest": digest}),
            content=data,
            headers={"content-type": "application/octet-stream"},
        )
        assert upload.status_code == 201, upload.text
        fetched = client.get(f"/v2/{repo}/blobs/{digest}", follow_redirects=True)
        assert fetched.status_code == 200
        assert fetched.headers["docker-content-digest"] == digest
        return fetched.content + data


def test_anonymous_registry_is_distribution_and_round_trips_a_blob(registry: Registry) -> None:
    version = httpx.get(f"{registry.url}/v2/", timeout=5)
    assert version.status_code == 200
    assert version.headers["docker-distribution-api-version"] == "registry/2.0"
    both = _push_and_pull_blob(registry.url, None)
    assert both[: len(both) // 2] == both[len(both) // 2 :]


def test_auth_registry_refuses_anonymous_requests(registry_auth: AuthRegistry) -> None:
    response = httpx.get(f"{registry_auth.url}/v2/", timeout=5)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].lower().startswith("basic")


def test_auth_registry_round_trips_a_blob_with_credentials(registry_auth: AuthRegistry) -> None:
    auth = httpx.BasicAuth(registry_auth.username, registry_auth.password)
    both = _push_and_pull_blob(registry_auth.url, auth)
    assert both[: len(both) // 2] == both[len(both) // 2 :]


def _client(broker: BrokerEnv, name: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
    client.connect(broker.host, broker.port)
    return client


def test_broker_speaks_mqtt_v5_and_splits_a_shared_subscription(mqtt_broker: BrokerEnv) -> None:
    topic = f"test/{uuid.uuid4().hex}"
    received: queue.Queue[tuple[str, bytes, str | None]] = queue.Queue()
    subscribers = []
    for index in range(2):
        name = f"sub-{index}"
        sub = _client(mqtt_broker, f"{name}-{uuid.uuid4().hex[:6]}")

        def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage, name: str = name) -> None:
            content_type = getattr(msg.properties, "ContentType", None)
            received.put((name, msg.payload, content_type))

        sub.on_message = on_message
        sub.loop_start()
        result, _mid = sub.subscribe(f"$share/group/{topic}", qos=1)
        assert result == mqtt.MQTT_ERR_SUCCESS
        subscribers.append(sub)
    # SUBACKs are asynchronous: publish only once both subscriptions are in place (a retained probe would be
    # delivered to both members, so probe with a per-subscriber topic instead).
    for sub in subscribers:
        probe_topic = f"{topic}/ready/{uuid.uuid4().hex}"
        probes: queue.Queue[bytes] = queue.Queue()
        sub.message_callback_add(probe_topic, lambda _c, _u, m, q=probes: q.put(m.payload))
        sub.subscribe(probe_topic, qos=1)
        pub = _client(mqtt_broker, f"probe-{uuid.uuid4().hex[:6]}")
        pub.loop_start()
        pub.publish(probe_topic, b"ready", qos=1).wait_for_publish(5)
        assert probes.get(timeout=5) == b"ready"
        pub.loop_stop()
        pub.disconnect()

    publisher = _client(mqtt_broker, f"pub-{uuid.uuid4().hex[:6]}")
    publisher.loop_start()
    props = Properties(PacketTypes.PUBLISH)
    props.ContentType = "application/json"
    count = 40
    for i in range(count):
        publisher.publish(topic, f'{{"n": {i}}}'.encode(), qos=1, properties=props).wait_for_publish(5)
    got = [received.get(timeout=10) for _ in range(count)]
    publisher.loop_stop()
    publisher.disconnect()
    for sub in subscribers:
        sub.loop_stop()
        sub.disconnect()

    assert sorted(payload for _n, payload, _ct in got) == sorted(f'{{"n": {i}}}'.encode() for i in range(count))
    assert {ct for _n, _p, ct in got} == {"application/json"}
    per_subscriber = {name: sum(1 for n, _p, _ct in got if n == name) for name in ("sub-0", "sub-1")}
    assert all(n > 0 for n in per_subscriber.values()), per_subscriber
    assert received.empty()
