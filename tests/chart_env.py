"""The chart driven by the real helm binary (built from its Go module by hack/build-kube.sh), and its identity.

Shared by the chart tests (tests/integration/chart) and the image tests (tests/e2e): Helm with a private home,
rendering and installing charts/wasmflow, and tokens for the chart's ServiceAccount from the TokenRequest API.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import config as kube_config
from kubernetes.client import ApiClient, AppsV1Api, AuthenticationV1TokenRequest, CoreV1Api, V1TokenRequestSpec

from tests.services import KubeEnv

ROOT = Path(__file__).resolve().parent.parent
HACK = ROOT / "hack"
CHART = ROOT / "charts" / "wasmflow"


@dataclass(frozen=True)
class Helm:
    """The helm binary, run with no repositories, plugins or cache of the user's (a private HELM_* home)."""

    binary: Path
    home: Path

    def run(self, *args: str, kubeconfig: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = {
            "HOME": str(self.home),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
            "PATH": "/usr/bin:/bin",
        }
        if kubeconfig is not None:
            env["KUBECONFIG"] = str(kubeconfig)
        return subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, check=False, timeout=timeout, env=env
        )

    def template(self, values: Mapping[str, Any] | None = None, *args: str, namespace: str = "wasmflow") -> list[Any]:
        """``helm template`` of the chart with ``values`` (a values file, as a user passes it): the rendered objects."""
        result = self.run("template", "wf", str(CHART), "--namespace", namespace, *self._values(values), *args)
        assert result.returncode == 0, result.stderr
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    def _values(self, values: Mapping[str, Any] | None) -> list[str]:
        if not values:
            return []
        text = yaml.safe_dump(dict(values))
        path = self.home / f"values-{abs(hash(json.dumps(values, sort_keys=True)))}.yaml"
        path.write_text(text, encoding="utf-8")
        return ["--values", str(path)]


def find_helm(home: Path) -> Helm:
    """The pinned helm (built on first use, cached per user)."""
    result = subprocess.run(
        [str(HACK / "build-kube.sh"), "--print-path", "helm"], capture_output=True, text=True, check=False, timeout=3600
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return Helm(binary=Path(result.stdout.strip().splitlines()[-1]), home=home)


@dataclass(frozen=True)
class Release:
    """A chart release: where it lives, what it watches, and its ServiceAccount."""

    name: str
    namespace: str
    watched: str
    service_account: str
    fullname: str


def install(helm: Helm, kube: KubeEnv, name: str, namespace: str, *set_values: str) -> None:
    args = [a for value in set_values for a in ("--set", value)]
    result = helm.run("install", name, str(CHART), "--namespace", namespace, *args, kubeconfig=kube.kubeconfig)
    assert result.returncode == 0, result.stderr


def uninstall(helm: Helm, kube: KubeEnv, name: str, namespace: str) -> None:
    result = helm.run("uninstall", name, "--namespace", namespace, kubeconfig=kube.kubeconfig)
    assert result.returncode == 0, result.stderr


def plain(kube_client: ApiClient, obj: object) -> dict[str, Any]:
    """An API object as the JSON the server sent (the client's models make every field optional)."""
    body: dict[str, Any] = kube_client.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
    return body


def new_client(kubeconfig: Path) -> ApiClient:
    client: ApiClient = kube_config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    return client


def service_account_token(kube_client: ApiClient, release: Release) -> str:
    """A token for the chart's ServiceAccount, issued by the TokenRequest API (what the kubelet mounts in the pod)."""
    request = AuthenticationV1TokenRequest(spec=V1TokenRequestSpec(audiences=[], expiration_seconds=3600))
    issued = CoreV1Api(kube_client).create_namespaced_service_account_token(
        release.service_account, release.namespace, request
    )
    token: str = plain(kube_client, issued)["status"]["token"]
    return token


def service_account_kubeconfig(kube: KubeEnv, kube_client: ApiClient, release: Release, path: Path) -> Path:
    """A kubeconfig whose user is the chart's ServiceAccount."""
    cluster = {
        "server": kube.server,
        "certificate-authority-data": base64.b64encode(kube.ca_file.read_bytes()).decode(),
    }
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": cluster}],
        "users": [{"name": "operator", "user": {"token": service_account_token(kube_client, release)}}],
        "contexts": [{"name": "operator", "context": {"cluster": "test", "user": "operator"}}],
        "current-context": "operator",
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    path.chmod(0o600)
    return path


def deployed_operator(kube_client: ApiClient, release: Release) -> dict[str, Any]:
    """The operator Deployment as the API server stores it."""
    return plain(kube_client, AppsV1Api(kube_client).read_namespaced_deployment(release.fullname, release.namespace))


def only(objects: Iterable[Any], kind: str, name: str | None = None) -> dict[str, Any]:
    """The one object of ``kind`` (and ``name``)."""
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    result: dict[str, Any] = found[0]
    return result


def kinds(objects: Iterable[Any]) -> list[str]:
    return sorted(o["kind"] for o in objects)


def container_env(deployment: Mapping[str, Any]) -> dict[str, str]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container["env"]}
