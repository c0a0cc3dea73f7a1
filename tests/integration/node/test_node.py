"""The one-node cluster really runs things: pods in containers, Deployments through ReplicaSets, and garbage collection
by owner references. Images come from the node's own runtime (``imagePullPolicy: Never``): no registry is involved."""

from __future__ import annotations

import ipaddress
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import (
    ApiClient,
    AppsV1Api,
    CoreV1Api,
    V1Container,
    V1DeleteOptions,
    V1Deployment,
    V1DeploymentSpec,
    V1LabelSelector,
    V1ObjectMeta,
    V1Pod,
    V1PodSpec,
    V1PodTemplateSpec,
)
from kubernetes.client.exceptions import ApiException

from tests.integration.conftest import wait_until
from tests.kube_env import HACK, pinned_kube_version
from tests.node_env import NodeEnv
from tests.services import KubeEnv

pytestmark = pytest.mark.integration

# A pod start on this node is a second or two; the first one also creates the bridge's first veth and the image's
# snapshot.
_POD_TIMEOUT_S = 90


def _container(node: NodeEnv, script: str) -> V1Container:
    return V1Container(
        name="main", image=node.busybox_image, image_pull_policy="Never", command=["/bin/sh", "-c", script]
    )


def _running(core: CoreV1Api, namespace: str, name: str) -> V1Pod | None:
    pod = core.read_namespaced_pod(name, namespace)
    return pod if pod.status.phase == "Running" else None


def _logs_containing(core: CoreV1Api, namespace: str, name: str, text: str) -> str:
    log: str = core.read_namespaced_pod_log(name, namespace)
    return log if text in log else ""


def _events(core: CoreV1Api, namespace: str) -> str:
    """The namespace's events, for a failure message."""
    return "; ".join(f"{e.reason}: {e.message}" for e in core.list_namespaced_event(namespace).items)


def _gone(read: Any, *args: str) -> bool:
    try:
        read(*args)
    except ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


def test_the_node_is_registered_ready_with_its_runtime(node: NodeEnv, kube_client: ApiClient) -> None:
    read = CoreV1Api(kube_client).read_node(node.name)
    ready = {c.type: c.status for c in read.status.conditions}["Ready"]
    assert ready == "True"
    assert {"type": "InternalIP", "address": node.ip} in [a.to_dict() for a in read.status.addresses]
    assert read.status.node_info.container_runtime_version.startswith("containerd://")
    assert read.status.node_info.kubelet_version == pinned_kube_version()
    # Nothing of the node's at the root of any cgroup hierarchy (kubelet's cgroupsPerQOS: false put pods there).
    assert not [p for p in Path("/sys/fs/cgroup").glob("*/*") if p.name in ("kubepods", "k8s.io", "kubepods.slice")]


def test_a_pod_runs_in_a_container_and_kubectl_reads_its_logs(
    node: NodeEnv, kube: KubeEnv, kube_client: ApiClient, node_namespace: str
) -> None:
    core = CoreV1Api(kube_client)
    marker = uuid.uuid4().hex
    pod = V1Pod(
        metadata=V1ObjectMeta(name="hello"),
        spec=V1PodSpec(
            containers=[
                _container(node, f"echo hello {marker}; echo uid=$(id -u); cat /proc/self/cgroup; exec sleep 3600")
            ],
            termination_grace_period_seconds=1,
        ),
    )
    core.create_namespaced_pod(node_namespace, pod)
    running = wait_until(
        lambda: _running(core, node_namespace, "hello"), what="pod hello Running", timeout=_POD_TIMEOUT_S
    )
    assert running.spec.node_name == node.name
    assert ipaddress.ip_address(running.status.pod_ip) in ipaddress.ip_network(f"{node.ip}/24", strict=False)

    kubectl = subprocess.run(
        [str(HACK / "build-kube.sh"), "--print-path", "kubectl"], capture_output=True, text=True, check=True
    ).stdout.strip()

    def logs() -> str:
        result = subprocess.run(
            [kubectl, "--kubeconfig", str(kube.kubeconfig), "-n", node_namespace, "logs", "hello"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        return result.stdout if marker in result.stdout else ""

    out = wait_until(logs, what="the pod's logs through kubectl", timeout=30)
    assert f"hello {marker}" in out
    assert "uid=0" in out
    # In every hierarchy the container's cgroup is below the node's cgroupRoot (below this test's own cgroup).
    cgroups = [line.split(":", 2)[2] for line in out.splitlines() if line[:1].isdigit() and line.count(":") >= 2]
    assert len(cgroups) >= 2
    assert all(path.startswith(node.cgroup_root + "/kubepods/") for path in cgroups), cgroups


def test_a_deployment_gets_a_replicaset_and_running_pods(
    node: NodeEnv, kube_client: ApiClient, node_namespace: str
) -> None:
    apps, core = AppsV1Api(kube_client), CoreV1Api(kube_client)
    labels = {"app": "sleeper"}
    deployment = apps.create_namespaced_deployment(
        node_namespace,
        V1Deployment(
            metadata=V1ObjectMeta(name="sleeper"),
            spec=V1DeploymentSpec(
                replicas=2,
                selector=V1LabelSelector(match_labels=labels),
                template=V1PodTemplateSpec(
                    metadata=V1ObjectMeta(labels=labels),
                    spec=V1PodSpec(
                        containers=[_container(node, "exec sleep 3600")], termination_grace_period_seconds=1
                    ),
                ),
            ),
        ),
    )
    replica_sets = wait_until(
        lambda: apps.list_namespaced_replica_set(node_namespace).items, what="the Deployment's ReplicaSet"
    )
    assert len(replica_sets) == 1
    owner = replica_sets[0].metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid) == ("Deployment", "sleeper", deployment.metadata.uid)

    def running_pods() -> list[V1Pod]:
        pods = core.list_namespaced_pod(node_namespace, label_selector="app=sleeper").items
        return pods if len(pods) == 2 and all(p.status.phase == "Running" for p in pods) else []

    pods = wait_until(running_pods, what="two Running pods", timeout=_POD_TIMEOUT_S)
    for pod in pods:
        assert pod.metadata.owner_references[0].uid == replica_sets[0].metadata.uid
        assert pod.spec.node_name == node.name
    wait_until(
        lambda: (apps.read_namespaced_deployment("sleeper", node_namespace).status.available_replicas or 0) == 2,
        what="the Deployment's status: 2 available",
        timeout=_POD_TIMEOUT_S,
    )


def test_deleting_a_deployment_garbage_collects_its_replicaset_and_pods(
    node: NodeEnv, kube_client: ApiClient, node_namespace: str
) -> None:
    apps, core = AppsV1Api(kube_client), CoreV1Api(kube_client)
    labels = {"app": "doomed"}
    apps.create_namespaced_deployment(
        node_namespace,
        V1Deployment(
            metadata=V1ObjectMeta(name="doomed"),
            spec=V1DeploymentSpec(
                replicas=1,
                selector=V1LabelSelector(match_labels=labels),
                template=V1PodTemplateSpec(
                    metadata=V1ObjectMeta(labels=labels),
                    spec=V1PodSpec(
                        containers=[_container(node, "exec sleep 3600")], termination_grace_period_seconds=1
                    ),
                ),
            ),
        ),
    )
    pods = wait_until(
        lambda: [p for p in core.list_namespaced_pod(node_namespace).items if p.status.phase == "Running"],
        what="the Deployment's pod Running",
        timeout=_POD_TIMEOUT_S,
    )
    replica_set = apps.list_namespaced_replica_set(node_namespace).items[0].metadata.name

    # Background propagation: the API deletes the Deployment at once; the garbage collector deletes its dependents.
    apps.delete_namespaced_deployment("doomed", node_namespace, body=V1DeleteOptions(propagation_policy="Background"))
    wait_until(
        lambda: _gone(apps.read_namespaced_replica_set, replica_set, node_namespace),
        what="the ReplicaSet garbage-collected",
    )
    wait_until(
        lambda: _gone(core.read_namespaced_pod, pods[0].metadata.name, node_namespace),
        what="the pod garbage-collected and stopped",
        timeout=_POD_TIMEOUT_S,
    )


def test_a_deleted_namespace_is_finalized(node: NodeEnv, kube_client: ApiClient) -> None:
    core = CoreV1Api(kube_client)
    name = f"gone-{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": name}})
    core.create_namespaced_config_map(name, {"metadata": {"name": "data"}, "data": {"k": "v"}})
    core.delete_namespace(name)
    wait_until(lambda: _gone(core.read_namespace, name), what=f"namespace {name} finalized and removed", timeout=60)


def test_restricted_pod_security_is_enforced_by_admission_and_a_restricted_pod_runs_as_65532(
    node: NodeEnv, kube: KubeEnv, kube_client: ApiClient, node_namespace: str
) -> None:
    core = CoreV1Api(kube_client)
    core.patch_namespace(node_namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    # The server's own PodSecurity admission refuses a pod that is not restricted (here: may run as root).
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(
            node_namespace,
            V1Pod(metadata=V1ObjectMeta(name="loose"), spec=V1PodSpec(containers=[_container(node, "true")])),
        )
    assert refused.value.status == 403
    assert "violates PodSecurity" in refused.value.body

    restricted = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "tight"},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "runAsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "main",
                    "image": node.busybox_image,
                    "imagePullPolicy": "Never",
                    "command": [
                        "/bin/sh",
                        "-c",
                        "echo uid=$(id -u) gid=$(id -g); touch /probe 2>/dev/null && echo root-writable"
                        " || echo root-read-only; grep -E '^(CapEff|Seccomp):' /proc/self/status; exec sleep 3600",
                    ],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }
    core.create_namespaced_pod(node_namespace, restricted)
    wait_until(lambda: _running(core, node_namespace, "tight"), what="pod tight Running", timeout=_POD_TIMEOUT_S)
    out = wait_until(
        lambda: _logs_containing(core, node_namespace, "tight", "Seccomp:"),
        what="the restricted pod's logs",
        timeout=30,
    )
    assert "uid=65532 gid=65532" in out
    assert "root-read-only" in out
    assert "CapEff:\t0000000000000000" in out
    assert "Seccomp:\t2" in out  # SECCOMP_MODE_FILTER: containerd's default profile


def test_the_project_image_runs_on_the_node_as_its_own_user_under_restricted_pod_security(
    node: NodeEnv, project_image: str, kube_client: ApiClient, node_namespace: str
) -> None:
    core = CoreV1Api(kube_client)
    core.patch_namespace(node_namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "wasmflow"},
        "spec": {
            "restartPolicy": "Never",
            # No runAsUser: the image's own numeric USER must satisfy runAsNonRoot.
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "main",
                    "image": project_image,
                    "imagePullPolicy": "Never",
                    "command": ["/bin/sh", "-c", "echo uid=$(id -u); exec wasmflow worker --help"],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }
    core.create_namespaced_pod(node_namespace, pod)
    try:
        wait_until(
            lambda: core.read_namespaced_pod("wasmflow", node_namespace).status.phase in ("Succeeded", "Failed"),
            what="the wasmflow pod finished",
            timeout=_POD_TIMEOUT_S,
        )
    except pytest.fail.Exception as timeout:
        raise AssertionError(f"{timeout}; events: {_events(core, node_namespace)}") from None
    finished = core.read_namespaced_pod("wasmflow", node_namespace)
    log = core.read_namespaced_pod_log("wasmflow", node_namespace)
    assert finished.status.phase == "Succeeded", log
    assert "uid=65532" in log
    assert "Usage: wasmflow worker" in log
