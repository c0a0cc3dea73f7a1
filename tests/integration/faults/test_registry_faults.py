"""Registry faults injected for real: a registry that is down while a module is pulled, and one whose stored blob
was altered or truncated on disk (the registry then serves it under its old digest, as a corrupted store or a
tampering middlebox would).

Nothing unverified runs: the worker refuses the bytes before compiling anything and exits saying why (its pod
restarts it), the WasmModule controller's status says DigestMismatch naming the blob; both heal once the registry
serves the right bytes again. The registries are this module's own, so stopping them disturbs no other test.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client
from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api, CustomObjectsApi

from tests.components.engine import wat
from tests.fault_report import Report
from tests.integration.conftest import wait_until
from tests.integration.faults.proxy import cutting_proxy
from tests.integration.faults.workers import Collector, Publisher, WorkerProcess, pipeline_spec, publish, text_of
from tests.mqtt_env import BrokerEnv
from tests.registry_env import RegistryEnv, start_registries, stop_registries
from wasmflow.api.kinds import OperatorKind
from wasmflow.api.workerconfig import PinnedModule
from wasmflow.oci import Access, push_component
from wasmflow.oci.digests import sha256_digest
from wasmflow.operator.config import OperatorConfig
from wasmflow.operator.wasmmodules import Result, reconcile

Workers = Callable[..., WorkerProcess]
Clients = list[Collector | Publisher]
#: A real component of a few hundred bytes: compiled in milliseconds, so each worker start here is quick.
ECHO = wat.operator("map", "(nop)")


@pytest.fixture(scope="module")
def own_registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryEnv]:
    env = start_registries(tmp_path_factory.mktemp("fault-registry"))
    try:
        yield env
    finally:
        stop_registries(env)


@pytest.fixture
def registries(own_registries: RegistryEnv) -> Iterator[RegistryEnv]:
    """The module's registries, running again after each test whatever the test did to them."""
    yield own_registries
    start_registries(own_registries.state_dir)


def pushed(env: RegistryEnv, data: bytes = ECHO) -> tuple[str, str]:
    """Push ``data`` to a fresh repository of the plain registry; (tagged reference, component digest)."""
    ref = f"{env.plain.host}/faults/{uuid.uuid4().hex[:10]}:1.0"
    asyncio.run(push_component(ref, data, access=Access(insecure=True)))
    return ref, sha256_digest(data)


def stored_blob(env: RegistryEnv, digest: str) -> Path:
    """Where distribution's filesystem driver keeps the blob ``digest`` of the plain registry."""
    hexpart = digest.removeprefix("sha256:")
    return (
        env.state_dir
        / "plain-data"
        / "docker"
        / "registry"
        / "v2"
        / "blobs"
        / "sha256"
        / hexpart[:2]
        / hexpart
        / "data"
    )


def flipped(data: bytes) -> bytes:
    """The same length, still WebAssembly by its magic, one byte in the middle different."""
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


def module_worker(workers: Workers, broker: BrokerEnv, ref: str, digest: str, prefix: str) -> WorkerProcess:
    module = PinnedModule(reference=ref, digest=digest, insecure=True, operator=OperatorKind.MAP)
    return workers(pipeline_spec(broker.url, prefix), {"op": module})


def runs_the_module(worker: WorkerProcess, broker: BrokerEnv, clients: Clients, prefix: str) -> bool:
    """The worker became ready and a message went through the pulled operator."""
    wait_until(worker.ready, what="worker /readyz", timeout=120)
    collector = Collector(broker, f"{prefix}/out", key=text_of)
    clients.append(collector)
    publish(broker, f"{prefix}/in/x", b"through the pulled module")
    wait_until(lambda: collector.count() >= 1, what="the message through the module", timeout=30)
    return collector.received() == ["through the pulled module"]


def refused(worker: WorkerProcess) -> str:
    """The worker exited with an error before it ever became ready; its output."""
    code = worker.wait(120)
    output = worker.output()
    assert code != 0, output
    assert "subscribed to" not in output, "the worker connected its sources with an unverified module"
    return output


@pytest.mark.parametrize(
    ("damage", "said"),
    [(flipped, "content has digest"), (lambda data: data[: len(data) // 2], "content has digest")],
    ids=["altered", "truncated"],
)
def test_a_worker_refuses_a_damaged_module_blob_and_runs_it_once_the_registry_serves_it_whole(
    registries: RegistryEnv,
    fault_broker: BrokerEnv,
    workers: Workers,
    clients: Clients,
    damage: Callable[[bytes], bytes],
    said: str,
) -> None:
    prefix = f"tamper-{uuid.uuid4().hex[:8]}"
    ref, digest = pushed(registries)
    blob = stored_blob(registries, digest)
    blob.write_bytes(damage(ECHO))
    worker = module_worker(workers, fault_broker, ref, digest, prefix)
    worker.start()
    output = refused(worker)
    assert said in output and digest in output, output
    # Nothing of the damaged bytes was kept: the next start pulls again rather than trusting a cache.
    assert [p for p in (worker.directory / "cache" / "blobs").rglob("*") if p.is_file()] == []

    blob.write_bytes(ECHO)
    worker.start()
    assert runs_the_module(worker, fault_broker, clients, prefix)


def test_a_worker_started_while_the_registry_is_down_says_so_and_runs_once_it_is_back(
    registries: RegistryEnv, fault_broker: BrokerEnv, workers: Workers, clients: Clients, report: Report
) -> None:
    prefix = f"down-{uuid.uuid4().hex[:8]}"
    ref, digest = pushed(registries)
    stop_registries(registries)
    worker = module_worker(workers, fault_broker, ref, digest, prefix)
    started = time.monotonic()
    worker.start()
    output = refused(worker)
    gave_up = time.monotonic() - started
    assert "cannot connect" in output and registries.plain.host in output, output

    start_registries(registries.state_dir)
    back = time.monotonic()
    worker.start()
    assert runs_the_module(worker, fault_broker, clients, prefix)
    report(worker_gave_up_after_s=gave_up, restart_to_first_output_s=time.monotonic() - back)


# ------------------------------------------------------------------------------------------------- controller


def module_body(reference: str) -> dict[str, Any]:
    return {
        "apiVersion": "wasmflow.io/v1alpha1",
        "kind": "WasmModule",
        "metadata": {"name": "op", "namespace": "faults", "generation": 1},
        "spec": {"source": {"oci": {"reference": reference, "insecure": True}}, "operator": "map"},
    }


def test_the_module_controller_reports_a_tampered_blob_as_digest_mismatch_and_heals_when_it_is_restored(
    registries: RegistryEnv, tmp_path: Path
) -> None:
    config = OperatorConfig(cache_dir=tmp_path / "controller-cache", metrics_port=0)
    ref, digest = pushed(registries)
    blob = stored_blob(registries, digest)
    blob.write_bytes(flipped(ECHO))

    outcome = asyncio.run(reconcile(client.ApiClient(), module_body(ref), config))
    conditions = {c["type"]: c for c in outcome.status["conditions"]}
    assert outcome.result is not Result.READY
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == ("False", "DigestMismatch")
    assert digest in conditions["Ready"]["message"]
    assert "artifact" not in outcome.status  # nothing unverified is ever offered to the Dataflows

    blob.write_bytes(ECHO)
    healed = asyncio.run(reconcile(client.ApiClient(), {**module_body(ref), "status": outcome.status}, config))
    assert healed.result is Result.READY
    assert healed.status["artifact"]["digest"] == digest


def test_through_the_controller_a_tampered_module_holds_its_dataflow_back_until_the_registry_is_repaired(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registries: RegistryEnv, report: Report
) -> None:
    """Status says DigestMismatch (and an Event says so); the Dataflow that uses the module gets no worker at
    all, so nothing unverified can run; restored, the module heals on its interval and the Dataflow is applied
    pinned to the verified digest."""
    objects = CustomObjectsApi(kube_client)
    ref, digest = pushed(registries)
    blob = stored_blob(registries, digest)
    blob.write_bytes(flipped(ECHO))
    body = module_body(ref)
    body["metadata"] = {"name": "op"}
    body["spec"]["interval"] = "2s"
    objects.create_namespaced_custom_object("wasmflow.io", "v1alpha1", namespace, "wasmmodules", body)
    spec = pipeline_spec("mqtt://mosquitto.plant:1883", "tampered")
    dataflow = {"apiVersion": "wasmflow.io/v1alpha1", "kind": "Dataflow", "metadata": {"name": "df"}, "spec": spec}
    objects.create_namespaced_custom_object("wasmflow.io", "v1alpha1", namespace, "dataflows", dataflow)

    def get(plural: str, name: str) -> dict[str, Any]:
        return cast(
            dict[str, Any], objects.get_namespaced_custom_object("wasmflow.io", "v1alpha1", namespace, plural, name)
        )

    def ready(plural: str, name: str) -> dict[str, Any]:
        conditions = (get(plural, name).get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == "Ready"), {})

    wait_until(lambda: ready("wasmmodules", "op").get("reason") == "DigestMismatch", what="DigestMismatch", timeout=60)
    assert digest in ready("wasmmodules", "op")["message"]
    assert "artifact" not in (get("wasmmodules", "op").get("status") or {})
    wait_until(lambda: ready("dataflows", "df").get("status") == "False", what="the Dataflow held back", timeout=60)
    assert AppsV1Api(kube_client).list_namespaced_deployment(namespace).items == []
    assert (
        CoreV1Api(kube_client).list_namespaced_config_map(namespace, label_selector="wasmflow.io/dataflow=df").items
        == []
    )
    events = CoreV1Api(kube_client).list_namespaced_event(namespace).items
    assert any(e.reason == "DigestMismatch" for e in events), [e.reason for e in events]

    repaired = time.monotonic()
    blob.write_bytes(ECHO)
    wait_until(lambda: ready("wasmmodules", "op").get("status") == "True", what="the module healed", timeout=60)
    healed = time.monotonic()
    wait_until(
        lambda: (get("dataflows", "df").get("status") or {}).get("configHash"), what="the Dataflow applied", timeout=60
    )
    config = CoreV1Api(kube_client).read_namespaced_config_map("df-worker", namespace).data or {}
    assert json.loads(config["config.json"])["modules"]["op"]["digest"] == digest
    report(module_healed_after_repair_s=healed - repaired, dataflow_applied_after_repair_s=time.monotonic() - repaired)


# ------------------------------------------------------------------------------------------------- cut transfers


def test_a_blob_cut_off_mid_transfer_is_retried_and_the_worker_runs_what_it_verified(
    registries: RegistryEnv, fault_broker: BrokerEnv, workers: Workers, clients: Clients
) -> None:
    prefix = f"cut-{uuid.uuid4().hex[:8]}"
    ref, digest = pushed(registries)
    with cutting_proxy(registries.plain.url, cut=2) as (host, proxy):
        worker = module_worker(workers, fault_broker, ref.replace(registries.plain.host, host), digest, prefix)
        worker.start()
        assert runs_the_module(worker, fault_broker, clients, prefix)
    assert proxy.blob_requests == 3  # two cut short, then one whole


def test_a_registry_that_always_cuts_the_blob_off_is_refused_saying_so(
    registries: RegistryEnv, fault_broker: BrokerEnv, workers: Workers
) -> None:
    ref, digest = pushed(registries)
    with cutting_proxy(registries.plain.url, cut=None) as (host, proxy):
        worker = module_worker(workers, fault_broker, ref.replace(registries.plain.host, host), digest, "never")
        worker.start()
        output = refused(worker)
    assert "broke the HTTP exchange" in output or "connection broken" in output, output
    assert proxy.blob_requests >= 2  # retried before giving up
    assert [p for p in (worker.directory / "cache" / "blobs").rglob("*") if p.is_file()] == []
