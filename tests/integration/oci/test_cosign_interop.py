"""Interoperability with the real cosign CLI (built from its Go module, cached), both ways, on the test registry:
what cosign signs wasmflow verifies, and what wasmflow signs (with cosign's own encrypted key) cosign verifies."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cosign_env import Cosign, find_cosign
from tests.services import Registry

WASMFLOW = str(Path(sys.executable).parent / "wasmflow")


def wasmflow(*args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COSIGN_PASSWORD"}
    if password is not None:
        env["COSIGN_PASSWORD"] = password
    return subprocess.run([WASMFLOW, *args], capture_output=True, text=True, check=False, timeout=120, env=env)


@pytest.fixture(scope="module")
def cosign(tmp_path_factory: pytest.TempPathFactory) -> Cosign:
    return find_cosign(tmp_path_factory.mktemp("cosign-home"))


def pushed(registry: Registry, path: Path, *extra: str, password: str | None = None) -> tuple[str, str]:
    """Push to a fresh repository; (the reference pinned to the manifest digest, the digest)."""
    repository = f"{registry.host}/cosign/{uuid.uuid4().hex[:8]}"
    result = wasmflow("push", str(path), f"{repository}:1.0", "--insecure", *extra, password=password)
    assert result.returncode == 0, result.stderr
    digest = result.stdout.strip()
    return f"{repository}@{digest}", digest


def test_a_component_signed_by_cosign_is_verified_by_wasmflow(
    cosign: Cosign, registry: Registry, component: Callable[[str], Path], tmp_path: Path
) -> None:
    keys = cosign.generate_key_pair(tmp_path / "keys")
    ref, digest = pushed(registry, component("wat_identity_map"))
    signed = cosign.sign(keys, ref)
    assert signed.returncode == 0, signed.stderr
    result = wasmflow("verify", ref, "--key", str(keys.public), "--insecure")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == digest


def test_a_component_signed_by_wasmflow_with_cosigns_encrypted_key_is_verified_by_cosign(
    cosign: Cosign, registry: Registry, component: Callable[[str], Path], tmp_path: Path
) -> None:
    keys = cosign.generate_key_pair(tmp_path / "keys")
    ref, _ = pushed(registry, component("wat_identity_map"), "--sign", str(keys.private), password=keys.password)
    verified = cosign.verify(keys.public, ref)
    assert verified.returncode == 0, verified.stderr
    assert "The signatures were verified against the specified public key" in verified.stderr


def test_cosign_refuses_a_wasmflow_signature_under_another_key(
    cosign: Cosign, registry: Registry, component: Callable[[str], Path], tmp_path: Path
) -> None:
    signer = cosign.generate_key_pair(tmp_path / "signer")
    other = cosign.generate_key_pair(tmp_path / "other")
    ref, _ = pushed(registry, component("wat_identity_map"), "--sign", str(signer.private), password=signer.password)
    refused = cosign.verify(other.public, ref)
    assert refused.returncode != 0
    assert "no matching signatures" in refused.stderr


def test_a_wrong_password_for_cosigns_key_stops_the_push_before_anything_is_sent(
    cosign: Cosign, registry: Registry, component: Callable[[str], Path], tmp_path: Path
) -> None:
    keys = cosign.generate_key_pair(tmp_path / "keys")
    repository = f"{registry.host}/cosign/{uuid.uuid4().hex[:8]}"
    result = wasmflow(
        "push",
        str(component("wat_identity_map")),
        f"{repository}:1.0",
        "--insecure",
        "--sign",
        str(keys.private),
        password="not the password",
    )
    assert result.returncode == 2
    assert "wrong password (COSIGN_PASSWORD)" in result.stderr
    assert result.stdout == ""
