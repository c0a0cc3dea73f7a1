"""Registry credentials never cross the network in clear unless someone chose it for that host (issue 16, case 10).

``insecure: true`` plus a ``secretRef`` used to send the Secret's credentials over plain HTTP to whatever host the
reference named. Now they go over plain HTTP only to a loopback host or to one the controller's settings list
(``WASMFLOW_REGISTRY_PLAIN_HTTP_CREDENTIAL_HOSTS``, the chart's ``registry.plainHttpCredentialHosts``; for
``wasmflow push``, ``--allow-plain-http-credentials``). Anything else is refused before any connection: the
WasmModule is Stalled with reason InsecureCredentials, its message naming the host and how to allow it.

The refused host is a ``.invalid`` name (RFC 6761: it never resolves), so "nothing was sent" shows as the absence of
any connection attempt: allowed, the same module is retried as Unreachable instead. A loopback registry with
credentials over plain HTTP keeps working (the htpasswd registry's tests in tests/integration/operator and
tests/integration/oci/test_push_cli.py).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kubernetes.client import ApiClient

from tests.components.engine.wat import operator
from tests.fault_report import Report
from tests.integration.operator.test_wasmmodule_controller import (
    assert_stalled,
    create_module,
    docker_config_secret,
    everything_said_about,
    oci,
    wait_retrying,
)
from wasmflow.operator.config import OperatorConfig

REFUSED = "registry.plant.invalid:5000"
ALLOWED = "allowed.plant.invalid:5000"
PASSWORD = "pw-" + uuid.uuid4().hex
WASMFLOW = str(Path(sys.executable).parent / "wasmflow")


@pytest.fixture
def controller_config(tmp_path: Path) -> OperatorConfig:
    return OperatorConfig(
        worker_image="registry.test/wasmflow:test",
        metrics_port=0,
        cache_dir=tmp_path / "controller-cache",
        registry_plain_http_credential_hosts=(ALLOWED,),
    )


def test_credentials_for_a_plain_http_registry_off_loopback_are_refused_and_the_module_stalled_saying_how_to_allow(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, report: Report
) -> None:
    docker_config_secret(kube_client, namespace, "creds", REFUSED, "wasmflow", PASSWORD)
    create_module(kube_client, namespace, "op", oci(f"{REFUSED}/wasmflow/op:1.0", secretRef={"name": "creds"}))
    body = assert_stalled(
        kube_client,
        namespace,
        "op",
        "InsecureCredentials",
        REFUSED,
        "plain HTTP",
        "WASMFLOW_REGISTRY_PLAIN_HTTP_CREDENTIAL_HOSTS",
        "registry.plainHttpCredentialHosts",
    )
    said = everything_said_about(kube_client, namespace, "op")
    report(stalled_reason=body["status"]["conditions"][0]["reason"], password_in_status=PASSWORD in said)
    assert PASSWORD not in said
    assert "cannot connect" not in said  # refused before any connection was tried


def test_a_host_the_controller_settings_allow_gets_its_credentials_over_plain_http(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str
) -> None:
    docker_config_secret(kube_client, namespace, "creds", ALLOWED, "wasmflow", PASSWORD)
    create_module(kube_client, namespace, "op", oci(f"{ALLOWED}/wasmflow/op:1.0", secretRef={"name": "creds"}))
    # Allowed, the pull is tried: the name does not resolve, so it is retried as Unreachable.
    _, ready = wait_retrying(kube_client, namespace, "op", "Unreachable", "the allowed host tried")
    assert ALLOWED in ready["message"]


def push(path: Path, ref: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [WASMFLOW, "push", str(path), ref, "--insecure", "--username", "wasmflow", "--password-stdin", *args],
        capture_output=True,
        text=True,
        check=False,
        input=PASSWORD + "\n",
        timeout=300,
    )


def test_wasmflow_push_refuses_credentials_over_plain_http_off_loopback_unless_the_flag_allows_them(
    tmp_path: Path, report: Report
) -> None:
    path = tmp_path / "op.wasm"
    path.write_bytes(operator("map", "(nop)"))
    refused = push(path, f"{REFUSED}/wasmflow/op:1.0")
    report(exit_code=refused.returncode)
    assert refused.returncode == 1, refused.stderr
    assert "plain HTTP" in refused.stderr and REFUSED in refused.stderr, refused.stderr
    assert "--allow-plain-http-credentials" in refused.stderr
    assert "cannot connect" not in refused.stderr and PASSWORD not in refused.stderr

    allowed = push(path, f"{REFUSED}/wasmflow/op:1.0", "--allow-plain-http-credentials")
    assert allowed.returncode == 1
    assert "cannot connect" in allowed.stderr, allowed.stderr  # tried: the refusal was lifted for this host
    assert PASSWORD not in allowed.stderr
