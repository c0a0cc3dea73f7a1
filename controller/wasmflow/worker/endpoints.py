"""The MQTT settings of one endpoint and role, shared by both workers (worker/main.py and worker/aio.py), so that
neither imports the other."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from wasmflow.api.dataflow import Endpoint
from wasmflow.api.workerconfig import EndpointFiles
from wasmflow.connectors.mqtt import MqttSettings


def endpoint_settings(
    endpoint: Endpoint,
    files: EndpointFiles | None,
    namespace: str,
    dataflow: str,
    role: str,
    *,
    max_message_size: int | None = None,
) -> MqttSettings:
    """One MQTT client per endpoint and role; its id names the Dataflow, the role and the pod (both workers use it).
    Sources are given the Dataflow's ``spec.limits.maxMessageSize``."""
    mqtt = endpoint.mqtt
    host = os.environ.get("HOSTNAME") or socket.gethostname()
    prefix = mqtt.client_id_prefix or "wasmflow"
    return MqttSettings.from_url(
        mqtt.url,
        qos=mqtt.qos,
        shared_group=mqtt.shared_subscription_group,
        client_id=f"{prefix}-{namespace}-{dataflow}-{role}-{host}"[:128],
        ca_file=Path(files.ca_file) if files and files.ca_file else None,
        cert_file=Path(files.cert_file) if files and files.cert_file else None,
        key_file=Path(files.key_file) if files and files.key_file else None,
        username_file=Path(files.username_file) if files and files.username_file else None,
        password_file=Path(files.password_file) if files and files.password_file else None,
        max_message_size=max_message_size,
    )
