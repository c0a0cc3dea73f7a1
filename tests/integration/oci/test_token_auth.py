"""Bearer-token registry auth (what Docker Hub, GHCR and ACR use) against a real token service and real registries.

The token world (``hack/registry.sh --token``): Debian's docker-registry (distribution 2.8) with ``auth: token``,
trusting the JWTs of the distribution project's own token service (``contrib/token-server`` of the same 2.8 line,
built from its Go module by ``hack/build-kube.sh token-server``), all on loopback over HTTPS with the test CA. Each
path the client claims is exercised for real: the token fetch with basic credentials (push and pull), the OAuth2
refresh-token grant an identity token triggers (ACR's ``az acr login`` writes one), a token fetched again once its
``expires_in`` has passed, and a plain-HTTP realm refused with credentials in hand.

The token service logs each answer ("get token complete" for a GET, "post token complete" for the OAuth2 POST):
the tests count those lines to see which path was taken and how often.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tests.components.engine.wat import operator
from tests.fault_report import Report
from tests.registry_env import TokenRegistryEnv
from wasmflow.oci import (
    Access,
    Credentials,
    InsecureCredentialsError,
    UnauthorizedError,
    parse_reference,
    pull_artifact,
    pull_component,
    push_component,
)
from wasmflow.oci.client import RegistryClient

ECHO = operator("map", "(nop)")
WASMFLOW = str(Path(sys.executable).parent / "wasmflow")


def answers(log: Path, what: str) -> int:
    """How many times the token service has logged ``what`` ("get token complete", "post token complete")."""
    return log.read_text(errors="replace").count(what) if log.exists() else 0


def unique_ref(env: TokenRegistryEnv, host: str | None = None) -> str:
    # The token service grants a user the repositories under its name.
    return f"{host or env.registry}/{env.username}/tok-{uuid.uuid4().hex[:10]}:1.0"


def access(env: TokenRegistryEnv, credentials: Credentials | None = None) -> Access:
    return Access(
        ca_file=env.ca_file,
        credentials=credentials or Credentials(username=env.username, password=env.password),
    )


def test_push_and_pull_with_bearer_tokens_from_the_token_service(token_registries: TokenRegistryEnv) -> None:
    env = token_registries
    ref = unique_ref(env)
    before = answers(env.token_server_log, "get token complete")
    pushed = asyncio.run(push_component(ref, ECHO, access=access(env)))
    pulled = asyncio.run(pull_artifact(ref, access=access(env)))
    assert pulled.data == ECHO and pulled.manifest_digest == pushed.digest
    assert answers(env.token_server_log, "get token complete") > before

    with pytest.raises(UnauthorizedError, match="refused the anonymous request"):
        asyncio.run(pull_artifact(ref, access=Access(ca_file=env.ca_file)))
    wrong = Credentials(username=env.username, password="not-" + env.password)
    with pytest.raises(UnauthorizedError, match="refused the credentials") as refused:
        asyncio.run(pull_artifact(ref, access=access(env, wrong)))
    assert env.password not in str(refused.value)


def test_wasmflow_push_with_bearer_tokens(token_registries: TokenRegistryEnv, tmp_path: Path) -> None:
    env = token_registries
    path = tmp_path / "op.wasm"
    path.write_bytes(ECHO)
    ref = unique_ref(env)
    result = subprocess.run(
        [WASMFLOW, "push", str(path), ref, "--ca-file", str(env.ca_file), "-u", env.username, "--password-stdin"],
        capture_output=True,
        text=True,
        check=False,
        input=env.password + "\n",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert asyncio.run(pull_artifact(ref, access=access(env))).manifest_digest == result.stdout.strip()


def refresh_token(env: TokenRegistryEnv) -> str:
    """A refresh token, obtained as ``docker login`` does (``offline_token=true``), from the real token service."""
    answer = httpx.get(
        f"https://{env.token_server}/token/",
        params={"service": env.service, "offline_token": "true", "client_id": "docker"},
        auth=(env.username, env.password),
        verify=ssl.create_default_context(cafile=str(env.ca_file)),
    )
    answer.raise_for_status()
    token = answer.json()["refresh_token"]
    assert isinstance(token, str) and token
    return token


def test_an_identity_token_is_used_in_the_oauth2_refresh_token_grant(
    token_registries: TokenRegistryEnv, tmp_path: Path, report: Report
) -> None:
    """What ACR's ``az acr login`` leaves in the docker config: no password, an identity (refresh) token."""
    env = token_registries
    ref = unique_ref(env)
    asyncio.run(push_component(ref, ECHO, access=access(env)))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {env.registry: {"identitytoken": refresh_token(env)}}}))

    posts = answers(env.token_server_log, "post token complete")
    data = asyncio.run(pull_component(ref, docker_config=config, ca_file=env.ca_file))
    grants = answers(env.token_server_log, "post token complete") - posts
    report(refresh_token_grants=grants)
    assert data == ECHO
    assert grants >= 1

    config.write_text(json.dumps({"auths": {env.registry: {"identitytoken": "not-a-refresh-token"}}}))
    with pytest.raises(UnauthorizedError, match="refused the credentials"):
        asyncio.run(pull_component(ref, docker_config=config, ca_file=env.ca_file))


def test_a_token_is_fetched_again_once_its_expires_in_has_passed(
    token_registries: TokenRegistryEnv, report: Report
) -> None:
    """The service's tokens last 15 minutes (expires_in 900): the client's clock is moved on instead of waiting."""
    env = token_registries
    ref = unique_ref(env)
    asyncio.run(push_component(ref, ECHO, access=access(env)))
    now = [1000.0]
    fetched: list[int] = []

    async def pulls() -> None:
        async with RegistryClient(
            env.registry,
            credentials=Credentials(username=env.username, password=env.password),
            ca_file=env.ca_file,
            clock=lambda: now[0],
        ) as client:
            target = parse_reference(ref)
            for advance in (0.0, 60.0, 900.0, 0.0):
                now[0] += advance
                before = answers(env.token_server_log, "get token complete")
                assert (await client.fetch_manifest(target)).raw
                fetched.append(answers(env.token_server_log, "get token complete") - before)

    asyncio.run(pulls())
    report(token_fetches_per_pull=fetched)
    # The first pull fetches a token, the next (a minute on) reuses it, the one past expires_in fetches a new one,
    # which the last reuses.
    assert fetched == [1, 0, 1, 0]


def test_a_plain_http_token_realm_is_refused_and_the_credentials_never_sent(
    token_registries: TokenRegistryEnv, report: Report
) -> None:
    env = token_registries
    ref = unique_ref(env, env.plain_realm_registry)
    asked = answers(env.token_server_plain_log, "getToken")
    with pytest.raises(InsecureCredentialsError) as refused:
        asyncio.run(pull_artifact(ref, access=access(env)))
    report(plain_realm_requests=answers(env.token_server_plain_log, "getToken") - asked)
    assert "plain-HTTP realm" in str(refused.value) and env.token_server_plain in str(refused.value)
    assert answers(env.token_server_plain_log, "getToken") == asked
    assert env.password not in str(refused.value)
