"""The signature policy on a real API server: a module signed by a trusted key is Ready with its signer in status;
an unsigned one under the controller's required policy is Stalled/SignatureMissing; one re-signed by an untrusted
key is Stalled/SignatureInvalid, keeps its last verified artifact, and its Dataflow does not roll to the new digest.

Signatures are made with ``wasmflow push --sign`` (cosign's layout; cosign itself is in the OCI interop tests).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from kubernetes.client import ApiClient, CoreV1Api, CustomObjectsApi, V1ConfigMap, V1ObjectMeta

from tests.components.engine import wat
from tests.integration.conftest import wait_until
from tests.integration.operator.test_wasmmodule_controller import (
    condition,
    create_module,
    get_module,
    kubectl,
    oci,
    wait_for_condition,
    wasmflow_push,
)
from tests.services import KubeEnv, Registry
from wasmflow.operator.config import OperatorConfig


@pytest.fixture
def controller_config(tmp_path: Path) -> OperatorConfig:
    """The controller requires signatures (chart verify.required: true) and trusts no key of its own."""
    return OperatorConfig(
        worker_image="registry.test/wasmflow:test",
        metrics_port=0,
        cache_dir=tmp_path / "controller-cache",
        verify_required=True,
    )


def key_pair(directory: Path, name: str) -> tuple[Path, bytes]:
    """A PEM private key file and the PEM public key."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = directory / f"{name}.key"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def trust(kube_client: ApiClient, namespace: str, public: bytes) -> dict[str, Any]:
    """A ConfigMap holding the trusted key, and the spec.verify naming it."""
    CoreV1Api(kube_client).create_namespaced_config_map(
        namespace, V1ConfigMap(metadata=V1ObjectMeta(name="release-key"), data={"cosign.pub": public.decode()})
    )
    return {"publicKeys": [{"configMapRef": {"name": "release-key"}}]}


def ref_in(registry: Registry) -> str:
    return f"{registry.host}/signed-modules/{uuid.uuid4().hex[:10]}:1.0"


def test_a_module_signed_by_a_trusted_key_is_ready_with_its_signer_in_status(
    controller: OperatorConfig,
    kube: KubeEnv,
    kube_client: ApiClient,
    namespace: str,
    registry: Registry,
    tmp_path: Path,
) -> None:
    private, public = key_pair(tmp_path, "release")
    path = tmp_path / "map.wasm"
    path.write_bytes(wat.operator("map"))
    ref = ref_in(registry)
    digest = wasmflow_push(path, ref, "--sign", str(private))
    create_module(kube_client, namespace, "signed", oci(ref), verify=trust(kube_client, namespace, public))
    body = wait_for_condition(kube_client, namespace, "signed", "Ready")
    signature = body["status"]["signature"]
    assert signature["signedDigest"] == digest
    assert signature["signer"].startswith("key sha256:")
    assert signature["keyId"].startswith(signature["signer"].removeprefix("key "))
    assert body["status"]["artifact"]["digest"] == wat.digest(path.read_bytes())
    table = kubectl(kube, "get", "wasmmodules", "-n", namespace)
    assert table.returncode == 0, table.stderr
    assert "SIGNER" in table.stdout.splitlines()[0]
    assert signature["signer"] in table.stdout


def test_an_unsigned_module_under_the_required_policy_is_stalled_signature_missing(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry: Registry, tmp_path: Path
) -> None:
    path = tmp_path / "map.wasm"
    path.write_bytes(wat.operator("map"))
    ref = ref_in(registry)
    digest = wasmflow_push(path, ref)
    create_module(kube_client, namespace, "unsigned", oci(ref))
    body = wait_for_condition(kube_client, namespace, "unsigned", "Stalled")
    stalled = condition(body, "Stalled")
    assert stalled is not None
    assert stalled["reason"] == "SignatureMissing"
    assert f"no signature found for {digest}" in stalled["message"]
    assert "artifact" not in body["status"]  # nothing was pulled


def dataflow(module: str) -> dict[str, Any]:
    return {
        "apiVersion": "wasmflow.io/v1alpha1",
        "kind": "Dataflow",
        "metadata": {"name": "signed-flow"},
        "spec": {
            "endpoints": {"plant": {"mqtt": {"url": "mqtt://mosquitto.plant:1883"}}},
            "nodes": [
                {"name": "sensors", "type": "source", "endpoint": "plant", "topic": "sensors/+"},
                {"name": module, "type": "map", "module": module},
                {"name": "out", "type": "sink", "endpoint": "plant", "topic": "out"},
            ],
            "edges": [{"from": "sensors", "to": module}, {"from": module, "to": "out"}],
        },
    }


def worker_digest(kube_client: ApiClient, namespace: str, module: str) -> str | None:
    maps = CoreV1Api(kube_client).list_namespaced_config_map(namespace).items
    found = next((m for m in maps if m.metadata.name == "signed-flow-worker"), None)
    if found is None:
        return None
    digest: str = json.loads(found.data["config.json"])["modules"][module]["digest"]
    return digest


def test_a_module_re_signed_by_an_untrusted_key_is_stalled_invalid_and_its_dataflow_does_not_roll(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registry: Registry, tmp_path: Path
) -> None:
    trusted, public = key_pair(tmp_path, "release")
    untrusted, _ = key_pair(tmp_path, "someone-else")
    first, second = tmp_path / "v1.wasm", tmp_path / "v2.wasm"
    first.write_bytes(wat.operator("map"))
    second.write_bytes(wat.operator("map", body="nop"))
    ref = ref_in(registry)
    wasmflow_push(first, ref, "--sign", str(trusted))
    create_module(
        kube_client, namespace, "sensor-map", oci(ref), verify=trust(kube_client, namespace, public), interval="2s"
    )
    wait_for_condition(kube_client, namespace, "sensor-map", "Ready")
    CustomObjectsApi(kube_client).create_namespaced_custom_object(
        "wasmflow.io", "v1alpha1", namespace, "dataflows", dataflow("sensor-map")
    )
    good = wat.digest(first.read_bytes())
    wait_until(lambda: worker_digest(kube_client, namespace, "sensor-map") == good, what="the worker config")

    new_digest = wasmflow_push(second, ref, "--sign", str(untrusted))  # the tag moves to a build signed elsewhere

    def refused() -> dict[str, Any] | None:
        body = get_module(kube_client, namespace, "sensor-map")
        stalled = condition(body, "Stalled")
        return body if stalled and stalled["status"] == "True" else None

    body = wait_until(refused, what="the module Stalled")
    stalled = condition(body, "Stalled")
    assert stalled is not None
    assert stalled["reason"] == "SignatureInvalid"
    assert f"for {new_digest}, none valid for the trusted key" in stalled["message"]
    assert "does not verify with any trusted key" in stalled["message"]
    assert body["status"]["artifact"]["digest"] == good  # the last verified artifact, never the new one

    def flow_reason() -> str | None:
        body = CustomObjectsApi(kube_client).get_namespaced_custom_object(
            "wasmflow.io", "v1alpha1", namespace, "dataflows", "signed-flow"
        )
        ready = condition(body, "Ready")
        return ready["reason"] if ready and ready["reason"] == "ModuleFailed" else None

    wait_until(flow_reason, what="the Dataflow held back by its refused module")
    assert worker_digest(kube_client, namespace, "sensor-map") == good
