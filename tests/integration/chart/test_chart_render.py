"""The chart as Helm renders it: lint, the strict values schema, images, watch scope, security, RBAC.

Every render goes through the real helm binary, so values.schema.json is enforced by Helm's own validator.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.chart_env import CHART, Helm, container_env, kinds, only
from wasmflow.api.crd import crds
from wasmflow.operator.config import load_config

DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32
APP_VERSION = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]


def _operator(objects: list[Any]) -> dict[str, Any]:
    (container,) = only(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_helm_lint_strict_passes(helm: Helm) -> None:
    result = helm.run("lint", "--strict", str(CHART))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_defaults_render_the_promised_objects(helm: Helm) -> None:
    objects = helm.template()

    assert kinds(objects) == ["ClusterRole", "ClusterRoleBinding", "Deployment", "Service", "ServiceAccount"]


@pytest.mark.parametrize(
    ("flag", "mistake"),
    [
        ("imagee.tag=1.0", "imagee"),
        ("watch.allNamespace=false", "allNamespace"),
        ("global.azure.images.wasmflow.imag=x", "imag"),
        ("securityContext=", None),
        ("registry.caBundle.secretNam=registry-ca", "secretNam"),
    ],
)
def test_a_misspelled_or_mistyped_value_is_refused_by_the_schema(helm: Helm, flag: str, mistake: str | None) -> None:
    result = helm.run("template", "wf", str(CHART), "--set", flag)

    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    if mistake:
        assert mistake in result.stderr


def test_a_digest_that_is_not_sha256_is_refused(helm: Helm) -> None:
    result = helm.run("template", "wf", str(CHART), "--set", "image.digest=latest")

    assert result.returncode != 0
    assert "digest" in result.stderr


def test_operator_runs_one_replica_recreated_with_a_liveness_probe(helm: Helm) -> None:
    deployment = only(helm.template(), "Deployment")
    operator = _operator([deployment])

    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert operator["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert "--liveness=http://0.0.0.0:8080/healthz" in operator["args"]
    assert operator["resources"]["limits"]["memory"] == "384Mi"


def test_operator_pod_meets_the_restricted_pod_security_profile(helm: Helm) -> None:
    pod = only(helm.template(), "Deployment")["spec"]["template"]["spec"]
    operator = pod["containers"][0]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert operator["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    mounts = {m["mountPath"] for m in operator["volumeMounts"]}
    assert "/tmp" in mounts
    assert container_env(only(helm.template(), "Deployment"))["WASMFLOW_CACHE_DIR"] in mounts


def test_default_images_are_the_charts_app_version(helm: Helm) -> None:
    objects = helm.template()

    assert _operator(objects)["image"] == f"ghcr.io/wasmflow/wasmflow:{APP_VERSION}"
    assert (
        container_env(only(objects, "Deployment"))["WASMFLOW_WORKER_IMAGE"]
        == f"ghcr.io/wasmflow/wasmflow:{APP_VERSION}"
    )


def test_every_image_value_reaches_the_operator_and_its_worker_env(helm: Helm) -> None:
    objects = helm.template(
        {
            "image": {"registry": "registry.example", "repository": "ot/wasmflow", "tag": "1.2.3", "digest": DIGEST},
            "worker": {
                "image": {"repository": "ot/wasmflow-worker", "digest": OTHER_DIGEST, "pullPolicy": "Always"},
                "imagePullSecrets": ["edge-pull"],
            },
        }
    )
    env = container_env(only(objects, "Deployment"))

    assert _operator(objects)["image"] == f"registry.example/ot/wasmflow@{DIGEST}"
    assert env["WASMFLOW_WORKER_IMAGE"] == f"registry.example/ot/wasmflow-worker@{OTHER_DIGEST}"
    config = load_config(env)
    assert config.worker_image == f"registry.example/ot/wasmflow-worker@{OTHER_DIGEST}"
    assert config.worker_image_pull_policy == "Always"
    assert config.worker_image_pull_secrets == ("edge-pull",)


def test_operator_env_is_a_valid_operator_config(helm: Helm) -> None:
    """The operator refuses a bad WASMFLOW_* variable at start-up; the chart's must all parse."""
    values = {
        "operator": {"workerLimit": 3, "requestTimeout": 12.5, "cacheMaxBytes": 3 * 2**30, "maxConcurrentChecks": 2}
    }
    env = container_env(only(helm.template(values), "Deployment"))

    config = load_config(env)

    assert config.worker_limit == 3
    assert config.cache_max_bytes == 3 * 2**30
    assert config.max_concurrent_checks == 2
    assert config.request_timeout == 12.5
    assert config.metrics_port == 8081
    assert str(config.cache_dir) == "/var/cache/wasmflow"


def test_azure_global_images_replace_the_operator_and_worker_images(helm: Helm) -> None:
    objects = helm.template(
        {
            "global": {
                "azure": {"images": {"wasmflow": {"registry": "myacr.azurecr.io", "image": "wf", "digest": DIGEST}}}
            }
        }
    )

    assert _operator(objects)["image"] == f"myacr.azurecr.io/wf@{DIGEST}"
    assert container_env(only(objects, "Deployment"))["WASMFLOW_WORKER_IMAGE"] == f"myacr.azurecr.io/wf@{DIGEST}"


def test_azure_worker_image_is_mapped_on_its_own(helm: Helm) -> None:
    images = {
        "wasmflow": {"registry": "myacr.azurecr.io", "image": "wf", "digest": DIGEST},
        "worker": {"registry": "myacr.azurecr.io", "image": "wf-worker", "digest": OTHER_DIGEST},
    }
    objects = helm.template({"global": {"azure": {"images": images}}})

    assert _operator(objects)["image"] == f"myacr.azurecr.io/wf@{DIGEST}"
    env = container_env(only(objects, "Deployment"))
    assert env["WASMFLOW_WORKER_IMAGE"] == f"myacr.azurecr.io/wf-worker@{OTHER_DIGEST}"


def test_watching_a_list_of_namespaces_renders_roles_there_and_namespace_flags(helm: Helm) -> None:
    objects = helm.template({"watch": {"allNamespaces": False, "namespaces": ["plant-a", "plant-b"]}})
    args = _operator(objects)["args"]

    assert kinds(objects) == ["Deployment", "Role", "Role", "RoleBinding", "RoleBinding", "Service", "ServiceAccount"]
    assert {o["metadata"]["namespace"] for o in objects if o["kind"] in ("Role", "RoleBinding")} == {
        "plant-a",
        "plant-b",
    }
    assert "--namespace=plant-a" in args
    assert "--namespace=plant-b" in args
    assert "--all-namespaces" not in args


def test_watching_no_listed_namespace_means_the_release_namespace(helm: Helm) -> None:
    objects = helm.template({"watch": {"allNamespaces": False}}, namespace="edge")

    assert only(objects, "Role")["metadata"]["namespace"] == "edge"
    assert "--namespace=edge" in _operator(objects)["args"]


def test_cluster_scoped_rbac_names_carry_the_release_namespace(helm: Helm) -> None:
    """Two cluster-wide releases named alike in two namespaces must not fight over one ClusterRole."""
    in_a, in_b = helm.template(namespace="plant-a"), helm.template(namespace="plant-b")

    for objects, ns in ((in_a, "plant-a"), (in_b, "plant-b")):
        role, binding = only(objects, "ClusterRole"), only(objects, "ClusterRoleBinding")
        assert role["metadata"]["name"] == f"wf-wasmflow-{ns}"
        assert binding["metadata"]["name"] == f"wf-wasmflow-{ns}"
        assert binding["roleRef"]["name"] == f"wf-wasmflow-{ns}"
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "wf-wasmflow", "namespace": ns}]


def test_namespaced_roles_keep_the_release_fullname(helm: Helm) -> None:
    objects = helm.template({"watch": {"allNamespaces": False, "namespaces": ["plant-a"]}}, namespace="edge")

    assert only(objects, "Role")["metadata"]["name"] == "wf-wasmflow"
    binding = only(objects, "RoleBinding")
    assert binding["metadata"]["name"] == "wf-wasmflow"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "wf-wasmflow"}


def _volumes(objects: list[Any]) -> dict[str, Any]:
    return {v["name"]: v for v in only(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]}


def test_no_registry_ca_bundle_means_no_ca_env_and_no_ca_volume(helm: Helm) -> None:
    objects = helm.template()

    assert "WASMFLOW_REGISTRY_CA_FILE" not in container_env(only(objects, "Deployment"))
    assert "registry-ca" not in _volumes(objects)
    assert "registry-ca" not in {m["name"] for m in _operator(objects)["volumeMounts"]}


@pytest.mark.parametrize(
    ("value", "source"),
    [
        ({"secretName": "registry-ca", "key": "bundle.pem"}, {"secret": {"secretName": "registry-ca"}}),
        ({"configMapName": "registry-ca", "key": "bundle.pem"}, {"configMap": {"name": "registry-ca"}}),
    ],
)
def test_a_registry_ca_bundle_is_mounted_read_only_and_named_by_the_ca_env(
    helm: Helm, value: dict[str, str], source: dict[str, dict[str, str]]
) -> None:
    objects = helm.template({"registry": {"caBundle": value}})

    ((kind, reference),) = source.items()
    volume = _volumes(objects)["registry-ca"]
    assert volume[kind] == {**reference, "items": [{"key": "bundle.pem", "path": "bundle.pem"}]}
    (mount,) = [m for m in _operator(objects)["volumeMounts"] if m["name"] == "registry-ca"]
    assert mount["readOnly"] is True
    ca_file = container_env(only(objects, "Deployment"))["WASMFLOW_REGISTRY_CA_FILE"]
    assert ca_file == f"{mount['mountPath']}/bundle.pem"


def test_a_registry_ca_bundle_from_both_a_secret_and_a_configmap_is_refused(helm: Helm) -> None:
    result = helm.run(
        "template",
        "wf",
        str(CHART),
        "--set",
        "registry.caBundle.secretName=a",
        "--set",
        "registry.caBundle.configMapName=b",
    )

    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert "caBundle" in result.stderr


def test_rbac_grants_no_wildcards_and_no_delete(helm: Helm) -> None:
    rules = only(helm.template(), "ClusterRole")["rules"]

    for rule in rules:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        assert "delete" not in rule["verbs"]
        assert "deletecollection" not in rule["verbs"]
    secrets = [r for r in rules if "secrets" in r["resources"]]
    assert secrets == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]


def test_every_rbac_rule_says_why_in_a_comment() -> None:
    lines = (CHART / "templates" / "rbac.yaml").read_text().splitlines()
    rules = [i for i, line in enumerate(lines) if line.strip().startswith("- apiGroups:")]

    assert len(rules) >= 8
    assert [i + 1 for i in rules if not lines[i - 1].strip().startswith("#")] == []


def test_every_default_value_is_described_by_the_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    assert _undescribed(values, schema, schema) == []


def _undescribed(values: Any, node: dict[str, Any], root: dict[str, Any], path: str = "") -> list[str]:
    if "$ref" in node:
        node = root["definitions"][node["$ref"].rsplit("/", 1)[1]]
    if not isinstance(values, dict) or "properties" not in node:
        return []
    missing = []
    for key, value in values.items():
        child = node["properties"].get(key)
        if child is None:
            missing.append(f"{path}{key}")
        else:
            missing += _undescribed(value, child, root, f"{path}{key}.")
    return missing


def test_chart_crds_are_the_generated_ones() -> None:
    """`make manifests` copies crds/ into the chart; a model change without it fails here."""
    chart_crds = {path.name: yaml.safe_load(path.read_text()) for path in sorted((CHART / "crds").glob("*.yaml"))}

    assert chart_crds == crds()


def test_plain_http_credential_hosts_reach_the_controller_only_when_listed(helm: Helm) -> None:
    assert "WASMFLOW_REGISTRY_PLAIN_HTTP_CREDENTIAL_HOSTS" not in container_env(only(helm.template(), "Deployment"))
    objects = helm.template({"registry": {"plainHttpCredentialHosts": ["registry.plant:5000", "mirror.plant"]}})
    env = container_env(only(objects, "Deployment"))
    assert env["WASMFLOW_REGISTRY_PLAIN_HTTP_CREDENTIAL_HOSTS"] == "registry.plant:5000,mirror.plant"
