"""MQTT credentials go only where their Secret's owner allows (issue 16, case 10, MQTT part).

Before, a Dataflow could name any Secret of its namespace as ``credentialsSecretRef`` and any broker URL: the
controller mounted the Secret into a worker that logged in there. Now the Secret must carry the annotation
``wasmflow.io/mqtt-brokers`` listing the brokers it may be sent to, and clear text (``mqtt://``) to a host other
than loopback needs that very ``mqtt://`` URL listed; otherwise the Dataflow is Stalled, naming the Secret and what
is missing, and nothing is rendered. Annotating the Secret heals the Dataflow without an edit.
"""

from __future__ import annotations

import time
from typing import Any

from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api, V1ObjectMeta, V1Secret

from tests.fault_report import Report
from tests.integration.conftest import wait_until
from tests.integration.faults.test_controller_faults import converged, create, dataflow, ready_module
from tests.integration.faults.test_foreign_children import stalled
from tests.services import Registry
from wasmflow.operator.config import OperatorConfig
from wasmflow.operator.mqtt_credentials import BROKERS_ANNOTATION


def with_credentials(name: str, url: str, secret: str) -> dict[str, Any]:
    doc = dataflow(name)
    doc["spec"]["endpoints"]["plant"]["mqtt"] = {"url": url, "credentialsSecretRef": {"name": secret}}
    return doc


def basic_auth_secret(name: str, annotations: dict[str, str] | None = None) -> V1Secret:
    return V1Secret(
        metadata=V1ObjectMeta(name=name, annotations=annotations),
        type="kubernetes.io/basic-auth",
        string_data={"username": "plant", "password": "s3cret"},
    )


def rendered(kube_client: ApiClient, namespace: str, name: str) -> bool:
    selector = f"wasmflow.io/dataflow={name}"
    return bool(CoreV1Api(kube_client).list_namespaced_config_map(namespace, label_selector=selector).items)


def test_credentials_need_the_secret_owners_opt_in_for_that_broker(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry: Registry, report: Report
) -> None:
    core = CoreV1Api(kube_client)
    core.create_namespaced_secret(namespace, basic_auth_secret("plant-login"))
    core.create_namespaced_secret(
        namespace, basic_auth_secret("cloud-login", {BROKERS_ANNOTATION: "mqtts://cloud.example:8883"})
    )
    ready_module(kube_client, namespace, registry)
    create(kube_client, namespace, with_credentials("unmarked", "mqtts://broker.plant:8883", "plant-login"))
    create(kube_client, namespace, with_credentials("elsewhere", "mqtts://collector.evil:8883", "cloud-login"))
    create(kube_client, namespace, with_credentials("allowed", "mqtts://cloud.example", "cloud-login"))

    unmarked = wait_until(lambda: stalled(kube_client, namespace, "unmarked"), what="unmarked Stalled", timeout=60)
    assert unmarked["reason"] == "CredentialsNotAllowed"
    assert "Secret plant-login does not allow its use as MQTT credentials" in unmarked["message"]
    assert BROKERS_ANNOTATION in unmarked["message"]
    elsewhere = wait_until(lambda: stalled(kube_client, namespace, "elsewhere"), what="elsewhere Stalled", timeout=60)
    assert elsewhere["reason"] == "CredentialsNotAllowed"
    assert "Secret cloud-login may be sent only to" in elsewhere["message"]
    assert "not to mqtts://collector.evil:8883" in elsewhere["message"]
    wait_until(lambda: converged(kube_client, namespace, "allowed"), what="allowed applied", timeout=60)
    assert not rendered(kube_client, namespace, "unmarked")
    assert not rendered(kube_client, namespace, "elsewhere")
    volumes = AppsV1Api(kube_client).read_namespaced_deployment("allowed-worker", namespace).spec.template.spec.volumes
    assert "cloud-login" in [v.secret.secret_name for v in volumes if v.secret]

    # The owner opts in: the Dataflow heals without being edited.
    core.patch_namespaced_secret(
        "plant-login", namespace, {"metadata": {"annotations": {BROKERS_ANNOTATION: "mqtts://broker.plant:8883"}}}
    )
    opted_in = time.monotonic()
    wait_until(lambda: converged(kube_client, namespace, "unmarked"), what="unmarked applied", timeout=90)
    report(refused=2, allowed=1, healed_after_opt_in_s=time.monotonic() - opted_in)


def test_credentials_in_clear_text_to_a_remote_broker_need_an_explicit_listing(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry: Registry, report: Report
) -> None:
    core = CoreV1Api(kube_client)
    core.create_namespaced_secret(
        namespace, basic_auth_secret("tls-only", {BROKERS_ANNOTATION: "mqtts://broker.plant:1883, mqtts://127.0.0.1"})
    )
    core.create_namespaced_secret(
        namespace, basic_auth_secret("clear-ok", {BROKERS_ANNOTATION: "mqtt://broker.plant:1883"})
    )
    ready_module(kube_client, namespace, registry)
    create(kube_client, namespace, with_credentials("clear", "mqtt://broker.plant:1883", "tls-only"))
    create(kube_client, namespace, with_credentials("consented", "mqtt://broker.plant:1883", "clear-ok"))
    create(kube_client, namespace, with_credentials("loopback", "mqtt://127.0.0.1:8883", "tls-only"))

    clear = wait_until(lambda: stalled(kube_client, namespace, "clear"), what="clear Stalled", timeout=60)
    assert clear["reason"] == "InsecureCredentials"
    assert "the credentials of Secret tls-only would cross the network in clear text" in clear["message"]
    wait_until(lambda: converged(kube_client, namespace, "consented"), what="consented applied", timeout=60)
    wait_until(lambda: converged(kube_client, namespace, "loopback"), what="loopback applied", timeout=60)
    assert not rendered(kube_client, namespace, "clear")
    report(clear_text_refused=1, clear_text_consented=1, loopback_allowed=1)
