"""A registry cannot turn the client into a probe of other services, nor read anything back through it (issue 16,
case 6), and a digest it names is checked before it is believed.

A real registry (the Debian distribution) sits behind a small real proxy (tests/integration/oci/hostile.py) that
answers some requests itself as a hostile registry would: a redirect of a manifest to an "internal service" (a
real server in the test holding a token in its body), a redirect from HTTPS down to HTTP, a hostile error body,
an endless token answer, a plain-HTTP token realm, a Docker-Content-Digest that is not a digest. The client must
refuse with a typed error that says why, never ask the internal service anything, and never echo a body that is
not the registry's own structured error; the WasmModule controller's status and Events must not either.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any, cast

import httpx
import pytest
from kubernetes.client import ApiClient, CoreV1Api, CustomObjectsApi

from tests.components.engine import wat
from tests.fault_report import Report
from tests.integration.conftest import wait_until
from tests.integration.oci.hostile import Answer, hostile_server
from tests.registry_env import RegistryEnv
from wasmflow.oci import (
    Access,
    CorruptContentError,
    Credentials,
    InsecureCredentialsError,
    OciError,
    UnauthorizedError,
    UnsafeRedirectError,
    pull_artifact,
    push_component,
    resolve_digest,
)
from wasmflow.operator.config import OperatorConfig

ECHO = wat.operator("map", "(nop)")
#: What an internal service (a metadata endpoint, an admin API) would hand anyone who asks.
SECRET = "internal-token-" + uuid.uuid4().hex
INTERNAL_PAGE = f"<html><body>admin console: access_token={SECRET}</body></html>\n".encode()


def pushed(registry_host: str, access: Access) -> str:
    """Push ECHO to a fresh repository of ``registry_host``; its tagged reference."""
    ref = f"{registry_host}/ssrf/{uuid.uuid4().hex[:10]}:1.0"
    asyncio.run(push_component(ref, ECHO, access=access))
    return ref


def internal_service() -> Any:
    """A real HTTP server standing for an internal service: it answers everything with its secret page."""
    return hostile_server(lambda method, path: Answer(403, {"Content-Type": "text/html"}, INTERNAL_PAGE))


def redirecting_manifests_to(target: str) -> Callable[[str, str], Answer | None]:
    def rule(method: str, path: str) -> Answer | None:
        if "/manifests/" in path and method in ("GET", "HEAD"):
            return Answer(302, {"Location": f"{target}/latest/meta-data/iam?from={path}"})
        return None

    return rule


def failure(coroutine: Any) -> OciError:
    with pytest.raises(OciError) as caught:
        asyncio.run(coroutine)
    return caught.value


def test_a_manifest_redirected_from_https_down_to_http_is_refused_and_the_internal_service_is_never_asked(
    registries: RegistryEnv, report: Report
) -> None:
    tls = registries.tls
    ref = pushed(tls.host, Access(ca_file=tls.ca_file))
    certificate = (registries.state_dir / "server.crt", registries.state_dir / "server.key")
    with (
        internal_service() as internal,
        hostile_server(
            redirecting_manifests_to(internal.url), upstream=tls.url, upstream_ca=tls.ca_file, tls=certificate
        ) as proxy,
    ):
        error = failure(pull_artifact(ref.replace(tls.host, proxy.host), access=Access(ca_file=tls.ca_file)))
    report(internal_requests=len(internal.asked), secret_in_message=SECRET in str(error))
    assert isinstance(error, UnsafeRedirectError), error
    assert "from HTTPS to plain HTTP" in str(error) and internal.host in str(error)
    assert internal.asked == []
    assert SECRET not in str(error) and "iam" not in str(error)  # where it pointed, not its path or query


def test_a_manifest_redirected_to_another_host_is_refused_and_that_host_is_never_asked(
    registries: RegistryEnv, report: Report
) -> None:
    plain = registries.plain
    ref = pushed(plain.host, Access(insecure=True))
    with (
        internal_service() as internal,
        hostile_server(redirecting_manifests_to(internal.url), upstream=plain.url) as proxy,
    ):
        error = failure(pull_artifact(ref.replace(plain.host, proxy.host), access=Access(insecure=True)))
    report(internal_requests=len(internal.asked), secret_in_message=SECRET in str(error))
    assert isinstance(error, UnsafeRedirectError), error
    assert "only blob downloads may be sent to storage" in str(error)
    assert internal.asked == []
    assert SECRET not in str(error)


HOSTILE_BODIES = {
    "html-404": Answer(404, {"Content-Type": "text/html"}, INTERNAL_PAGE),
    "html-500": Answer(500, {"Content-Type": "text/html"}, INTERNAL_PAGE),
    "json-not-distribution": Answer(403, {"Content-Type": "application/json"}, json.dumps({"token": SECRET}).encode()),
    "distribution-error-stuffed": Answer(
        404,
        {"Content-Type": "application/json"},
        json.dumps(
            {
                "errors": [
                    {"code": "MANIFEST_UNKNOWN", "message": "manifest unknown\n\x1b[31m" + "A" * 3000},
                    {"code": "not a code " + SECRET, "message": "x"},
                    *({"code": "DENIED", "message": f"{i}"} for i in range(20)),
                ]
            }
        ).encode(),
    ),
}


@pytest.mark.parametrize("answer", list(HOSTILE_BODIES.values()), ids=list(HOSTILE_BODIES))
def test_a_hostile_error_body_never_reaches_the_message_beyond_the_registry_s_structured_error(
    registries: RegistryEnv, answer: Answer, report: Report
) -> None:
    plain = registries.plain
    ref = pushed(plain.host, Access(insecure=True))

    def rule(method: str, path: str) -> Answer | None:
        return answer if "/manifests/" in path else None

    with hostile_server(rule, upstream=plain.url) as proxy:
        error = failure(pull_artifact(ref.replace(plain.host, proxy.host), access=Access(insecure=True)))
    message = str(error)
    report(message_chars=len(message), secret_in_message=SECRET in message)
    assert SECRET not in message and "admin console" not in message
    assert "\x1b" not in message and "\n" not in message
    assert len(message) < 700, message
    if answer.status == 404 and b"MANIFEST_UNKNOWN" in answer.body:
        assert "manifest unknown" in message  # the registry's own error still says why


def test_a_blob_redirected_to_storage_elsewhere_is_pulled_verified_and_without_our_credentials(
    registries: RegistryEnv,
) -> None:
    """What registries do (distribution's S3 driver, GHCR's and Docker Hub's CDNs) still works: the blob GET follows
    the redirect to storage on another host, and our Authorization stays with the registry."""
    auth = registries.auth
    access = Access(insecure=True, credentials=Credentials(username=auth.username, password=auth.password))
    ref = pushed(auth.host, access)
    # The storage holds the blob as a pre-signed URL serves it: to whoever has the URL, no credentials needed.
    with hostile_server(
        lambda method, path: Answer(200, {"Content-Type": "application/octet-stream"}, ECHO)
    ) as storage:

        def rule(method: str, path: str) -> Answer | None:
            if "/blobs/" in path and method == "GET":
                return Answer(307, {"Location": f"{storage.url}/bucket{path}?X-Amz-Signature=presigned"})
            return None

        with hostile_server(rule, upstream=auth.url) as proxy:
            artifact = asyncio.run(pull_artifact(ref.replace(auth.host, proxy.host), access=access))
    assert artifact.data == ECHO
    assert [a.method for a in storage.asked] == ["GET"]
    assert not storage.asked[0].authorization, "our registry credentials went to the storage host"
    assert any("/blobs/" in a.path and a.authorization for a in proxy.asked)


def test_an_endless_token_answer_is_cut_short(registries: RegistryEnv, report: Report) -> None:
    plain = registries.plain
    ref = pushed(plain.host, Access(insecure=True))
    total = 64 * 2**20
    with hostile_server(lambda method, path: Answer(200, {"Content-Type": "application/json"}, stream=total)) as realm:

        def rule(method: str, path: str) -> Answer | None:
            if path.startswith("/v2/") and not realm.asked:
                return Answer(401, {"WWW-Authenticate": f'Bearer realm="{realm.url}/token",service="registry"'})
            return None

        with hostile_server(rule, upstream=plain.url) as proxy:
            error = failure(pull_artifact(ref.replace(plain.host, proxy.host), access=Access(insecure=True)))
    report(token_answer_bytes_sent=realm.bytes_sent, token_answer_offered=total)
    assert isinstance(error, UnauthorizedError), error
    assert "more than 65536 bytes" in str(error)
    # What the kernel's socket buffers took before we hung up, not the 64 MiB offered.
    assert realm.bytes_sent < 16 * 2**20


def test_an_https_registry_naming_a_plain_http_token_realm_gets_no_token_request_even_anonymous(
    registries: RegistryEnv, report: Report
) -> None:
    tls = registries.tls
    ref = pushed(tls.host, Access(ca_file=tls.ca_file))
    certificate = (registries.state_dir / "server.crt", registries.state_dir / "server.key")
    with internal_service() as realm:

        def rule(method: str, path: str) -> Answer | None:
            if path.startswith("/v2/"):
                return Answer(401, {"WWW-Authenticate": f'Bearer realm="{realm.url}/token",service="registry"'})
            return None

        with hostile_server(rule, upstream=tls.url, upstream_ca=tls.ca_file, tls=certificate) as proxy:
            error = failure(pull_artifact(ref.replace(tls.host, proxy.host), access=Access(ca_file=tls.ca_file)))
    report(realm_requests=len(realm.asked))
    assert isinstance(error, InsecureCredentialsError), error
    assert "plain-HTTP realm" in str(error) and realm.host in str(error)
    assert realm.asked == []


def lying_about_the_digest(digest: str) -> Callable[[str, str, dict[str, str]], None]:
    def rewrite(method: str, path: str, headers: dict[str, str]) -> None:
        if "/manifests/" in path:
            for key in [k for k in headers if k.lower() == "docker-content-digest"]:
                headers[key] = digest

    return rewrite


@pytest.mark.parametrize(
    "lie",
    ["md5:0123456789abcdef0123456789abcdef", "sha256:abc", "sha256:" + "A" * 64, "sha256:" + "0" * 63 + "/"],
    ids=["md5", "short", "upper-case", "path"],
)
def test_a_head_digest_that_is_not_a_digest_is_refused(registries: RegistryEnv, lie: str, report: Report) -> None:
    plain = registries.plain
    ref = pushed(plain.host, Access(insecure=True))
    with hostile_server(lambda method, path: None, upstream=plain.url, rewrite=lying_about_the_digest(lie)) as proxy:
        error = failure(resolve_digest(ref.replace(plain.host, proxy.host), access=Access(insecure=True)))
    report(refused=type(error).__name__)
    assert isinstance(error, CorruptContentError), error
    assert "Docker-Content-Digest" in str(error)


def test_a_head_digest_that_lies_is_caught_when_the_manifest_it_names_is_fetched(registries: RegistryEnv) -> None:
    """A well-formed digest cannot be checked by a HEAD alone: the pull pinned to it verifies the bytes."""
    plain = registries.plain
    ref = pushed(plain.host, Access(insecure=True))
    lie = "sha256:" + "e" * 64
    tag_path = "/v2/" + ref.split("/", 1)[1].replace(":", "/manifests/")

    def rule(method: str, path: str) -> Answer | None:
        # The lying registry serves the tag's manifest under the digest it claimed for it.
        if path.endswith(f"/manifests/{lie}"):
            answer = httpx.get(plain.url + tag_path, headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
            return Answer(
                200, {"Content-Type": answer.headers["content-type"], "Docker-Content-Digest": lie}, answer.content
            )
        if path.endswith(f"/blobs/{lie}"):
            return Answer(404, {"Content-Type": "application/json"}, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
        return None

    with hostile_server(rule, upstream=plain.url, rewrite=lying_about_the_digest(lie)) as proxy:
        moved = ref.replace(plain.host, proxy.host)
        assert asyncio.run(resolve_digest(moved, access=Access(insecure=True))) == lie
        error = failure(pull_artifact(f"{moved.rsplit(':', 1)[0]}@{lie}", access=Access(insecure=True)))
    assert isinstance(error, CorruptContentError), error
    assert lie in str(error)


# ------------------------------------------------------------------------------------------------- controller


def test_through_the_controller_a_redirect_to_an_internal_service_never_reaches_status_or_events(
    controller: OperatorConfig, kube_client: ApiClient, namespace: str, registries: RegistryEnv, report: Report
) -> None:
    plain = registries.plain
    ref = pushed(plain.host, Access(insecure=True))
    objects = CustomObjectsApi(kube_client)
    with (
        internal_service() as internal,
        hostile_server(redirecting_manifests_to(internal.url), upstream=plain.url) as proxy,
    ):
        body = {
            "apiVersion": "wasmflow.io/v1alpha1",
            "kind": "WasmModule",
            "metadata": {"name": "op"},
            "spec": {
                "source": {"oci": {"reference": ref.replace(plain.host, proxy.host), "insecure": True}},
                "operator": "map",
            },
        }
        objects.create_namespaced_custom_object("wasmflow.io", "v1alpha1", namespace, "wasmmodules", body)

        def ready() -> dict[str, Any]:
            module = cast(
                dict[str, Any],
                objects.get_namespaced_custom_object("wasmflow.io", "v1alpha1", namespace, "wasmmodules", "op"),
            )
            conditions = (module.get("status") or {}).get("conditions") or []
            return next((c for c in conditions if c["type"] == "Ready"), {})

        wait_until(lambda: ready().get("reason") == "UnsafeRedirect", what="Ready=False UnsafeRedirect", timeout=60)
        condition = ready()
        events = CoreV1Api(kube_client).list_namespaced_event(namespace).items
    texts = [condition["message"], *(e.message or "" for e in events)]
    report(internal_requests=len(internal.asked), secret_in_status_or_events=any(SECRET in t for t in texts))
    assert internal.asked == []
    assert not any(SECRET in t for t in texts), texts
    assert internal.host in condition["message"]
