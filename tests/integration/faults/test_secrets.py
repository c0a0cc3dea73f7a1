"""Credentials never leak: a worker that pulls its module from the htpasswd registry and talks to the broker's
password listener, at debug level, says nothing of the passwords in its log, its metrics or its readiness answers,
and neither does one whose MQTT password is refused. The controller, given pull Secrets (one right, one wrong) and
an MQTT credentials Secret, says nothing of them in its logs, Events, statuses, metrics or the children it renders.

What is searched for: each password, and the encodings that carry it (HTTP basic ``user:password`` in base64,
the docker config's ``auth`` field is the same).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api, CustomObjectsApi, V1ObjectMeta, V1Secret
from prometheus_client import CollectorRegistry, generate_latest

from tests.components.engine import wat
from tests.integration.conftest import wait_until
from tests.integration.faults.workers import Collector, Publisher, WorkerProcess, pipeline_spec, publish, text_of
from tests.mqtt_env import BrokerEnv
from tests.services import AuthRegistry
from wasmflow.api.kinds import OperatorKind
from wasmflow.api.workerconfig import EndpointFiles, PinnedModule
from wasmflow.oci import Access, push_component
from wasmflow.oci.auth import Credentials
from wasmflow.oci.digests import sha256_digest
from wasmflow.operator.config import OperatorConfig

Workers = Callable[..., WorkerProcess]
Clients = list[Collector | Publisher]
ECHO = wat.operator("map", "(nop)")


def forms_of(*secrets: tuple[str, str]) -> set[str]:
    """Every (username, password) as the texts that would betray it: the password, and basic auth's base64."""
    found: set[str] = set()
    for username, password in secrets:
        found |= {password, base64.b64encode(f"{username}:{password}".encode()).decode()}
    return found


def leaks(text: str, forms: set[str]) -> list[str]:
    return sorted(form for form in forms if form in text)


def secret_files(directory: Path, registry: AuthRegistry, username: str, password: str) -> tuple[Path, EndpointFiles]:
    """A mounted ``.dockerconfigjson`` for the registry and username/password files for MQTT (mode 0400)."""
    docker = directory / "pull-secret" / ".dockerconfigjson"
    docker.parent.mkdir(parents=True)
    auth = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    docker.write_text(json.dumps({"auths": {registry.host: {"auth": auth}}}))
    mqtt = directory / "mqtt"
    mqtt.mkdir()
    (mqtt / "username").write_text(username)
    (mqtt / "password").write_text(password)
    for path in (docker, mqtt / "username", mqtt / "password"):
        path.chmod(0o400)
    return docker, EndpointFiles(username_file=str(mqtt / "username"), password_file=str(mqtt / "password"))


def authenticated_worker(
    workers: Workers, tmp_path: Path, registry: AuthRegistry, broker: BrokerEnv, prefix: str, mqtt_password: str
) -> WorkerProcess:
    ref = f"{registry.host}/secrets/{uuid.uuid4().hex[:10]}:1.0"
    access = Access(insecure=True, credentials=Credentials(registry.username, registry.password))
    asyncio.run(push_component(ref, ECHO, access=access))
    files = tmp_path / f"secrets-{uuid.uuid4().hex[:6]}"
    docker, endpoint = secret_files(files, registry, broker.username, mqtt_password)
    module = PinnedModule(
        reference=ref,
        digest=sha256_digest(ECHO),
        insecure=True,
        pull_secret_file=str(docker),
        operator=OperatorKind.MAP,
    )
    worker = workers(pipeline_spec(broker.auth_url, prefix), {"op": module}, endpoint_files={"broker": endpoint})
    worker.verbose = True
    return worker


def test_a_working_authenticated_worker_never_shows_a_credential(
    workers: Workers, tmp_path: Path, registry_auth: AuthRegistry, mqtt_broker: BrokerEnv, clients: Clients
) -> None:
    prefix = f"secrets-{uuid.uuid4().hex[:8]}"
    worker = authenticated_worker(workers, tmp_path, registry_auth, mqtt_broker, prefix, mqtt_broker.password)
    worker.start()
    wait_until(worker.ready, what="worker /readyz", timeout=120)
    collector = Collector(mqtt_broker, f"{prefix}/out", key=text_of)
    clients.append(collector)
    publish(mqtt_broker, f"{prefix}/in/x", b"hello")
    wait_until(lambda: collector.count() == 1, what="a message through the authenticated worker", timeout=30)

    forms = forms_of((registry_auth.username, registry_auth.password), (mqtt_broker.username, mqtt_broker.password))
    base = f"http://127.0.0.1:{worker.port}"
    answers = {path: httpx.get(base + path, timeout=5).text for path in ("/metrics", "/readyz", "/healthz")}
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    log = worker.output()
    assert "connected to" in log and "DEBUG" in log, log  # it did talk, and at debug level
    assert leaks(log, forms) == []
    for path, text in answers.items():
        assert leaks(text, forms) == [], path


def test_a_refused_mqtt_password_is_reported_without_being_shown(
    workers: Workers, tmp_path: Path, registry_auth: AuthRegistry, mqtt_broker: BrokerEnv
) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    worker = authenticated_worker(workers, tmp_path, registry_auth, mqtt_broker, "refused", wrong)
    worker.start()
    wait_until(lambda: "refused the connection" in worker.output(), what="the refusal in the log", timeout=120)
    readyz = httpx.get(f"http://127.0.0.1:{worker.port}/readyz", timeout=5)
    assert readyz.status_code == 503
    assert "check the username and password" in readyz.text
    forms = forms_of((registry_auth.username, registry_auth.password), (mqtt_broker.username, wrong))
    assert leaks(worker.output() + readyz.text, forms) == []


# ------------------------------------------------------------------------------------------------- controller


def dockerconfig_secret(name: str, registry: AuthRegistry, password: str) -> V1Secret:
    auth = base64.b64encode(f"{registry.username}:{password}".encode()).decode()
    config = json.dumps({"auths": {registry.host: {"auth": auth}}})
    return V1Secret(
        metadata=V1ObjectMeta(name=name),
        type="kubernetes.io/dockerconfigjson",
        string_data={".dockerconfigjson": config},
    )


def module_doc(name: str, reference: str, secret: str) -> dict[str, Any]:
    return {
        "apiVersion": "wasmflow.io/v1alpha1",
        "kind": "WasmModule",
        "metadata": {"name": name},
        "spec": {
            "source": {"oci": {"reference": reference, "insecure": True, "secretRef": {"name": secret}}},
            "operator": "map",
        },
    }


def condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in (body.get("status") or {}).get("conditions", []) if c["type"] == kind), {})


def test_the_controller_never_shows_registry_or_mqtt_credentials_in_logs_events_status_metrics_or_children(
    controller: OperatorConfig,
    controller_metrics: CollectorRegistry,
    kube_client: ApiClient,
    namespace: str,
    registry_auth: AuthRegistry,
    mqtt_broker: BrokerEnv,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    core, objects = CoreV1Api(kube_client), CustomObjectsApi(kube_client)
    wrong = f"wrong-{uuid.uuid4().hex}"
    core.create_namespaced_secret(namespace, dockerconfig_secret("pull", registry_auth, registry_auth.password))
    core.create_namespaced_secret(namespace, dockerconfig_secret("pull-wrong", registry_auth, wrong))
    mqtt = {"username": mqtt_broker.username, "password": mqtt_broker.password}
    # The Secret's owner allows its use as MQTT credentials for this broker (see test_mqtt_credentials.py).
    allowed = {"wasmflow.io/mqtt-brokers": mqtt_broker.auth_url}
    core.create_namespaced_secret(
        namespace, V1Secret(metadata=V1ObjectMeta(name="mqtt", annotations=allowed), string_data=mqtt)
    )
    ref = f"{registry_auth.host}/secrets/{uuid.uuid4().hex[:10]}:1.0"
    access = Access(insecure=True, credentials=Credentials(registry_auth.username, registry_auth.password))
    asyncio.run(push_component(ref, ECHO, access=access))

    def create(plural: str, doc: dict[str, Any]) -> None:
        objects.create_namespaced_custom_object("wasmflow.io", "v1alpha1", namespace, plural, doc)

    def get(plural: str, name: str) -> dict[str, Any]:
        return cast(
            dict[str, Any], objects.get_namespaced_custom_object("wasmflow.io", "v1alpha1", namespace, plural, name)
        )

    create("wasmmodules", module_doc("echo", ref, "pull"))
    create("wasmmodules", module_doc("refused", ref, "pull-wrong"))
    spec = pipeline_spec(mqtt_broker.auth_url, "secrets")
    spec["endpoints"]["broker"]["mqtt"]["credentialsSecretRef"] = {"name": "mqtt"}
    spec["nodes"][1]["module"] = "echo"
    create(
        "dataflows",
        {"apiVersion": "wasmflow.io/v1alpha1", "kind": "Dataflow", "metadata": {"name": "df"}, "spec": spec},
    )
    wait_until(
        lambda: condition(get("wasmmodules", "echo"), "Ready").get("status") == "True", what="echo Ready", timeout=120
    )
    wait_until(
        lambda: condition(get("wasmmodules", "refused"), "Stalled").get("reason") == "Unauthorized",
        what="refused Stalled",
        timeout=120,
    )
    wait_until(
        lambda: (get("dataflows", "df").get("status") or {}).get("configHash"), what="the Dataflow applied", timeout=120
    )

    forms = forms_of(
        (registry_auth.username, registry_auth.password),
        (registry_auth.username, wrong),
        (mqtt_broker.username, mqtt_broker.password),
    )
    events = core.list_namespaced_event(namespace).items
    assert any(e.reason == "Unauthorized" for e in events), [e.reason for e in events]  # the refusal was told ...
    said = {
        "logs": "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records),
        "events": "\n".join(f"{e.reason} {e.message}" for e in events),
        "status": json.dumps([get("wasmmodules", "echo"), get("wasmmodules", "refused"), get("dataflows", "df")]),
        "metrics": generate_latest(controller_metrics).decode(),
        "children": json.dumps(
            [
                core.read_namespaced_config_map("df-worker", namespace).data,
                AppsV1Api(kube_client).read_namespaced_deployment("df-worker", namespace).to_dict(),
            ],
            default=str,
        ),
    }
    assert "reconcile" in said["logs"].lower()  # ... and logged
    for where, text in said.items():
        assert leaks(text, forms) == [], where  # ... without a credential anywhere
