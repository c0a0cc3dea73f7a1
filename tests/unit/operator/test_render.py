"""The pure render functions: a Dataflow and its WasmModules in, the ConfigMap, Service and Deployment out.

The golden files under ``golden/`` are the reviewed output; a change to the rendering shows up as a diff there.
Regenerate them on purpose with ``WASMFLOW_UPDATE_GOLDEN=1 pytest tests/unit/operator/test_render.py`` and review
the diff like code.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fault_report import Report
from wasmflow.api.dataflow import Dataflow
from wasmflow.api.wasmmodule import WasmModule
from wasmflow.api.workerconfig import PinnedGraph, PinnedGraphModule, WorkerConfig
from wasmflow.operator.config import OperatorConfig
from wasmflow.operator.render import CONFIG_HASH, Children, default_shared_group, probe_timing, render, render_yaml

GOLDEN = Path(__file__).resolve().parent / "golden"
EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "manifests"
UID = "0b5e7f40-1d2c-4a8e-9f00-5c1d2e3f4a5b"


def digest(name: str) -> str:
    """A distinct, stable digest per module name (the render does not hash the modules itself)."""
    return "sha256:" + (name.encode().hex() * 64)[:64]


def example() -> tuple[Dataflow, dict[str, WasmModule]]:
    (doc,) = yaml.safe_load_all((EXAMPLES / "dataflow.yaml").read_text())
    doc["metadata"].update(namespace="plant", uid=UID, generation=1)
    modules = {}
    for module in yaml.safe_load_all((EXAMPLES / "wasmmodules.yaml").read_text()):
        module["metadata"]["namespace"] = "plant"
        modules[module["metadata"]["name"]] = WasmModule.model_validate(module)
    return Dataflow.model_validate(doc), modules


def secured() -> tuple[Dataflow, dict[str, WasmModule]]:
    """Everything the render can be asked for: TLS and credentials, pull secrets, a ConfigMap module, scheduling."""
    dataflow = Dataflow.model_validate(
        {
            "metadata": {"name": "line-3", "namespace": "plant", "uid": UID, "generation": 4},
            "spec": {
                "endpoints": {
                    "site": {
                        "mqtt": {
                            "url": "mqtts://broker.plant:8883",
                            "qos": 1,
                            "sharedSubscriptionGroup": "line-3",
                            "tls": {
                                "caSecretRef": {"name": "broker-ca", "key": "ca.crt"},
                                "clientCertSecretRef": {"name": "line-3-client"},
                            },
                        }
                    },
                    "cloud": {"mqtt": {"url": "mqtt://cloud.example:1883", "credentialsSecretRef": {"name": "cloud"}}},
                },
                "nodes": [
                    {"name": "in", "type": "source", "endpoint": "site", "topic": "sensors/#"},
                    {"name": "convert", "type": "map", "module": "to-celsius", "configuration": {"precision": "2"}},
                    {"name": "keep", "type": "filter", "module": "in-range"},
                    {"name": "out", "type": "sink", "endpoint": "cloud", "topic": "plant/line-3"},
                ],
                "edges": [
                    {"from": "in", "to": "convert"},
                    {"from": "convert", "to": "keep"},
                    {"from": "keep", "to": "out"},
                ],
                "errorPolicy": {"action": "deadLetter", "endpoint": "cloud", "topic": "plant/dead-letters"},
                "replicas": 3,
                "worker": {
                    "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
                    "nodeSelector": {"kubernetes.io/arch": "arm64"},
                    "tolerations": [{"key": "edge", "operator": "Exists", "effect": "NoSchedule"}],
                },
            },
        }
    )
    modules = {
        "to-celsius": WasmModule.model_validate(
            {
                "metadata": {"name": "to-celsius", "namespace": "plant"},
                "spec": {
                    "source": {
                        "oci": {"reference": "registry.plant:5000/ops/to-celsius:1.2.0", "secretRef": {"name": "pull"}}
                    },
                    "operator": "map",
                    "capabilities": ["environment"],
                    "limits": {"memory": "32Mi", "timeoutPerMessage": "50ms", "fuel": 1000000},
                },
            }
        ),
        "in-range": WasmModule.model_validate(
            {
                "metadata": {"name": "in-range", "namespace": "plant"},
                "spec": {
                    "source": {"configMapRef": {"name": "in-range-wasm", "key": "in-range.wasm"}},
                    "operator": "filter",
                    "strict": True,
                },
            }
        ),
    }
    return dataflow, modules


SECURED_CONFIG = OperatorConfig(
    worker_image="registry.plant:5000/wasmflow@sha256:" + "c" * 64,
    worker_image_pull_policy="Always",
    worker_image_pull_secrets=("plant-images",),
)


#: A CA certificate as ``WASMFLOW_REGISTRY_CA_FILE`` holds it (the render copies the bytes, it does not parse them).
REGISTRY_CA = b"-----BEGIN CERTIFICATE-----\nMIIBplantCA\n-----END CERTIFICATE-----\n"


def rendered(
    case: tuple[Dataflow, dict[str, WasmModule]], config: OperatorConfig, registry_ca: bytes | None = None
) -> Children:
    dataflow, modules = case
    return render(dataflow, modules, {name: digest(name) for name in modules}, config, registry_ca=registry_ca)


def graph_case() -> tuple[Dataflow, PinnedGraph]:
    """A Dataflow running an AIO graph artifact from a TLS registry, as the reconcile resolved it."""
    dataflow = Dataflow.model_validate(
        {
            "metadata": {"name": "temps", "namespace": "plant", "uid": UID, "generation": 2},
            "spec": {
                "endpoints": {"site": {"mqtt": {"url": "mqtt://broker.plant:1883"}}},
                "graph": {
                    "artifact": {"reference": "registry.plant:5000/graphs/temperatures:1.0.0"},
                    "registry": "registry.plant:5000/aio",
                    "sources": {"source": {"endpoint": "site", "topic": "sensors/in"}},
                    "sinks": {"sink": {"endpoint": "site", "topic": "sensors/out"}},
                },
            },
        }
    )
    graph = PinnedGraph(
        artifact="registry.plant:5000/graphs/temperatures@" + digest("graph"),
        modules={
            "f2c:1.0.0": PinnedGraphModule(reference="registry.plant:5000/aio/f2c:1.0.0", digest=digest("f2c")),
            "window:1.0.0": PinnedGraphModule(
                reference="registry.plant:5000/aio/window:1.0.0", digest=digest("window")
            ),
        },
    )
    return dataflow, graph


def worker_config_of(children: Children) -> WorkerConfig:
    return WorkerConfig.model_validate_json(children.config_map["data"]["config.json"])


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("WASMFLOW_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"{path} is missing: run with WASMFLOW_UPDATE_GOLDEN=1 to create it, then review it"
    assert text == path.read_text(encoding="utf-8"), f"rendering differs from {path} (WASMFLOW_UPDATE_GOLDEN=1)"


@pytest.mark.parametrize(
    ("golden", "case", "config"),
    [("plant-temperatures.yaml", example, OperatorConfig()), ("line-3-secured.yaml", secured, SECURED_CONFIG)],
)
def test_children_match_the_reviewed_golden_file(golden: str, case: Any, config: OperatorConfig) -> None:
    check_golden(golden, render_yaml(rendered(case(), config)))


def test_children_with_the_registry_ca_match_the_reviewed_golden_file() -> None:
    check_golden("line-3-registry-ca.yaml", render_yaml(rendered(secured(), SECURED_CONFIG, REGISTRY_CA)))


def test_children_of_a_pinned_aio_graph_with_the_registry_ca_match_the_reviewed_golden_file() -> None:
    dataflow, graph = graph_case()
    children = render(dataflow, {}, {}, SECURED_CONFIG, registry_ca=REGISTRY_CA, graph=graph)
    check_golden("temps-aio-graph.yaml", render_yaml(children))


def test_the_registry_ca_is_copied_into_the_config_map_and_named_by_every_module_pulled_over_tls() -> None:
    children = rendered(secured(), SECURED_CONFIG, REGISTRY_CA)
    assert children.config_map["data"]["registry-ca.crt"] == REGISTRY_CA.decode()
    modules = worker_config_of(children).modules
    assert modules["to-celsius"].ca_file == "/etc/wasmflow/registry-ca.crt"
    assert modules["in-range"].ca_file is None  # a ConfigMap module is not pulled
    mounts = children.deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": "config", "mountPath": "/etc/wasmflow", "readOnly": True} in mounts


def test_a_module_pulled_over_plain_http_is_not_given_the_registry_ca() -> None:
    dataflow, modules = secured()
    insecure = modules["to-celsius"].model_dump(by_alias=True, exclude_none=True)
    insecure["spec"]["source"]["oci"]["insecure"] = True
    modules["to-celsius"] = WasmModule.model_validate(insecure)
    children = rendered((dataflow, modules), SECURED_CONFIG, REGISTRY_CA)
    assert worker_config_of(children).modules["to-celsius"].ca_file is None


def test_without_a_registry_ca_the_config_map_holds_only_the_worker_config() -> None:
    children = rendered(secured(), SECURED_CONFIG)
    assert set(children.config_map["data"]) == {"config.json"}
    assert worker_config_of(children).modules["to-celsius"].ca_file is None


def test_a_rotated_registry_ca_changes_the_config_hash() -> None:
    before = rendered(secured(), SECURED_CONFIG, REGISTRY_CA)
    after = rendered(secured(), SECURED_CONFIG, REGISTRY_CA.replace(b"plantCA", b"plantCA2"))
    assert before.config_hash != after.config_hash


def test_a_graph_dataflow_pins_its_artifact_and_every_module_by_digest_naming_the_registry_ca() -> None:
    dataflow, graph = graph_case()
    config = worker_config_of(render(dataflow, {}, {}, OperatorConfig(), registry_ca=REGISTRY_CA, graph=graph))
    assert config.graph is not None
    assert config.graph.artifact == "registry.plant:5000/graphs/temperatures@" + digest("graph")
    assert config.graph.ca_file == "/etc/wasmflow/registry-ca.crt"
    assert {name: (m.digest, m.ca_file) for name, m in config.graph.modules.items()} == {
        "f2c:1.0.0": (digest("f2c"), "/etc/wasmflow/registry-ca.crt"),
        "window:1.0.0": (digest("window"), "/etc/wasmflow/registry-ca.crt"),
    }


def test_a_new_graph_module_digest_changes_the_config_hash() -> None:
    dataflow, graph = graph_case()
    moved = graph.model_copy(
        update={
            "modules": {
                **graph.modules,
                "f2c:1.0.0": graph.modules["f2c:1.0.0"].model_copy(update={"digest": digest("f2c-2")}),
            }
        }
    )
    before = render(dataflow, {}, {}, OperatorConfig(), graph=graph)
    after = render(dataflow, {}, {}, OperatorConfig(), graph=moved)
    assert before.config_hash != after.config_hash


def test_the_config_map_pins_every_module_by_digest_with_its_limits_and_grants() -> None:
    children = rendered(secured(), SECURED_CONFIG)
    config = json.loads(children.config_map["data"]["config.json"])
    assert config["modules"]["to-celsius"] == {
        "reference": "registry.plant:5000/ops/to-celsius:1.2.0",
        "digest": digest("to-celsius"),
        "insecure": False,
        "pullSecretFile": "/var/run/secrets/wasmflow/registry/pull/.dockerconfigjson",
        "operator": "map",
        "capabilities": ["environment"],
        "limits": {"memory": "32Mi", "timeoutPerMessage": "50ms", "fuel": 1000000},
        "strict": False,
    }
    assert config["modules"]["in-range"]["path"] == "/var/run/wasmflow/modules/in-range/in-range.wasm"
    assert config["modules"]["in-range"]["strict"] is True


def test_secrets_reach_the_worker_as_mounted_files_never_as_values() -> None:
    children = rendered(secured(), SECURED_CONFIG)
    config = json.loads(children.config_map["data"]["config.json"])
    assert config["endpointFiles"]["site"] == {
        "caFile": "/var/run/secrets/wasmflow/endpoints/site/ca/ca.crt",
        "certFile": "/var/run/secrets/wasmflow/endpoints/site/client/tls.crt",
        "keyFile": "/var/run/secrets/wasmflow/endpoints/site/client/tls.key",
    }
    pod = children.deployment["spec"]["template"]["spec"]
    mounted = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert mounted == {"pull", "broker-ca", "line-3-client", "cloud"}
    assert all("valueFrom" not in e for e in pod["containers"][0]["env"])


def test_the_workers_run_restricted_with_a_read_only_root_and_writable_emptydirs() -> None:
    pod = rendered(example(), OperatorConfig()).deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    assert writable == {"/tmp", "/var/cache/wasmflow"}
    assert {m["name"] for m in container["volumeMounts"] if not m.get("readOnly")} == empty_dirs


def test_image_pull_policy_and_pull_secrets_come_from_the_operator_settings() -> None:
    pod = rendered(secured(), SECURED_CONFIG).deployment["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == SECURED_CONFIG.worker_image
    assert pod["containers"][0]["imagePullPolicy"] == "Always"
    assert pod["imagePullSecrets"] == [{"name": "plant-images"}]


def test_replicas_resources_and_scheduling_come_from_the_spec() -> None:
    deployment = rendered(secured(), SECURED_CONFIG).deployment
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 3
    assert pod["containers"][0]["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"memory": "1Gi"},
    }
    assert pod["nodeSelector"] == {"kubernetes.io/arch": "arm64"}
    assert pod["tolerations"] == [{"key": "edge", "operator": "Exists", "effect": "NoSchedule"}]


def test_probes_ask_healthz_for_liveness_and_readyz_for_readiness() -> None:
    (container,) = rendered(example(), OperatorConfig()).deployment["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["args"] == ["worker", "--config", "/etc/wasmflow/config.json"]


def test_every_child_is_owned_by_the_dataflow() -> None:
    children = rendered(example(), OperatorConfig())
    for child in (children.config_map, children.deployment, children.service):
        assert child["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "wasmflow.io/v1alpha1",
                "kind": "Dataflow",
                "name": "plant-temperatures",
                "uid": UID,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]


def test_the_config_hash_is_stable_and_annotates_the_pod_template() -> None:
    first, again = rendered(example(), OperatorConfig()), rendered(example(), OperatorConfig())
    assert first.config_hash == again.config_hash
    assert first.deployment["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH] == first.config_hash


def test_a_node_configuration_change_changes_the_config_hash() -> None:
    dataflow, modules = example()
    doc = dataflow.model_dump(by_alias=True, exclude_none=True)
    edited = copy.deepcopy(doc)
    edited["spec"]["nodes"][4]["configuration"] = {"threshold": "95"}
    digests = {name: digest(name) for name in modules}
    before = render(dataflow, modules, digests, OperatorConfig())
    after = render(Dataflow.model_validate(edited), modules, digests, OperatorConfig())
    assert before.config_hash != after.config_hash


def test_a_new_module_digest_changes_the_config_hash() -> None:
    dataflow, modules = example()
    digests = {name: digest(name) for name in modules}
    before = render(dataflow, modules, digests, OperatorConfig())
    after = render(dataflow, modules, {**digests, "enrich": "sha256:" + "e" * 64}, OperatorConfig())
    assert before.config_hash != after.config_hash


def test_graph_modules_pulled_over_plain_http_are_not_given_the_registry_ca() -> None:
    dataflow, graph = graph_case()
    doc = dataflow.model_dump(by_alias=True, exclude_none=True)
    doc["spec"]["graph"]["insecure"] = True
    children = render(Dataflow.model_validate(doc), {}, {}, OperatorConfig(), registry_ca=REGISTRY_CA, graph=graph)
    pinned = worker_config_of(children).graph
    assert pinned is not None
    assert [m.ca_file for m in pinned.modules.values()] == [None, None]
    assert pinned.ca_file == "/etc/wasmflow/registry-ca.crt"  # the artifact is still pulled over TLS


def test_the_worker_probes_wait_longer_than_the_slowest_message_can_block_the_loop(report: Report) -> None:
    """A call runs on the worker's event loop: /healthz answers only after it. The probes' timeout follows the
    largest timeoutPerMessage (before: kubelet's default 1 s, so three slow messages in a row killed the pod)."""

    def module(timeout: str) -> WasmModule:
        return WasmModule.model_validate(
            {
                "metadata": {"name": f"m{timeout}"},
                "spec": {
                    "source": {"oci": {"reference": "r/m:1"}},
                    "operator": "map",
                    "limits": {"timeoutPerMessage": timeout},
                },
            }
        )

    assert probe_timing({}, 10) == {"timeoutSeconds": 2, "periodSeconds": 10}
    assert probe_timing({"a": module("200ms"), "b": module("5s")}, 10) == {"timeoutSeconds": 6, "periodSeconds": 10}
    longest = probe_timing({"a": module("30s")}, 5)
    assert longest == {"timeoutSeconds": 31, "periodSeconds": 31}
    report(probe_timeout_s_for_30s_messages=longest["timeoutSeconds"])


def _groups(children: Children) -> dict[str, str | None]:
    endpoints = worker_config_of(children).spec.endpoints
    return {name: endpoint.mqtt.shared_subscription_group for name, endpoint in endpoints.items()}


def test_an_endpoint_without_a_shared_group_gets_one_per_dataflow_and_a_named_group_is_kept() -> None:
    dataflow, modules = secured()
    groups = _groups(rendered((dataflow, modules), SECURED_CONFIG))
    assert groups["site"] == "line-3"  # named in the spec
    assert groups["cloud"] == default_shared_group(dataflow)
    elsewhere = dataflow.model_copy(update={"metadata": dataflow.metadata.model_copy(update={"namespace": "mill"})})
    assert default_shared_group(elsewhere) != default_shared_group(dataflow)
    assert default_shared_group(dataflow) == default_shared_group(secured()[0])
