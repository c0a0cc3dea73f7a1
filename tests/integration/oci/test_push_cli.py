"""``wasmflow push`` as a user (or a script) runs it, against the real registries."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.services import AuthRegistry, Registry
from wasmflow.oci import Access, Credentials, Layout, NotFoundError, pull_artifact
from wasmflow.oci.digests import sha256_digest

WASMFLOW = str(Path(sys.executable).parent / "wasmflow")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def push(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WASMFLOW, "push", *args], capture_output=True, text=True, check=False, input=stdin)


def repo(host: str) -> str:
    return f"{host}/push-cli/{uuid.uuid4().hex[:8]}"


def test_push_prints_only_the_manifest_digest_and_the_artifact_pulls_back(
    registry: Registry, component: Callable[[str], Path]
) -> None:
    path = component("wat_identity_map")
    ref = f"{repo(registry.host)}:1.0"
    result = push(str(path), ref, "--insecure", "--annotation", "org.opencontainers.image.source=https://example.test")
    assert result.returncode == 0, result.stderr
    digest = result.stdout.strip()
    assert DIGEST.match(digest), result.stdout
    assert result.stdout == digest + "\n"
    pulled = asyncio.run(pull_artifact(ref, access=Access(insecure=True)))
    assert pulled.manifest_digest == digest
    assert pulled.layout is Layout.CNCF_WASM
    assert pulled.data == path.read_bytes()
    assert pulled.digest == sha256_digest(path.read_bytes())
    assert pulled.annotations["org.opencontainers.image.source"] == "https://example.test"


def test_push_refuses_a_component_that_breaks_the_contract_and_lists_the_problems(
    registry: Registry, component: Callable[[str], Path]
) -> None:
    ref = f"{repo(registry.host)}:1.0"
    result = push(str(component("wrong_signature")), ref, "--insecure")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "[signature-mismatch]" in result.stderr
    assert "nothing was pushed" in result.stderr
    with pytest.raises(NotFoundError):
        asyncio.run(pull_artifact(ref, access=Access(insecure=True)))


def test_push_to_the_htpasswd_registry_with_the_password_on_stdin(
    registry_auth: AuthRegistry, component: Callable[[str], Path]
) -> None:
    path = component("wat_identity_map")
    ref = f"{repo(registry_auth.host)}:1.0"
    result = push(
        str(path),
        ref,
        "--insecure",
        "--username",
        registry_auth.username,
        "--password-stdin",
        stdin=registry_auth.password + "\n",
    )
    assert result.returncode == 0, result.stderr
    credentials = Credentials(registry_auth.username, registry_auth.password)
    pulled = asyncio.run(pull_artifact(ref, access=Access(insecure=True, credentials=credentials)))
    assert pulled.manifest_digest == result.stdout.strip()


def test_push_with_a_docker_config_file(
    registry_auth: AuthRegistry, component: Callable[[str], Path], tmp_path: Path
) -> None:
    auth = base64.b64encode(f"{registry_auth.username}:{registry_auth.password}".encode()).decode()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {f"http://{registry_auth.host}": {"auth": auth}}}))
    result = push(
        str(component("wat_identity_map")),
        f"{repo(registry_auth.host)}:1.0",
        "--insecure",
        "--docker-config",
        str(config),
    )
    assert result.returncode == 0, result.stderr
    assert DIGEST.match(result.stdout.strip())


def test_a_wrong_password_fails_with_exit_1_and_never_echoes_the_password(
    registry_auth: AuthRegistry, component: Callable[[str], Path]
) -> None:
    secret = "not-the-password-" + uuid.uuid4().hex
    result = push(
        str(component("wat_identity_map")),
        f"{repo(registry_auth.host)}:1.0",
        "--insecure",
        "--username",
        registry_auth.username,
        "--password-stdin",
        stdin=secret + "\n",
    )
    assert result.returncode == 1
    assert "refused the credentials" in result.stderr
    assert secret not in result.stderr + result.stdout


def test_a_reference_without_a_registry_host_is_a_usage_error(component: Callable[[str], Path]) -> None:
    result = push(str(component("wat_identity_map")), "ops/identity:1.0")
    assert result.returncode == 2
    assert "no registry host" in result.stderr


def test_an_annotation_without_a_value_separator_is_a_usage_error(component: Callable[[str], Path]) -> None:
    result = push(str(component("wat_identity_map")), "127.0.0.1:5000/ops/op:1", "--annotation", "no-equals-sign")
    assert result.returncode == 2
    assert "expected KEY=VALUE" in result.stderr


def test_a_password_is_only_taken_from_stdin_with_a_user_name(component: Callable[[str], Path]) -> None:
    result = push(str(component("wat_identity_map")), "127.0.0.1:5000/ops/op:1", "--password-stdin", stdin="pw\n")
    assert result.returncode == 2
    assert "--password-stdin needs --username" in result.stderr


def test_wasmflow_inspect_reads_a_pushed_component_from_its_reference(
    registry: Registry, component: Callable[[str], Path]
) -> None:
    """The CLI's sources pull an OCI reference (``wasmflow inspect/run REF``), verified like the controller's."""
    ref = f"{repo(registry.host)}:1.0"
    assert push(str(component("wat_identity_map")), ref, "--insecure").returncode == 0
    result = subprocess.run([WASMFLOW, "inspect", "--insecure", ref], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "valid      yes" in result.stdout
    assert "world      wasmflow:operator/map-operator@0.1.0" in result.stdout
