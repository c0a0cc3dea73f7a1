"""The WasmModule controller on a real API server with real registries: Ready, each Stalled reason, healing.

Components are pushed with ``wasmflow push`` as a user would (or, for what the CLI rightly refuses, with the OCI
client directly); the controller runs in the test process (the ``controller`` fixture) and watches one namespace.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient, CoreV1Api, CustomObjectsApi, V1ConfigMap, V1ObjectMeta, V1Secret
from prometheus_client import CollectorRegistry

from tests.components.engine.wat import operator
from tests.integration.conftest import wait_until
from tests.integration.oci.storage import flipped, stored_blob, unique
from tests.integration.oci.unavailable_proxy import unavailable_proxy
from tests.registry_env import RegistryEnv, TlsRegistry, start_registries, stop_registries
from tests.services import HACK, AuthRegistry, KubeEnv, Registry
from wasmflow.oci import Access, push_component
from wasmflow.oci import mediatypes as mt
from wasmflow.oci.digests import sha256_digest
from wasmflow.oci.manifest import Descriptor, Manifest, serialize_manifest
from wasmflow.oci.reference import parse_reference
from wasmflow.operator.config import OperatorConfig

WASMFLOW = str(Path(sys.executable).parent / "wasmflow")
GROUP, VERSION, PLURAL = "wasmflow.io", "v1alpha1", "wasmmodules"


# ------------------------------------------------------------------------------------------------- helpers


@cache
def kubectl_path() -> str:
    result = subprocess.run(
        [str(HACK / "build-kube.sh"), "--print-path", "kubectl"], capture_output=True, text=True, check=True
    )
    return result.stdout.strip().splitlines()[-1]


def kubectl(kube: KubeEnv, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl_path(), "--kubeconfig", str(kube.kubeconfig), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def wasm_file(tmp_path: Path, kind: str = "map", body: str = "") -> Path:
    path = tmp_path / f"{kind}-{uuid.uuid4().hex[:6]}.wasm"
    path.write_bytes(operator(kind, body=body))
    return path


def new_ref(host: str, tag: str = "1.0") -> str:
    return f"{host}/controller-tests/{uuid.uuid4().hex[:10]}:{tag}"


def wasmflow_push(path: Path, ref: str, *args: str, stdin: str | None = None) -> str:
    """``wasmflow push`` as a script runs it: the manifest digest is the whole of stdout."""
    result = subprocess.run(
        [WASMFLOW, "push", str(path), ref, "--insecure", *args],
        capture_output=True,
        text=True,
        input=stdin,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def create_module(
    kube_client: ApiClient, namespace: str, name: str, source: dict[str, Any], kind: str = "map", **spec: Any
) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "WasmModule",
        "metadata": {"name": name},
        "spec": {"source": source, "operator": kind, **spec},
    }
    CustomObjectsApi(kube_client).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)


def oci(reference: str, **fields: Any) -> dict[str, Any]:
    return {"oci": {"reference": reference, "insecure": True, **fields}}


def get_module(kube_client: ApiClient, namespace: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = CustomObjectsApi(kube_client).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return result


def condition(body: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in (body.get("status") or {}).get("conditions", []) if c["type"] == type_), None)


def wait_for_condition(
    kube_client: ApiClient, namespace: str, name: str, type_: str, status: str = "True", timeout: float = 90
) -> dict[str, Any]:
    """The module once ``type_`` has ``status`` for its current generation."""

    def check() -> dict[str, Any] | None:
        body = get_module(kube_client, namespace, name)
        found = condition(body, type_)
        current = (body.get("status") or {}).get("observedGeneration") == body["metadata"]["generation"]
        return body if found and found["status"] == status and current else None

    result: dict[str, Any] = wait_until(check, what=f"WasmModule {name} {type_}={status}", timeout=timeout)
    return result


def events(kube_client: ApiClient, namespace: str, name: str) -> list[Any]:
    return list(
        CoreV1Api(kube_client).list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
    )


def event_with(kube_client: ApiClient, namespace: str, name: str, reason: str) -> Any:
    return wait_until(
        lambda: next((e for e in events(kube_client, namespace, name) if e.reason == reason), None),
        what=f"an Event {reason} for {name}",
    )


def docker_config_secret(
    kube_client: ApiClient, namespace: str, name: str, host: str, user: str, password: str
) -> None:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    config = json.dumps({"auths": {host: {"username": user, "password": password, "auth": auth}}})
    CoreV1Api(kube_client).create_namespaced_secret(
        namespace,
        V1Secret(
            metadata=V1ObjectMeta(name=name),
            type="kubernetes.io/dockerconfigjson",
            string_data={".dockerconfigjson": config},
        ),
    )


def everything_said_about(kube_client: ApiClient, namespace: str, name: str) -> str:
    """The module's status and all its Events, as text: where a secret must never appear."""
    body = get_module(kube_client, namespace, name)
    said = [json.dumps(body.get("status") or {})]
    said += [f"{e.reason} {e.message}" for e in events(kube_client, namespace, name)]
    return "\n".join(said)


def push_raw(ref: str, config_type: str, layer_type: str, layer: bytes) -> None:
    """An artifact as another tool would push it (wasmflow push refuses what is not a component)."""
    parsed = parse_reference(ref)

    async def go() -> None:
        async with Access(insecure=True).client(parsed.registry) as client:
            config = b"{}"
            await client.upload_blob(parsed, config)
            digest = await client.upload_blob(parsed, layer)
            manifest = Manifest(
                media_type=mt.OCI_MANIFEST,
                config=Descriptor(media_type=config_type, digest=sha256_digest(config), size=len(config)),
                layers=(Descriptor(media_type=layer_type, digest=digest, size=len(layer)),),
            )
            await client.put_manifest(parsed, serialize_manifest(manifest))

    asyncio.run(go())


# ------------------------------------------------------------------------------------------------- Ready


def test_a_module_pushed_with_wasmflow_push_becomes_ready_and_kubectl_wait_sees_it(
    controller: OperatorConfig,
    kube: KubeEnv,
    kube_client: ApiClient,
    namespace: str,
    registry: Registry,
    tmp_path: Path,
) -> None:
    path = wasm_file(tmp_path)
    ref = new_ref(registry.host)
    wasmflow_push(path, ref)
    create_module(kube_client, namespace, "to-celsius", oci(ref))
    waited = kubectl(kube, "wait", "-n", namespace, "--for=condition=Ready", "wasmmodule/to-celsius", "--timeout=90s")
    assert waited.returncode == 0, waited.stderr
    assert "condition met" in waited.stdout
    status = get_module(kube_client, namespace, "to-celsius")["status"]
    assert status["artifact"]["digest"] == sha256_digest(path.read_bytes())
    assert status["artifact"]["size"] == path.stat().st_size
    assert status["artifact"]["mediaType"] == "application/wasm"
    assert status["world"] == "wasmflow:operator/map-operator@0.1.0"
    assert status["observedGeneration"] == 1
    assert [c["type"] for c in status["conditions"]] == ["Ready"]
    assert event_with(kube_client, namespace, "to-celsius", "Succeeded").type == "Normal"


def test_a_module_pinned_to_the_digest_wasmflow_push_printed_becomes_ready(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry: Registry, tmp_path: Path
) -> None:
    path = wasm_file(tmp_path, "filter")
    ref = new_ref(registry.host)
    digest = wasmflow_push(path, ref)
    create_module(kube_client, namespace, "in-range", oci(ref, digest=digest), kind="filter")
    status = wait_for_condition(kube_client, namespace, "in-range", "Ready")["status"]
    assert status["artifact"]["digest"] == sha256_digest(path.read_bytes())


def test_a_module_on_the_htpasswd_registry_becomes_ready_with_its_pull_secret_kept_out_of_status_and_events(
    controller: OperatorConfig,
    kube: KubeEnv,
    kube_client: ApiClient,
    namespace: str,
    registry_auth: AuthRegistry,
    tmp_path: Path,
) -> None:
    path = wasm_file(tmp_path)
    ref = new_ref(registry_auth.host)
    wasmflow_push(path, ref, "--username", registry_auth.username, "--password-stdin", stdin=registry_auth.password)
    user, password = registry_auth.username, registry_auth.password
    docker_config_secret(kube_client, namespace, "registry-creds", registry_auth.host, user, password)
    create_module(kube_client, namespace, "enrich", oci(ref, secretRef={"name": "registry-creds"}))
    waited = kubectl(kube, "wait", "-n", namespace, "--for=condition=Ready", "wasmmodule/enrich", "--timeout=90s")
    assert waited.returncode == 0, waited.stderr
    status = get_module(kube_client, namespace, "enrich")["status"]
    assert status["artifact"]["digest"] == sha256_digest(path.read_bytes())
    said = everything_said_about(kube_client, namespace, "enrich")
    assert password not in said
    assert base64.b64encode(f"{user}:{password}".encode()).decode() not in said


def test_a_module_from_a_config_map_becomes_ready(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str
) -> None:
    component = operator("branch")
    CoreV1Api(kube_client).create_namespaced_config_map(
        namespace,
        V1ConfigMap(
            metadata=V1ObjectMeta(name="overheat-wasm"),
            binary_data={"module.wasm": base64.b64encode(component).decode()},
        ),
    )
    create_module(kube_client, namespace, "overheat", {"configMapRef": {"name": "overheat-wasm"}}, kind="branch")
    status = wait_for_condition(kube_client, namespace, "overheat", "Ready")["status"]
    assert status["artifact"]["digest"] == sha256_digest(component)
    assert status["world"] == "wasmflow:operator/branch-operator@0.1.0"


def test_the_controller_counts_reconciles_and_the_bytes_it_pulled(
    controller: OperatorConfig,
    controller_metrics: CollectorRegistry,
    kube_client: ApiClient,
    namespace: str,
    registry: Registry,
    tmp_path: Path,
) -> None:
    path = wasm_file(tmp_path, "accumulate")
    ref = new_ref(registry.host)
    wasmflow_push(path, ref)
    create_module(kube_client, namespace, "window-average", oci(ref), kind="accumulate")
    wait_for_condition(kube_client, namespace, "window-average", "Ready")

    def sample(name: str, **labels: str) -> float:
        return controller_metrics.get_sample_value(name, labels) or 0.0

    assert wait_until(
        lambda: sample("wasmflow_controller_reconciles_total", kind="WasmModule", result="ready") >= 1,
        what="a counted reconcile",
    )
    assert sample("wasmflow_controller_modules_pulled_total") == 1
    assert sample("wasmflow_controller_pulled_bytes_total") == path.stat().st_size
    assert sample("wasmflow_controller_reconcile_seconds_count", kind="WasmModule") >= 1


# ------------------------------------------------------------------------------------------------- Stalled


def assert_stalled(
    kube_client: ApiClient, namespace: str, name: str, reason: str, *hints: str, timeout: float = 90
) -> dict[str, Any]:
    """Stalled=True and Ready=False with ``reason``, a message with every hint, and a Warning Event."""
    body = wait_for_condition(kube_client, namespace, name, "Stalled", timeout=timeout)
    stalled, ready = condition(body, "Stalled"), condition(body, "Ready")
    assert stalled is not None and ready is not None
    assert (stalled["reason"], ready["status"], ready["reason"]) == (reason, "False", reason)
    assert condition(body, "Reconciling") is None
    for hint in hints:
        assert hint in stalled["message"], stalled["message"]
    event = event_with(kube_client, namespace, name, reason)
    assert event.type == "Warning"
    return body


def wait_retrying(
    kube_client: ApiClient, namespace: str, name: str, reason: str, what: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(module, its Ready condition)`` once Ready says ``reason``: False, retried (Reconciling), not Stalled."""
    body: dict[str, Any] = wait_until(
        lambda: (
            (b := get_module(kube_client, namespace, name))
            and (c := condition(b, "Ready"))
            and c["reason"] == reason
            and b
        ),
        what=what,
    )
    ready, reconciling = condition(body, "Ready"), condition(body, "Reconciling")
    assert ready is not None and ready["status"] == "False"
    assert reconciling is not None and reconciling["reason"] == "ProgressingWithRetry"
    assert condition(body, "Stalled") is None
    return body, ready


def test_a_missing_tag_is_stalled_not_found_and_says_to_push_it(
    controller: OperatorConfig,
    kube: KubeEnv,
    kube_client: ApiClient,
    namespace: str,
    registry: Registry,
    tmp_path: Path,
) -> None:
    ref = new_ref(registry.host)
    wasmflow_push(wasm_file(tmp_path), ref)
    missing = ref.rsplit(":", 1)[0] + ":9.9"
    create_module(kube_client, namespace, "op", oci(missing))
    assert_stalled(kube_client, namespace, "op", "NotFound", "manifest 9.9 not found", f"wasmflow push FILE {missing}")
    # kstatus readers stop waiting too: kubectl can wait for Stalled.
    waited = kubectl(kube, "wait", "-n", namespace, "--for=condition=Stalled", "wasmmodule/op", "--timeout=30s")
    assert waited.returncode == 0, waited.stderr


def test_bad_credentials_are_stalled_unauthorized_and_never_shown(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry_auth: AuthRegistry, tmp_path: Path
) -> None:
    ref = new_ref(registry_auth.host)
    wasmflow_push(
        wasm_file(tmp_path), ref, "--username", registry_auth.username, "--password-stdin", stdin=registry_auth.password
    )
    wrong = "wrong-" + uuid.uuid4().hex
    docker_config_secret(kube_client, namespace, "bad-creds", registry_auth.host, registry_auth.username, wrong)
    create_module(kube_client, namespace, "op", oci(ref, secretRef={"name": "bad-creds"}))
    assert_stalled(
        kube_client,
        namespace,
        "op",
        "Unauthorized",
        "refused the credentials",
        f"check the credentials for {registry_auth.host} in Secret 'bad-creds'",
    )
    assert wrong not in everything_said_about(kube_client, namespace, "op")


def test_a_private_registry_without_a_pull_secret_is_stalled_unauthorized_saying_to_add_one(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry_auth: AuthRegistry
) -> None:
    create_module(kube_client, namespace, "op", oci(new_ref(registry_auth.host)))
    assert_stalled(kube_client, namespace, "op", "Unauthorized", "set spec.source.oci.secretRef")


def test_a_wrong_digest_pin_is_stalled_digest_mismatch_naming_both_digests(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry: Registry, tmp_path: Path
) -> None:
    ref = new_ref(registry.host)
    digest = wasmflow_push(wasm_file(tmp_path), ref)
    pin = "sha256:" + ("1" if digest[-1] == "0" else "0") * 64
    create_module(kube_client, namespace, "op", oci(ref, digest=pin))
    body = assert_stalled(
        kube_client, namespace, "op", "DigestMismatch", pin, digest, "set spec.source.oci.digest to the digest"
    )
    assert "corrupt" not in condition(body, "Ready")["message"]  # type: ignore[index]


def test_a_registry_blob_that_no_longer_matches_its_digest_is_retried_saying_the_registry_is_corrupt_and_heals(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registries: RegistryEnv
) -> None:
    """No pin is wrong here: the message blames the registry's storage, not the user, and the module is retried
    (Reconciling, not Stalled) until the registry serves the right bytes again."""
    component = unique(operator("map"))
    ref = new_ref(registries.plain.host)
    asyncio.run(push_component(ref, component, access=Access(insecure=True)))
    blob = stored_blob(registries.state_dir, sha256_digest(component))
    blob.write_bytes(flipped(component))
    create_module(kube_client, namespace, "op", oci(ref))
    body, ready = wait_retrying(kube_client, namespace, "op", "DigestMismatch", "the module retrying the corrupt blob")
    assert sha256_digest(component) in ready["message"]
    assert "storage is corrupt or something between it and the controller tampers" in ready["message"]
    assert "no pin of yours is wrong" in ready["message"] and "retrying in" in ready["message"]
    assert "set spec.source.oci.digest" not in ready["message"]
    assert "artifact" not in body["status"]
    blob.write_bytes(component)
    status = wait_for_condition(kube_client, namespace, "op", "Ready", timeout=120)["status"]
    assert status["artifact"]["digest"] == sha256_digest(component)


def test_a_core_module_instead_of_a_component_is_stalled_contract_violation(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry: Registry, component_bytes: Any
) -> None:
    ref = new_ref(registry.host)
    asyncio.run(push_component(ref, component_bytes("core_module"), access=Access(insecure=True)))
    create_module(kube_client, namespace, "op", oci(ref))
    assert_stalled(kube_client, namespace, "op", "ContractViolation", "[core-module]", "not a component")


def test_a_container_image_layer_is_stalled_contract_violation_naming_the_media_type(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry: Registry
) -> None:
    ref = new_ref(registry.host)
    push_raw(ref, mt.OCI_IMAGE_CONFIG, "application/vnd.oci.image.layer.v1.tar+gzip", b"\x1f\x8b\x08 not wasm")
    create_module(kube_client, namespace, "op", oci(ref))
    assert_stalled(
        kube_client, namespace, "op", "ContractViolation", "container image", "application/vnd.oci.image.layer.v1.tar"
    )


def test_a_component_of_another_kind_is_stalled_contract_violation(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry: Registry, tmp_path: Path
) -> None:
    ref = new_ref(registry.host)
    wasmflow_push(wasm_file(tmp_path, "map"), ref)
    create_module(kube_client, namespace, "op", oci(ref), kind="accumulate")
    assert_stalled(kube_client, namespace, "op", "ContractViolation", "[kind-mismatch]", "'accumulate'")


def test_a_reference_that_does_not_parse_is_stalled_invalid_reference(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry: Registry
) -> None:
    create_module(kube_client, namespace, "op", oci(f"{registry.host}/Controller-Tests/Op:1"))
    assert_stalled(kube_client, namespace, "op", "InvalidReference", "lower-case", "fix the reference")


def test_a_missing_pull_secret_is_stalled_not_found_saying_how_to_create_it(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry_auth: AuthRegistry
) -> None:
    create_module(kube_client, namespace, "op", oci(new_ref(registry_auth.host), secretRef={"name": "nope"}))
    assert_stalled(kube_client, namespace, "op", "NotFound", "Secret 'nope'", "kubectl create secret docker-registry")


class TestWithASmallModuleLimit:
    """A controller started with WASMFLOW_MAX_MODULE_BYTES=512: the WAT components (about 1 KiB) are over it."""

    @pytest.fixture
    def controller_config(self, controller_config: OperatorConfig) -> OperatorConfig:
        return dataclasses.replace(controller_config, max_module_bytes=512)

    def test_an_oversize_component_is_stalled_too_large(
        self, controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry: Registry, tmp_path: Path
    ) -> None:
        path = wasm_file(tmp_path)
        ref = new_ref(registry.host)
        wasmflow_push(path, ref)
        create_module(kube_client, namespace, "op", oci(ref))
        assert_stalled(
            kube_client, namespace, "op", "TooLarge", f"{path.stat().st_size} bytes", "WASMFLOW_MAX_MODULE_BYTES"
        )


class TestWithTheRegistryCaSetting:
    """A controller started with WASMFLOW_REGISTRY_CA_FILE naming the TLS test registry's CA."""

    @pytest.fixture
    def controller_config(self, controller_config: OperatorConfig, registry_tls: TlsRegistry) -> OperatorConfig:
        return dataclasses.replace(controller_config, registry_ca_file=registry_tls.ca_file)

    def test_a_module_on_the_tls_registry_becomes_ready(
        self, controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry_tls: TlsRegistry
    ) -> None:
        component = operator("map")
        ref = new_ref(registry_tls.host)
        asyncio.run(push_component(ref, component, access=Access(ca_file=registry_tls.ca_file)))
        create_module(kube_client, namespace, "op", {"oci": {"reference": ref}})
        status = wait_for_condition(kube_client, namespace, "op", "Ready")["status"]
        assert status["artifact"]["digest"] == sha256_digest(component)


def test_without_the_registry_ca_setting_a_module_on_the_tls_registry_is_not_ready_saying_it_is_not_trusted(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry_tls: TlsRegistry
) -> None:
    ref = new_ref(registry_tls.host)
    asyncio.run(push_component(ref, operator("map"), access=Access(ca_file=registry_tls.ca_file)))
    create_module(kube_client, namespace, "op", {"oci": {"reference": ref}})
    body = wait_for_condition(kube_client, namespace, "op", "Ready", status="False")
    ready = condition(body, "Ready")
    assert ready is not None and ready["reason"] == "Unreachable"
    assert f"the TLS certificate of {registry_tls.host} is not trusted" in ready["message"]
    assert "WASMFLOW_REGISTRY_CA_FILE" in ready["message"]


def test_a_registry_answering_503_at_first_makes_the_module_ready_within_one_reconcile(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry: Registry, tmp_path: Path
) -> None:
    """The OCI client's own retries absorb a short outage: the user never sees it in the status."""
    path = wasm_file(tmp_path)
    ref = new_ref(registry.host)
    wasmflow_push(path, ref)
    with unavailable_proxy(registry.url, failing=2) as (host, proxy):
        create_module(kube_client, namespace, "op", oci(ref.replace(registry.host, host)))
        status = wait_for_condition(kube_client, namespace, "op", "Ready")["status"]
    assert status["artifact"]["digest"] == sha256_digest(path.read_bytes())
    assert proxy.refused == 2
    assert [e.reason for e in events(kube_client, namespace, "op")] == ["Succeeded"]


def test_a_registry_that_keeps_answering_503_is_retried_not_stalled_and_the_module_is_ready_once_it_heals(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry: Registry, tmp_path: Path
) -> None:
    path = wasm_file(tmp_path)
    ref = new_ref(registry.host)
    wasmflow_push(path, ref)
    with unavailable_proxy(registry.url, failing=None) as (host, proxy):
        create_module(kube_client, namespace, "op", oci(ref.replace(registry.host, host)))
        _, ready = wait_retrying(kube_client, namespace, "op", "ServerError", "the module retrying after 503s")
        assert "answered 503" in ready["message"] and "retrying in" in ready["message"]
        proxy.heal()
        status = wait_for_condition(kube_client, namespace, "op", "Ready", timeout=120)["status"]
    assert status["artifact"]["digest"] == sha256_digest(path.read_bytes())
    assert condition({"status": status}, "Reconciling") is None
    assert proxy.refused >= 4  # at least one reconcile's worth of client tries


# ------------------------------------------------------------------------------------------------- healing and change


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[RegistryEnv]:
    """Registries of this test alone, so stopping them disturbs no other test."""
    env = start_registries(tmp_path / "registry")
    try:
        yield env
    finally:
        stop_registries(env)


def test_a_registry_that_is_down_at_first_and_comes_back_makes_the_module_ready_without_user_action(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, own_registry: RegistryEnv, tmp_path: Path
) -> None:
    path = wasm_file(tmp_path)
    ref = new_ref(own_registry.plain.host)
    wasmflow_push(path, ref)
    stop_registries(own_registry)
    create_module(kube_client, namespace, "op", oci(ref))
    body = wait_until(
        lambda: (
            (b := get_module(kube_client, namespace, "op"))
            and (c := condition(b, "Reconciling"))
            and c["reason"] == "ProgressingWithRetry"
            and b
        ),
        what="the module retrying",
    )
    ready = condition(body, "Ready")
    assert ready is not None and (ready["status"], ready["reason"]) == ("False", "Unreachable")
    assert "retrying in" in ready["message"]
    assert condition(body, "Stalled") is None
    back = start_registries(own_registry.state_dir)
    assert back.plain.host == own_registry.plain.host, "the registry came back on another port"
    status = wait_for_condition(kube_client, namespace, "op", "Ready", timeout=120)["status"]
    assert status["artifact"]["digest"] == sha256_digest(path.read_bytes())
    assert condition({"status": status}, "Reconciling") is None


def test_a_stalled_module_heals_on_its_interval_once_the_missing_tag_is_pushed(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry: Registry, tmp_path: Path
) -> None:
    ref = new_ref(registry.host)
    create_module(kube_client, namespace, "op", oci(ref), interval="2s")
    wait_for_condition(kube_client, namespace, "op", "Stalled")
    path = wasm_file(tmp_path)
    wasmflow_push(path, ref)
    status = wait_for_condition(kube_client, namespace, "op", "Ready")["status"]
    assert status["artifact"]["digest"] == sha256_digest(path.read_bytes())


def test_a_tag_that_moves_is_followed_on_the_interval_with_an_event(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry: Registry, tmp_path: Path
) -> None:
    first, second = wasm_file(tmp_path), wasm_file(tmp_path, body="(nop)")
    ref = new_ref(registry.host)
    wasmflow_push(first, ref)
    create_module(kube_client, namespace, "op", oci(ref), interval="2s")
    wait_for_condition(kube_client, namespace, "op", "Ready")
    wasmflow_push(second, ref)
    moved = sha256_digest(second.read_bytes())
    wait_until(
        lambda: get_module(kube_client, namespace, "op")["status"]["artifact"]["digest"] == moved,
        what="the module to follow the tag",
    )
    was = f"(was {sha256_digest(first.read_bytes())})"
    wait_until(
        lambda: any(was in (e.message or "") for e in events(kube_client, namespace, "op")),
        what="an Event naming the previous digest",
    )


def test_editing_the_spec_judges_the_new_generation(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry: Registry, tmp_path: Path
) -> None:
    ref = new_ref(registry.host)
    wasmflow_push(wasm_file(tmp_path, "filter"), ref)
    create_module(kube_client, namespace, "op", oci(ref), kind="filter")
    wait_for_condition(kube_client, namespace, "op", "Ready")
    objects = CustomObjectsApi(kube_client)
    objects.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "op", {"spec": {"operator": "branch"}})
    body = assert_stalled(kube_client, namespace, "op", "ContractViolation", "[kind-mismatch]")
    assert body["status"]["observedGeneration"] == 2
    objects.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "op", {"spec": {"operator": "filter"}})
    healed = wait_for_condition(kube_client, namespace, "op", "Ready")
    assert healed["status"]["observedGeneration"] == 3
    assert condition(healed, "Stalled") is None


def test_a_flux_reconcile_request_is_handled_and_echoed_in_the_status(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry: Registry, tmp_path: Path
) -> None:
    ref = new_ref(registry.host)
    wasmflow_push(wasm_file(tmp_path), ref)
    create_module(kube_client, namespace, "op", oci(ref))
    wait_for_condition(kube_client, namespace, "op", "Ready")
    requested = "2026-12-01T08:00:00.000000000Z"
    patch = {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": requested}}}
    CustomObjectsApi(kube_client).patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "op", patch)
    wait_until(
        lambda: get_module(kube_client, namespace, "op")["status"].get("lastHandledReconcileAt") == requested,
        what="lastHandledReconcileAt",
    )
    assert condition(get_module(kube_client, namespace, "op"), "Ready")["status"] == "True"  # type: ignore[index]


def test_a_config_map_without_the_component_key_is_stalled_not_found_naming_its_keys(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str
) -> None:
    CoreV1Api(kube_client).create_namespaced_config_map(
        namespace,
        V1ConfigMap(
            metadata=V1ObjectMeta(name="ops"),
            binary_data={"other.wasm": base64.b64encode(operator("map")).decode()},
        ),
    )
    create_module(kube_client, namespace, "op", {"configMapRef": {"name": "ops", "key": "to-celsius.wasm"}})
    assert_stalled(
        kube_client, namespace, "op", "NotFound", "no binaryData key 'to-celsius.wasm'", "binaryData keys: other.wasm"
    )
