"""`helm install` into the real API server, then the controller run with the chart's ServiceAccount and nothing else.

The controller authenticates with a token the TokenRequest API issues for the chart's ServiceAccount, so every call
it makes is judged by exactly the Roles the chart created: reconciling a WasmModule from a registry that needs a pull
secret, one from a ConfigMap, and a Dataflow (its ConfigMap, Deployment and Service, status, Events) proves they are
enough; the refusals below prove they are no more. There is no kubelet: the assertions are on the API objects.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import (
    ApiClient,
    ApiextensionsV1Api,
    AppsV1Api,
    CoreV1Api,
    CustomObjectsApi,
    RbacAuthorizationV1Api,
    V1ConfigMap,
    V1Container,
    V1ObjectMeta,
    V1Pod,
    V1PodSpec,
    V1Secret,
)
from kubernetes.client.exceptions import ApiException

from tests.chart_env import (
    Helm,
    Release,
    container_env,
    deployed_operator,
    install,
    new_client,
    plain,
    service_account_kubeconfig,
    uninstall,
)
from tests.components.engine.wat import operator as wat_operator
from tests.conftest import fresh_namespace
from tests.integration.conftest import wait_until
from tests.services import AuthRegistry, KubeEnv
from wasmflow.oci import Access, Credentials, push_component
from wasmflow.oci.digests import sha256_digest
from wasmflow.operator import runner
from wasmflow.operator.config import load_config

GROUP, VERSION = "wasmflow.io", "v1alpha1"


@pytest.fixture
def watched(kube_client: ApiClient) -> Iterator[str]:
    """A second fresh namespace: the one the release watches (the release itself lives in ``namespace``)."""
    with fresh_namespace(kube_client, "w") as name:
        yield name


@pytest.fixture
def release(helm: Helm, kube: KubeEnv, namespace: str, watched: str) -> Iterator[Release]:
    """The chart installed in ``namespace``, watching ``watched`` only (Roles there, no ClusterRole)."""
    name = "wf"
    install(helm, kube, name, namespace, "watch.allNamespaces=false", f"watch.namespaces={{{watched}}}")
    try:
        yield Release(name, namespace, watched, service_account=f"{name}-wasmflow", fullname=f"{name}-wasmflow")
    finally:
        uninstall(helm, kube, name, namespace)


@pytest.fixture
def operator_kubeconfig(kube: KubeEnv, kube_client: ApiClient, release: Release, tmp_path: Path) -> Path:
    return service_account_kubeconfig(kube, kube_client, release, tmp_path / "operator.kubeconfig")


@pytest.fixture
def as_operator(operator_kubeconfig: Path) -> Iterator[ApiClient]:
    """An API client authenticated as the chart's ServiceAccount."""
    client = new_client(operator_kubeconfig)
    try:
        yield client
    finally:
        client.close()  # type: ignore[no-untyped-call]


@pytest.fixture
def chart_controller(
    kube_client: ApiClient,
    release: Release,
    operator_kubeconfig: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, str]]:
    """The real controller in a thread, configured as the chart's pod: its env, its watch flags, its identity.

    Only the cache directory (an emptyDir in the pod) and the metrics port (taken on this shared machine) differ.
    """
    deployment = deployed_operator(kube_client, release)
    env = container_env(deployment)
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    namespaces = tuple(a.split("=", 1)[1] for a in args if a.startswith("--namespace="))
    config = dataclasses.replace(load_config(env), cache_dir=tmp_path / "cache", metrics_port=0)
    monkeypatch.setenv("KUBECONFIG", str(operator_kubeconfig))
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(
        target=runner.run,
        args=(config, runner.Scope(clusterwide="--all-namespaces" in args, namespaces=namespaces)),
        kwargs={"stop_flag": stop, "ready_flag": ready, "liveness_endpoint": None},
        daemon=True,
    )
    thread.start()
    assert ready.wait(60), "the controller did not start"
    try:
        yield env
    finally:
        stop.set()
        thread.join(30)


# ------------------------------------------------------------------------------------------------- objects


def push_with_credentials(registry: AuthRegistry, component: bytes) -> str:
    reference = f"{registry.host}/chart-tests/{uuid.uuid4().hex[:10]}:1.0"
    access = Access(insecure=True, credentials=Credentials(registry.username, registry.password))
    asyncio.run(push_component(reference, component, access=access))
    return reference


def pull_secret(kube_client: ApiClient, namespace: str, name: str, registry: AuthRegistry) -> None:
    auth = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    config = {"auths": {registry.host: {"username": registry.username, "password": registry.password, "auth": auth}}}
    CoreV1Api(kube_client).create_namespaced_secret(
        namespace,
        V1Secret(
            metadata=V1ObjectMeta(name=name),
            type="kubernetes.io/dockerconfigjson",
            string_data={".dockerconfigjson": json.dumps(config)},
        ),
    )


def create(kube_client: ApiClient, namespace: str, plural: str, kind: str, name: str, spec: dict[str, Any]) -> None:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}, "spec": spec}
    CustomObjectsApi(kube_client).create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)


def get(kube_client: ApiClient, namespace: str, plural: str, name: str) -> dict[str, Any]:
    body = CustomObjectsApi(kube_client).get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
    assert isinstance(body, dict)
    return body


def items(listed: object) -> list[Any]:
    assert isinstance(listed, dict)
    found: list[Any] = listed["items"]
    return found


def condition(body: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in (body.get("status") or {}).get("conditions", []) if c["type"] == type_), None)


def judged(body: dict[str, Any]) -> bool:
    """Status written for the current generation (kstatus: observedGeneration equals generation)."""
    return bool((body.get("status") or {}).get("observedGeneration") == body["metadata"]["generation"])


def ready(kube_client: ApiClient, namespace: str, plural: str, name: str) -> dict[str, Any] | None:
    body = get(kube_client, namespace, plural, name)
    found = condition(body, "Ready")
    return body if found and found["status"] == "True" and judged(body) else None


DATAFLOW = {
    "endpoints": {"plant": {"mqtt": {"url": "mqtt://mosquitto.plant:1883", "qos": 1}}},
    "nodes": [
        {"name": "sensors", "type": "source", "endpoint": "plant", "topic": "sensors/+/temperature"},
        {"name": "to-celsius", "type": "map", "module": "to-celsius"},
        {"name": "in-range", "type": "filter", "module": "in-range"},
        {"name": "readings", "type": "sink", "endpoint": "plant", "topic": "plant/readings"},
    ],
    "edges": [
        {"from": "sensors", "to": "to-celsius"},
        {"from": "to-celsius", "to": "in-range"},
        {"from": "in-range", "to": "readings"},
    ],
}


# ------------------------------------------------------------------------------------------------- tests


def test_helm_install_creates_what_the_chart_promises(kube_client: ApiClient, release: Release) -> None:
    core, rbac = CoreV1Api(kube_client), RbacAuthorizationV1Api(kube_client)

    deployment = deployed_operator(kube_client, release)
    assert deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == release.service_account
    assert core.read_namespaced_service_account(release.service_account, release.namespace)
    service = plain(kube_client, core.read_namespaced_service(f"{release.fullname}-metrics", release.namespace))
    assert [p["port"] for p in service["spec"]["ports"]] == [8081]
    role = plain(kube_client, rbac.read_namespaced_role(release.fullname, release.watched))
    assert {r for rule in role["rules"] for r in rule["resources"]} >= {"wasmmodules", "dataflows", "deployments"}
    binding = plain(kube_client, rbac.read_namespaced_role_binding(release.fullname, release.watched))
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": release.service_account, "namespace": release.namespace}
    ]
    cluster_roles = rbac.list_cluster_role(label_selector="app.kubernetes.io/instance=" + release.name).items
    assert cluster_roles == []
    established = {
        crd["metadata"]["name"]: {c["type"]: c["status"] for c in crd["status"]["conditions"]}.get("Established")
        for crd in plain(kube_client, ApiextensionsV1Api(kube_client).list_custom_resource_definition())["items"]
    }
    assert established["wasmmodules.wasmflow.io"] == "True"
    assert established["dataflows.wasmflow.io"] == "True"


def test_the_operator_with_only_the_charts_rbac_reconciles_modules_and_a_dataflow(
    kube_client: ApiClient,
    release: Release,
    chart_controller: dict[str, str],
    registry_auth: AuthRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    ns = release.watched
    # A map module from a registry that needs the pull secret (Secrets: get) ...
    map_component = wat_operator("map")
    pull_secret(kube_client, ns, "registry-creds", registry_auth)
    reference = push_with_credentials(registry_auth, map_component)
    source = {"oci": {"reference": reference, "insecure": True, "secretRef": {"name": "registry-creds"}}}
    create(kube_client, ns, "wasmmodules", "WasmModule", "to-celsius", {"source": source, "operator": "map"})
    # ... and a filter module from a ConfigMap (ConfigMaps: get).
    filter_component = wat_operator("filter")
    CoreV1Api(kube_client).create_namespaced_config_map(
        ns,
        V1ConfigMap(
            metadata=V1ObjectMeta(name="in-range-wasm"),
            binary_data={"module.wasm": base64.b64encode(filter_component).decode()},
        ),
    )
    spec = {"source": {"configMapRef": {"name": "in-range-wasm"}}, "operator": "filter"}
    create(kube_client, ns, "wasmmodules", "WasmModule", "in-range", spec)

    module = wait_until(
        lambda: ready(kube_client, ns, "wasmmodules", "to-celsius"), what="to-celsius Ready", timeout=90
    )
    assert module["status"]["artifact"]["digest"] == sha256_digest(map_component)
    wait_until(lambda: ready(kube_client, ns, "wasmmodules", "in-range"), what="in-range Ready", timeout=90)

    create(kube_client, ns, "dataflows", "Dataflow", "plant", DATAFLOW)
    apps, core = AppsV1Api(kube_client), CoreV1Api(kube_client)
    deployment = wait_until(
        lambda: next(iter(apps.list_namespaced_deployment(ns).items), None), what="the worker Deployment"
    )
    assert deployment.spec.template.spec.containers[0].image == chart_controller["WASMFLOW_WORKER_IMAGE"]
    assert core.list_namespaced_config_map(ns, label_selector="wasmflow.io/dataflow=plant").items
    assert core.list_namespaced_service(ns, label_selector="wasmflow.io/dataflow=plant").items
    dataflow = wait_until(
        lambda: (body := get(kube_client, ns, "dataflows", "plant")) and judged(body) and body, what="Dataflow status"
    )
    assert {m["name"]: m["digest"] for m in dataflow["status"]["modules"]} == {
        "to-celsius": sha256_digest(map_component),
        "in-range": sha256_digest(filter_component),
    }
    # No kubelet runs the workers, so the Dataflow waits for them, saying so.
    assert condition(dataflow, "Reconciling") is not None
    events = wait_until(
        lambda: CoreV1Api(kube_client).list_namespaced_event(ns).items, what="Events posted by the controller"
    )
    assert any(e.involved_object.kind == "WasmModule" for e in events)
    refused = [r.getMessage() for r in caplog.records if re.search(r"\b403\b|[Ff]orbidden", r.getMessage())]
    assert refused == []


def _set_role_rules(kube_client: ApiClient, release: Release, rules: list[dict[str, Any]]) -> None:
    """Replace the rules of the chart's Role in the watched namespace (as the admin, as a cluster admin would)."""
    RbacAuthorizationV1Api(kube_client).patch_namespaced_role(release.fullname, release.watched, {"rules": rules})


def _role_rules(kube_client: ApiClient, release: Release) -> list[dict[str, Any]]:
    role = plain(
        kube_client, RbacAuthorizationV1Api(kube_client).read_namespaced_role(release.fullname, release.watched)
    )
    rules: list[dict[str, Any]] = role["rules"]
    return rules


def _without_get(rules: list[dict[str, Any]], resource: str) -> list[dict[str, Any]]:
    """The rules without ``get`` on the core ``resource`` (a rule left with no verb is dropped)."""
    kept = []
    for rule in rules:
        core = rule.get("apiGroups") == [""] and resource in rule["resources"]
        verbs = [v for v in rule["verbs"] if not (core and v == "get")]
        if verbs:
            kept.append({**rule, "verbs": verbs})
    return kept


def _not_ready_because(kube_client: ApiClient, ns: str, name: str, reason: str) -> dict[str, Any] | None:
    body = get(kube_client, ns, "wasmmodules", name)
    found = condition(body, "Ready")
    return body if found and found["status"] == "False" and found["reason"] == reason and judged(body) else None


def _module_needing_a_secret(kube_client: ApiClient, ns: str, registry: AuthRegistry) -> str:
    pull_secret(kube_client, ns, "registry-creds", registry)
    reference = push_with_credentials(registry, wat_operator("map"))
    source = {"oci": {"reference": reference, "insecure": True, "secretRef": {"name": "registry-creds"}}}
    create(kube_client, ns, "wasmmodules", "WasmModule", "to-celsius", {"source": source, "operator": "map"})
    return "Secret 'registry-creds' (spec.source.oci.secretRef)"


def _module_from_a_config_map(kube_client: ApiClient, ns: str, registry: AuthRegistry) -> str:
    CoreV1Api(kube_client).create_namespaced_config_map(
        ns,
        V1ConfigMap(
            metadata=V1ObjectMeta(name="to-celsius-wasm"),
            binary_data={"module.wasm": base64.b64encode(wat_operator("map")).decode()},
        ),
    )
    spec = {"source": {"configMapRef": {"name": "to-celsius-wasm"}}, "operator": "map"}
    create(kube_client, ns, "wasmmodules", "WasmModule", "to-celsius", spec)
    return "ConfigMap 'to-celsius-wasm' (spec.source.configMapRef)"


@pytest.mark.parametrize(
    ("resource", "make_module"),
    [("secrets", _module_needing_a_secret), ("configmaps", _module_from_a_config_map)],
    ids=["pull-secret", "configmap"],
)
def test_a_module_the_controller_may_not_read_says_which_permission_is_missing_and_heals_once_granted(
    kube_client: ApiClient,
    release: Release,
    chart_controller: dict[str, str],
    registry_auth: AuthRegistry,
    resource: str,
    make_module: Callable[[ApiClient, str, AuthRegistry], str],
) -> None:
    ns, granted = release.watched, _role_rules(kube_client, release)
    _set_role_rules(kube_client, release, _without_get(granted, resource))

    where = make_module(kube_client, ns, registry_auth)

    module = wait_until(
        lambda: _not_ready_because(kube_client, ns, "to-celsius", "Forbidden"), what="Ready=False Forbidden"
    )
    message = condition(module, "Ready")["message"]  # type: ignore[index]
    assert f"may not get {where} in namespace {ns}" in message
    assert f"system:serviceaccount:{release.namespace}:{release.service_account}" in message
    assert f"the verb 'get' on '{resource}' in namespace {ns}" in message
    assert condition(module, "Reconciling")["reason"] == "ProgressingWithRetry"  # type: ignore[index]
    assert condition(module, "Stalled") is None

    _set_role_rules(kube_client, release, granted)

    healed = wait_until(lambda: ready(kube_client, ns, "wasmmodules", "to-celsius"), what="Ready once granted")
    assert healed["status"]["artifact"]["digest"] == sha256_digest(wat_operator("map"))


def _forbidden(call: Callable[[], object]) -> int:
    try:
        call()
    except ApiException as exc:
        return int(exc.status)
    return 200


@pytest.mark.parametrize(
    "what",
    [
        "list secrets in the watched namespace",
        "read a secret outside the watched namespace",
        "create a pod",
        "delete a worker deployment",
        "list wasmmodules in every namespace",
        "update a role to grant itself more",
        "read configmaps by listing them",
    ],
)
def test_calls_outside_the_charts_rbac_are_refused(
    kube_client: ApiClient, release: Release, as_operator: ApiClient, what: str
) -> None:
    core, apps, objects = CoreV1Api(as_operator), AppsV1Api(as_operator), CustomObjectsApi(as_operator)
    ns = release.watched
    calls: dict[str, Callable[[], object]] = {
        "list secrets in the watched namespace": lambda: core.list_namespaced_secret(ns),
        "read a secret outside the watched namespace": lambda: core.read_namespaced_secret("x", release.namespace),
        "create a pod": lambda: core.create_namespaced_pod(
            ns, V1Pod(metadata=V1ObjectMeta(name="p"), spec=V1PodSpec(containers=[V1Container(name="c", image="x")]))
        ),
        "delete a worker deployment": lambda: apps.delete_namespaced_deployment("anything", ns),
        "list wasmmodules in every namespace": lambda: objects.list_cluster_custom_object(
            GROUP, VERSION, "wasmmodules"
        ),
        "update a role to grant itself more": lambda: RbacAuthorizationV1Api(as_operator).patch_namespaced_role(
            release.fullname, ns, {"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}
        ),
        "read configmaps by listing them": lambda: core.list_namespaced_config_map(ns),
    }

    assert _forbidden(calls[what]) == 403


def test_the_charts_identity_can_do_what_the_controller_needs_in_the_watched_namespace(
    release: Release, as_operator: ApiClient
) -> None:
    objects = CustomObjectsApi(as_operator)

    assert items(objects.list_namespaced_custom_object(GROUP, VERSION, release.watched, "wasmmodules")) == []
    assert items(objects.list_namespaced_custom_object(GROUP, VERSION, release.watched, "dataflows")) == []
    assert AppsV1Api(as_operator).list_namespaced_deployment(release.watched).items == []
    assert (
        _forbidden(lambda: objects.list_namespaced_custom_object(GROUP, VERSION, release.namespace, "dataflows")) == 403
    )


def test_a_cluster_wide_install_can_list_our_kinds_everywhere_but_no_secrets(
    helm: Helm, kube: KubeEnv, kube_client: ApiClient, namespace: str, tmp_path: Path
) -> None:
    name = f"wf{uuid.uuid4().hex[:6]}"
    install(helm, kube, name, namespace)
    try:
        cluster = Release(name, namespace, "", service_account=f"{name}-wasmflow", fullname=f"{name}-wasmflow")
        path = service_account_kubeconfig(kube, kube_client, cluster, tmp_path / "cluster.kubeconfig")
        client = new_client(path)
        try:
            objects, core = CustomObjectsApi(client), CoreV1Api(client)
            assert isinstance(items(objects.list_cluster_custom_object(GROUP, VERSION, "wasmmodules")), list)
            assert isinstance(items(objects.list_cluster_custom_object(GROUP, VERSION, "dataflows")), list)
            assert _forbidden(core.list_secret_for_all_namespaces) == 403
            assert _forbidden(core.list_namespace) == 403
        finally:
            client.close()  # type: ignore[no-untyped-call]
        assert RbacAuthorizationV1Api(kube_client).read_cluster_role(f"{cluster.fullname}-{namespace}").rules
    finally:
        uninstall(helm, kube, name, namespace)


def test_two_cluster_wide_releases_of_one_name_in_two_namespaces_install_side_by_side(
    helm: Helm, kube: KubeEnv, kube_client: ApiClient, namespace: str, watched: str
) -> None:
    name = f"wf{uuid.uuid4().hex[:6]}"
    install(helm, kube, name, namespace)
    try:
        install(helm, kube, name, watched)
        try:
            rbac = RbacAuthorizationV1Api(kube_client)
            for ns in (namespace, watched):
                binding = plain(kube_client, rbac.read_cluster_role_binding(f"{name}-wasmflow-{ns}"))
                assert binding["roleRef"]["name"] == f"{name}-wasmflow-{ns}"
                assert binding["subjects"] == [{"kind": "ServiceAccount", "name": f"{name}-wasmflow", "namespace": ns}]
        finally:
            uninstall(helm, kube, name, watched)
    finally:
        uninstall(helm, kube, name, namespace)


def test_the_api_server_accepts_the_operator_pod_with_a_registry_ca_bundle(
    helm: Helm, kube: KubeEnv, kube_client: ApiClient, namespace: str
) -> None:
    name = f"wf{uuid.uuid4().hex[:6]}"
    install(helm, kube, name, namespace, "registry.caBundle.configMapName=registry-ca", "registry.caBundle.key=ca.pem")
    try:
        release = Release(name, namespace, "", service_account=f"{name}-wasmflow", fullname=f"{name}-wasmflow")
        pod = deployed_operator(kube_client, release)["spec"]["template"]["spec"]
        volume = next(v for v in pod["volumes"] if v["name"] == "registry-ca")
        assert volume["configMap"]["name"] == "registry-ca"
        assert container_env({"spec": {"template": {"spec": pod}}})["WASMFLOW_REGISTRY_CA_FILE"].endswith("/ca.pem")
    finally:
        uninstall(helm, kube, name, namespace)
