"""An async OCI distribution client for one registry: manifests and blobs, pulled verified and pushed.

``RegistryClient`` speaks the distribution API (``/v2/<name>/manifests/<ref>``, ``/v2/<name>/blobs/<digest>``,
``/v2/<name>/blobs/uploads/``) over an ``httpx.AsyncClient`` it owns:

* auth: anonymous first; on 401 it follows the challenge: Basic (credentials on every later request) or Bearer
  (a token from the realm for the scope, cached per scope until it expires). Credentials never cross the network in
  clear: with ``insecure`` (plain HTTP) they are refused before any request unless the host is on loopback or listed
  in ``plain_http_credential_hosts`` (InsecureCredentialsError); an HTTPS registry's token realm must be HTTPS too.
  The Authorization header only ever goes to the registry's own origin (scheme, host, port).
* redirects: only as registries use them. A blob download may be sent to storage elsewhere (same scheme or
  stronger, at most ``_MAX_REDIRECTS`` hops, without our Authorization); a manifest request only within the
  registry's origin; nothing else is followed. Anything else is UnsafeRedirectError: followed, a redirect to an
  internal address would make the controller a probe of it.
* what a registry says back is bounded and never echoed raw: manifests and blobs by their size limits, error bodies
  to 4 KiB of which only the distribution error JSON (``errors[].code`` and ``message``, sanitized and cut) reaches
  a message, and only from the registry's own origin; a token answer to 64 KiB.
* TLS: the system's trusted CAs, plus the CA bundle given (``ca_file``, as docker's ``certs.d/<host>/ca.crt``: a
  private registry's CA, without distrusting public registries); plain HTTP only when ``insecure`` is set.
* retries: connection failures, timeouts, resets, 5xx and 429 are retried with exponential backoff and jitter, a
  bounded number of times (``RetryPolicy``), honouring ``Retry-After``; then UnreachableError / ServerError.
* verification: every manifest and blob is hashed while it streams and compared with its digest; the size limit
  and the descriptor's size stop a download as soon as they are passed (see ``digests.read_verified``).

Every failure leaves as an ``OciError`` subclass (errors.py); httpx exceptions are translated here and chained.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ipaddress
import json
import logging
import re
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

import httpx

from wasmflow import __version__
from wasmflow.errors import ConfigError
from wasmflow.oci import mediatypes as mt
from wasmflow.oci.auth import Challenge, Credentials, parse_challenges
from wasmflow.oci.digests import digest_of, read_verified, sha256_digest
from wasmflow.oci.errors import (
    CorruptContentError,
    DigestMismatchError,
    InsecureCredentialsError,
    InvalidReferenceError,
    NotFoundError,
    OciError,
    PinMismatchError,
    ServerError,
    TooLargeError,
    UnauthorizedError,
    UnreachableError,
    UnsafeRedirectError,
    UnsupportedArtifactError,
)
from wasmflow.oci.manifest import Descriptor, parse_manifest
from wasmflow.oci.reference import Reference, parse_digest
from wasmflow.oci.transfer import DEFAULT_MAX_BLOB_BYTES, DEFAULT_MAX_MANIFEST_BYTES, FetchedManifest, RetryPolicy

__all__ = ["RegistryClient"]

log = logging.getLogger(__name__)

_ERROR_BODY_LIMIT = 4096
#: A token answer is a few KiB (a JWT and its lifetime); anything past this is not one.
_MAX_TOKEN_BYTES = 64 * 1024
#: A blob download redirected to storage takes one hop, a CDN in front of it another; five is generous.
_MAX_REDIRECTS = 5
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: How much of the registry's error JSON reaches a message: a few errors, each cut, printable characters only.
_ERRORS_SHOWN = 3
_ERROR_MESSAGE_CHARS = 120
_ERROR_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_CHUNK = 256 * 1024
_DEFAULT_TOKEN_LIFETIME_S = 60.0
_T = TypeVar("_T")
_Origin = tuple[str, str, int]


class _Redirects(enum.Enum):
    """Which redirects a request may follow."""

    NONE = "none"  # uploads, manifest pushes, token requests: a redirect is an unexpected answer
    SAME_ORIGIN = "same-origin"  # manifests: within the registry (a path canonicalised), never elsewhere
    STORAGE = "storage"  # blob downloads: to storage anywhere, same scheme or stronger, without our Authorization


@dataclass
class _Token:
    header: str
    expires: float


class _Transient(Exception):  # noqa: N818 - internal signal, never leaves this module
    """A failure worth another try; ``error`` is what to raise when the tries run out."""

    def __init__(self, error: OciError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


@dataclass
class _Auth:
    """Per-client auth state: whether Basic is known to be wanted, and the Bearer tokens per scope."""

    basic: bool = False
    tokens: dict[str, _Token] = field(default_factory=dict)


class RegistryClient:
    """A client for the registry ``host[:port]``; use it as an async context manager (it owns connections).

    ``transport`` replaces the network (an ``httpx.AsyncBaseTransport``); the tests use real registries instead.
    ``plain_http_credential_hosts`` lists the hosts (``host`` or ``host:port``) to which credentials may go over
    plain HTTP besides loopback ones. ``clock`` (seconds, monotonic) decides when a token has expired.
    """

    def __init__(
        self,
        registry: str,
        *,
        insecure: bool = False,
        credentials: Credentials | None = None,
        ca_file: Path | None = None,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        plain_http_credential_hosts: Collection[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.insecure = insecure
        self.retry = retry or RetryPolicy()
        self._credentials = credentials
        self._auth = _Auth()
        self._plain_http_hosts = frozenset(host.strip().lower() for host in plain_http_credential_hosts)
        self._clock = clock
        scheme = "http" if insecure else "https"
        self.base_url = httpx.URL(f"{scheme}://{registry}")
        self._origin = _origin_of(self.base_url)
        self._http = httpx.AsyncClient(
            verify=_tls_context(ca_file) if ca_file is not None and not insecure else True,
            timeout=timeout,
            follow_redirects=False,  # followed by hand, as registries use them (_send)
            transport=transport,
            headers={"User-Agent": f"wasmflow/{__version__}", "Accept-Encoding": "identity"},
            trust_env=False,
        )

    def __repr__(self) -> str:
        return f"RegistryClient({self.base_url!s}, authenticated={self._credentials is not None})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ----------------------------------------------------------------------------------------------- pull

    async def resolve(self, ref: Reference) -> Descriptor:
        """The manifest descriptor ``ref`` names now (a tag resolved to its digest), without downloading blobs.

        HEAD first; if the registry gives no ``Docker-Content-Digest`` the manifest is fetched and hashed. A digest
        the HEAD gives is checked before it is believed: a digest at all, of an algorithm we verify (else
        CorruptContentError); a pull of ``ref`` pinned to it then verifies the manifest's bytes against it.
        """
        self._check(ref)
        url = self._url(ref, "manifests", ref.identifier)

        async def head() -> Descriptor | None:
            async with self._exchange(
                "HEAD",
                url,
                ref,
                _pull_scope(ref),
                headers={"Accept": mt.ACCEPT_MANIFESTS},
                redirects=_Redirects.SAME_ORIGIN,
            ) as r:
                await self._expect(r, (200,), ref, what=f"manifest {ref.identifier}")
                digest = r.headers.get("docker-content-digest")
                media_type = _base_type(r.headers.get("content-type")) or mt.OCI_MANIFEST
                length = r.headers.get("content-length") or ""
                size = int(length) if length.isdigit() else 0
            if not digest:
                return None
            _check_served_digest(digest, ref, "HEAD of the manifest")
            if ref.digest and digest != ref.digest:
                return None
            return Descriptor(media_type=media_type, digest=digest, size=size)

        found = await self._with_retries(head, ref)
        if found is not None:
            return found
        fetched = await self.fetch_manifest(ref)
        return Descriptor(media_type=fetched.media_type, digest=fetched.digest, size=len(fetched.raw))

    async def fetch_manifest(self, ref: Reference, *, max_bytes: int = DEFAULT_MAX_MANIFEST_BYTES) -> FetchedManifest:
        """Download, verify and parse the manifest ``ref`` names (by digest when it has one, else by tag)."""
        self._check(ref)
        url = self._url(ref, "manifests", ref.identifier)

        async def get() -> FetchedManifest:
            buffer = bytearray()
            async with self._exchange(
                "GET",
                url,
                ref,
                _pull_scope(ref),
                headers={"Accept": mt.ACCEPT_MANIFESTS},
                redirects=_Redirects.SAME_ORIGIN,
            ) as r:
                await self._expect(r, (200,), ref, what=f"manifest {ref.identifier}")
                _check_length(r, max_bytes, None, ref, "the manifest")
                digest = await read_verified(
                    _chunks(r),
                    buffer.extend,
                    digest=ref.digest,
                    limit=max_bytes,
                    what="the manifest",
                    reference=str(ref),
                )
                served = r.headers.get("docker-content-digest")
                content_type = r.headers.get("content-type")
            raw = bytes(buffer)
            if served:
                _check_served_digest(served, ref, "the manifest")
            if served and digest_of(raw, served) != served:
                raise CorruptContentError(
                    f"the registry says the manifest is {served}, its content hashes to {digest_of(raw, served)}",
                    reference=str(ref),
                    expected=served,
                    actual=digest_of(raw, served),
                )
            manifest = parse_manifest(raw, content_type, reference=str(ref))
            media_type = manifest.media_type or _base_type(content_type) or mt.OCI_MANIFEST
            return FetchedManifest(manifest=manifest, raw=raw, digest=digest, media_type=media_type)

        return await self._with_retries(get, ref)

    async def fetch_blob(
        self, ref: Reference, digest: str, *, size: int | None = None, max_bytes: int = DEFAULT_MAX_BLOB_BYTES
    ) -> bytes:
        """Download the blob ``digest`` of ``ref``'s repository, verified against ``digest`` (and ``size``).

        Refused before any byte is read when the declared size or Content-Length is over ``max_bytes``; otherwise
        stopped as soon as the stream passes it.
        """
        self._check(ref)
        what = f"blob {digest}"
        if size is not None and size > max_bytes:
            raise TooLargeError(
                f"{what} is {size} bytes (as its descriptor declares), over the limit of {max_bytes} bytes",
                reference=str(ref),
                limit=max_bytes,
            )
        url = self._url(ref, "blobs", digest)

        async def get() -> bytes:
            buffer = bytearray()
            async with self._exchange("GET", url, ref, _pull_scope(ref), redirects=_Redirects.STORAGE) as r:
                await self._expect(r, (200,), ref, what=what)
                _check_length(r, max_bytes, size, ref, what)
                await read_verified(
                    _chunks(r), buffer.extend, digest=digest, limit=max_bytes, size=size, what=what, reference=str(ref)
                )
            return bytes(buffer)

        return await self._with_retries(get, ref)

    async def referrers(
        self, ref: Reference, digest: str, *, max_bytes: int = DEFAULT_MAX_MANIFEST_BYTES
    ) -> tuple[Descriptor, ...] | None:
        """The OCI 1.1 referrers of manifest ``digest`` (signatures, SBOMs...), or None when the registry does not
        answer the referrers API (a 404: distribution 2.x; cosign then falls back to its tag schema, as we do).

        The answer is an image index, read up to ``max_bytes``; entries that are not descriptors are skipped.
        """
        self._check(ref)
        parse_digest(digest, reference=str(ref))
        url = self._url(ref, "referrers", digest)

        async def get() -> tuple[Descriptor, ...] | None:
            buffer = bytearray()
            async with self._exchange(
                "GET", url, ref, _pull_scope(ref), headers={"Accept": mt.OCI_INDEX}, redirects=_Redirects.SAME_ORIGIN
            ) as r:
                if r.status_code in (404, 405):
                    return None
                await self._expect(r, (200,), ref, what=f"the referrers of {digest}")
                _check_length(r, max_bytes, None, ref, "the referrers index")
                await read_verified(
                    _chunks(r),
                    buffer.extend,
                    digest=None,
                    limit=max_bytes,
                    what="the referrers index",
                    reference=str(ref),
                )
            try:
                document = json.loads(bytes(buffer))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise UnsupportedArtifactError(
                    "the referrers answer is not JSON", reference=str(ref), found="non-JSON referrers"
                ) from exc
            entries = document.get("manifests") if isinstance(document, dict) else None
            found: list[Descriptor] = []
            for entry in entries if isinstance(entries, list) else []:
                try:
                    descriptor = Descriptor.model_validate(entry)
                    parse_digest(descriptor.digest)
                except (ValueError, InvalidReferenceError):
                    continue
                found.append(descriptor)
            return tuple(found)

        return await self._with_retries(get, ref)

    # ----------------------------------------------------------------------------------------------- push

    async def blob_exists(self, ref: Reference, digest: str) -> bool:
        self._check(ref)
        url = self._url(ref, "blobs", digest)

        async def head() -> bool:
            async with self._exchange("HEAD", url, ref, _push_scope(ref), redirects=_Redirects.STORAGE) as r:
                if r.status_code == 404:
                    return False
                await self._expect(r, (200,), ref, what=f"blob {digest}")
                return True

        return await self._with_retries(head, ref)

    async def upload_blob(self, ref: Reference, data: bytes, *, chunk_size: int | None = None) -> str:
        """Upload ``data`` to ``ref``'s repository unless it is there already; returns its sha256 digest.

        One PUT (monolithic) when ``chunk_size`` is None or not smaller than the data, else PATCH chunks with
        ``Content-Range`` and a closing PUT, as the distribution spec describes. A transient failure restarts the
        upload from the beginning (a fresh upload session).
        """
        self._check(ref)
        data = bytes(data)  # httpx streams anything else as a (sync) iterable
        digest = sha256_digest(data)
        if await self.blob_exists(ref, digest):
            return digest
        start_url = self._url(ref, "blobs", "uploads") + "/"
        scope = _push_scope(ref)

        async def upload() -> str:
            async with self._exchange("POST", start_url, ref, scope, content=b"") as r:
                await self._expect(r, (202,), ref, what="a blob upload")
                location = self._location(r, ref)
            if chunk_size is not None and 0 < chunk_size < len(data):
                for offset in range(0, len(data), chunk_size):
                    chunk = data[offset : offset + chunk_size]
                    headers = {
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                    }
                    async with self._exchange("PATCH", location, ref, scope, headers=headers, content=chunk) as r:
                        await self._expect(r, (202,), ref, what=f"upload chunk at byte {offset}")
                        location = self._location(r, ref)
                body = b""
            else:
                body = data
            final = httpx.URL(location).copy_merge_params({"digest": digest})
            headers = {"Content-Type": "application/octet-stream"}
            async with self._exchange("PUT", str(final), ref, scope, headers=headers, content=body) as r:
                await self._expect(r, (201,), ref, what=f"blob {digest}")
                served = r.headers.get("docker-content-digest")
            if served and served != digest:
                raise DigestMismatchError(
                    f"the registry stored the blob as {served}, we sent {digest}",
                    reference=str(ref),
                    expected=digest,
                    actual=served,
                )
            return digest

        return await self._with_retries(upload, ref)

    async def put_manifest(self, ref: Reference, raw: bytes, media_type: str = mt.OCI_MANIFEST) -> str:
        """Store ``raw`` as the manifest for ``ref``'s tag (or digest); returns the manifest digest."""
        self._check(ref)
        digest = sha256_digest(raw)
        if ref.digest and ref.digest != digest:
            raise PinMismatchError(
                f"the manifest hashes to {digest}, the reference pins {ref.digest}",
                reference=str(ref),
                expected=ref.digest,
                actual=digest,
            )
        url = self._url(ref, "manifests", ref.tag or digest)

        async def put() -> str:
            headers = {"Content-Type": media_type}
            async with self._exchange("PUT", url, ref, _push_scope(ref), headers=headers, content=raw) as r:
                await self._expect(r, (201,), ref, what="the manifest")
                served = r.headers.get("docker-content-digest")
            if served and served != digest:
                raise DigestMismatchError(
                    f"the registry stored the manifest as {served}, we sent {digest}",
                    reference=str(ref),
                    expected=digest,
                    actual=served,
                )
            return digest

        return await self._with_retries(put, ref)

    # ----------------------------------------------------------------------------------------------- plumbing

    def _check(self, ref: Reference) -> None:
        """Refuse before any request: another registry's reference, or credentials that would go in clear."""
        if ref.registry != self.registry:
            raise InvalidReferenceError(
                f"this client talks to {self.registry}, not {ref.registry}", reference=str(ref), part="host"
            )
        if self.insecure and self._credentials is not None and not self._plain_http_allowed(self.registry):
            raise InsecureCredentialsError(
                f"credentials for {self.registry} would be sent over plain HTTP (insecure), readable by anyone on "
                "the path, so nothing was sent: serve the registry over TLS (drop insecure; a private CA is "
                "trusted with the controller's WASMFLOW_REGISTRY_CA_FILE or wasmflow push --ca-file), or allow "
                f"credentials over plain HTTP to {self.registry} explicitly (the controller's "
                "WASMFLOW_REGISTRY_PLAIN_HTTP_CREDENTIAL_HOSTS, chart value registry.plainHttpCredentialHosts; "
                "wasmflow push --allow-plain-http-credentials)",
                reference=str(ref),
                host=self.registry,
            )

    def _plain_http_allowed(self, host: str) -> bool:
        """Whether credentials may go to ``host`` (``host[:port]``) over plain HTTP: loopback, or listed."""
        name = _host_name(host)
        return _is_loopback(name) or host.lower() in self._plain_http_hosts or name in self._plain_http_hosts

    def _url(self, ref: Reference, kind: str, tail: str) -> str:
        return str(self.base_url.join(f"/v2/{ref.repository}/{kind}/{tail}"))

    def _location(self, response: httpx.Response, ref: Reference) -> str:
        """Where an upload goes on: the registry's own origin only (our Authorization goes with it)."""
        location = response.headers.get("location")
        if not location:
            raise ServerError(
                f"the registry answered {response.status_code} without a Location for the upload",
                reference=str(ref),
                status=response.status_code,
            )
        target = _join(response.url, location, ref)
        if _origin_of(target) != self._origin:
            raise UnsafeRedirectError(
                f"the registry sent the upload on to {_describe_origin(target)}, not to itself ({self.base_url}): "
                "refused, an upload and its credentials stay with the registry",
                reference=str(ref),
            )
        return str(target)

    async def _with_retries(self, operation: Callable[[], Awaitable[_T]], ref: Reference) -> _T:
        attempts = max(1, self.retry.attempts)
        for attempt in range(attempts):
            try:
                return await operation()
            except _Transient as exc:
                if attempt + 1 >= attempts:
                    raise exc.error from exc.__cause__
                pause = self.retry.delay(attempt, exc.retry_after)
                log.warning(
                    "registry %s: %s; try %d of %d in %.2fs",
                    self.registry,
                    exc.error.message,
                    attempt + 2,
                    attempts,
                    pause,
                )
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    @contextlib.asynccontextmanager
    async def _exchange(
        self,
        method: str,
        url: str,
        ref: Reference,
        scope: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        redirects: _Redirects = _Redirects.NONE,
    ) -> AsyncIterator[httpx.Response]:
        """One request with auth handled, as a streamed response closed on exit; transient failures raise _Transient.

        Network errors while the caller reads the body are translated too.
        """
        response = await self._send_authorized(method, url, ref, scope, headers or {}, content, redirects)
        try:
            if response.status_code >= 500 or response.status_code == 429:
                detail = await self._error_detail(response)
                raise _Transient(
                    ServerError(
                        f"{method} {response.url.path} answered {response.status_code}{detail}",
                        reference=str(ref),
                        status=response.status_code,
                    ),
                    retry_after=_retry_after(response),
                )
            with _network_errors(self, ref):
                yield response
        finally:
            await response.aclose()

    async def _send_authorized(
        self,
        method: str,
        url: str,
        ref: Reference,
        scope: str,
        headers: Mapping[str, str],
        content: bytes | None,
        redirects: _Redirects,
    ) -> httpx.Response:
        response = await self._send(method, url, ref, {**headers, **self._auth_header(scope)}, content, redirects)
        # Only the registry's own challenge is answered: a 401 from storage it redirected to is not its to make.
        if response.status_code != 401 or _origin_of(response.url) != self._origin:
            return response
        challenges = parse_challenges(response.headers.get("www-authenticate", ""))
        await response.aclose()
        authorization = await self._authenticate(challenges, scope, ref)
        response = await self._send(method, url, ref, {**headers, "Authorization": authorization}, content, redirects)
        if response.status_code == 401:
            detail = await self._error_detail(response)
            await response.aclose()
            raise UnauthorizedError(
                f"the registry refused the credentials{detail}"
                if self._credentials is not None
                else f"the registry refused the anonymous token{detail}",
                reference=str(ref),
            )
        return response

    async def _send(
        self,
        method: str,
        url: str,
        ref: Reference,
        headers: Mapping[str, str],
        content: bytes | None,
        redirects: _Redirects,
    ) -> httpx.Response:
        """Send, following redirects only as ``redirects`` allows; Authorization only to the registry's origin."""
        target = httpx.URL(url)
        for hop in range(_MAX_REDIRECTS + 1):
            sent = headers if _origin_of(target) == self._origin else _without_authorization(headers)
            request = self._http.build_request(method, target, headers=sent, content=content)
            with _network_errors(self, ref):
                response = await self._http.send(request, stream=True)
            location = response.headers.get("location")
            if response.status_code not in _REDIRECT_STATUSES or not location or redirects is _Redirects.NONE:
                return response
            await response.aclose()
            following = _join(response.url, location, ref)
            self._check_redirect(response.url, following, redirects, ref, hop)
            target = following
        raise AssertionError("unreachable")  # pragma: no cover - _check_redirect refuses the hop past the limit

    def _check_redirect(
        self, source: httpx.URL, target: httpx.URL, redirects: _Redirects, ref: Reference, hop: int
    ) -> None:
        """Refuse a redirect registries do not send; the message names where it pointed (not what is there)."""
        where = f"the registry redirected {source.path} to {_describe_origin(target)}"
        if hop + 1 > _MAX_REDIRECTS:
            raise UnsafeRedirectError(f"{where}: more than {_MAX_REDIRECTS} redirects, refused", reference=str(ref))
        if target.scheme not in ("http", "https"):
            raise UnsafeRedirectError(f"{where}: not HTTP, refused", reference=str(ref))
        if source.scheme == "https" and target.scheme != "https":
            raise UnsafeRedirectError(
                f"{where}: from HTTPS to plain HTTP, refused (a redirect may keep or raise the protection, never "
                "drop it)",
                reference=str(ref),
            )
        if redirects is _Redirects.SAME_ORIGIN and _origin_of(target) != self._origin:
            raise UnsafeRedirectError(
                f"{where}: a manifest is served by the registry itself, only blob downloads may be sent to storage "
                "elsewhere; refused",
                reference=str(ref),
            )

    def _auth_header(self, scope: str) -> dict[str, str]:
        token = self._auth.tokens.get(scope)
        if token is not None and token.expires > self._clock():
            return {"Authorization": token.header}
        if self._auth.basic and self._credentials is not None:
            return {"Authorization": self._credentials.basic_header()}
        return {}

    async def _authenticate(self, challenges: list[Challenge], scope: str, ref: Reference) -> str:
        """The Authorization value answering ``challenges`` for ``scope``, fetching a token if need be."""
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        basic = next((c for c in challenges if c.scheme == "basic"), None)
        if bearer is not None:
            token = await self._fetch_token(bearer, scope, ref)
            self._auth.tokens[scope] = token
            return token.header
        if basic is not None:
            if self._credentials is None:
                raise UnauthorizedError(
                    "the registry requires credentials (basic auth) and none were given", reference=str(ref)
                )
            self._auth.basic = True
            return self._credentials.basic_header()
        schemes = ", ".join(sorted({c.scheme for c in challenges})) or "none"
        raise UnauthorizedError(
            f"the registry answered 401 with no usable challenge (schemes: {schemes})", reference=str(ref)
        )

    def _realm(self, challenge: Challenge, ref: Reference) -> httpx.URL:
        """The token realm, refused when a token (and the credentials asking for it) would travel in clear."""
        realm = challenge.realm
        if not realm:
            raise UnauthorizedError("the registry's bearer challenge names no realm", reference=str(ref))
        try:
            realm_url = httpx.URL(realm)
        except httpx.InvalidURL as exc:
            raise UnauthorizedError("the registry's bearer realm is not a URL", reference=str(ref)) from exc
        if realm_url.scheme not in ("http", "https") or not realm_url.host:
            raise UnauthorizedError("the registry's bearer realm is not an HTTP(S) URL", reference=str(ref))
        if realm_url.scheme == "https":
            return realm_url
        host = _describe_origin(realm_url)
        if not self.insecure:
            raise InsecureCredentialsError(
                f"the registry (HTTPS) sends for tokens to a plain-HTTP realm ({host}): a token there travels in "
                "clear, so none was asked for; the registry's token service must be HTTPS",
                reference=str(ref),
                host=host,
            )
        if self._credentials is not None and not self._plain_http_allowed(_host_port(realm_url)):
            raise InsecureCredentialsError(
                f"credentials would be sent over plain HTTP to the token realm {host}, so nothing was sent: serve "
                "it over TLS, or allow credentials over plain HTTP to that host explicitly (the controller's "
                "WASMFLOW_REGISTRY_PLAIN_HTTP_CREDENTIAL_HOSTS; wasmflow push --allow-plain-http-credentials)",
                reference=str(ref),
                host=host,
            )
        return realm_url

    async def _fetch_token(self, challenge: Challenge, scope: str, ref: Reference) -> _Token:
        realm_url = self._realm(challenge, ref)
        credentials = self._credentials
        scopes = [scope] + ([challenge.params["scope"]] if challenge.params.get("scope", scope) != scope else [])
        params: list[tuple[str, str | int | float | bool | None]] = [("scope", s) for s in scopes]
        if "service" in challenge.params:
            params.insert(0, ("service", challenge.params["service"]))
        if credentials is not None and credentials.identity_token:
            # OAuth2 refresh-token grant, as docker does with an identity token (ACR's `az acr login`).
            form = {"grant_type": "refresh_token", "refresh_token": credentials.identity_token, "client_id": "wasmflow"}
            if "service" in challenge.params:
                form["service"] = challenge.params["service"]
            form["scope"] = " ".join(scopes)
            request = self._http.build_request("POST", realm_url, data=form)
        else:
            auth = (
                {"Authorization": credentials.basic_header()}
                if credentials is not None and (credentials.username or credentials.password)
                else {}
            )
            request = self._http.build_request("GET", realm_url.copy_merge_params(params), headers=auth)
        with _network_errors(self, ref):
            response = await self._http.send(request, stream=True)
        try:
            body = await self._token_answer(response, realm_url, ref)
        finally:
            await response.aclose()
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UnauthorizedError(
                f"the token service at {realm_url.host} answered with something that is not JSON", reference=str(ref)
            ) from exc
        token = document.get("token") or document.get("access_token") if isinstance(document, dict) else None
        if not isinstance(token, str) or not token:
            raise UnauthorizedError(f"the token service at {realm_url.host} sent no token", reference=str(ref))
        lifetime = document.get("expires_in")
        seconds = float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else _DEFAULT_TOKEN_LIFETIME_S
        # Renew a little early so a token never expires between our check and the registry's.
        return _Token(header=f"Bearer {token}", expires=self._clock() + seconds * 0.9)

    async def _token_answer(self, response: httpx.Response, realm_url: httpx.URL, ref: Reference) -> bytes:
        """The body of a 200 token answer, at most _MAX_TOKEN_BYTES; any other status is the error saying why."""
        status = response.status_code
        if status in (401, 403):
            raise UnauthorizedError(
                f"the token service at {realm_url.host} refused the "
                + ("credentials" if self._credentials is not None else "anonymous request")
                + f" ({status})",
                reference=str(ref),
            )
        if status >= 500 or status == 429:
            raise _Transient(
                ServerError(
                    f"the token service at {realm_url.host} answered {status}", reference=str(ref), status=status
                ),
                retry_after=_retry_after(response),
            )
        if status != 200:
            raise ServerError(
                f"the token service at {realm_url.host} answered {status}", reference=str(ref), status=status
            )
        body = bytearray()
        with _network_errors(self, ref):
            async for chunk in response.aiter_bytes():
                body.extend(chunk)
                if len(body) > _MAX_TOKEN_BYTES:
                    raise UnauthorizedError(
                        f"the token service at {realm_url.host} sent more than {_MAX_TOKEN_BYTES} bytes: not a token "
                        "answer, refused",
                        reference=str(ref),
                    )
        return bytes(body)

    async def _error_detail(self, response: httpx.Response) -> str:
        return (await _error_codes(response, self._origin))[1]

    async def _expect(self, response: httpx.Response, ok: tuple[int, ...], ref: Reference, *, what: str) -> None:
        """Translate any status outside ``ok`` into the error that says why."""
        status = response.status_code
        if status in ok:
            return
        codes, detail = await _error_codes(response, self._origin)
        where = str(ref)
        if status == 404:
            if "NAME_UNKNOWN" in codes:
                raise NotFoundError(f"repository {ref.repository} not found on {ref.registry}{detail}", reference=where)
            raise NotFoundError(f"{what} not found{detail}", reference=where)
        if status == 403:
            raise UnauthorizedError(f"access to {what} denied{detail}", reference=where)
        if status == 401:
            raise UnauthorizedError(f"the registry refused access to {what}{detail}", reference=where)
        if status == 413:
            raise TooLargeError(f"the registry refused {what} as too large{detail}", reference=where)
        if status == 400 and codes & {"NAME_INVALID", "TAG_INVALID"}:
            raise InvalidReferenceError(
                f"the registry refused the reference{detail}", reference=where, part="repository"
            )
        if status == 400 and codes & {"DIGEST_INVALID", "SIZE_INVALID"}:
            raise DigestMismatchError(f"the registry refused {what}{detail}", reference=where)
        if status == 400 and codes & {"MANIFEST_INVALID", "MANIFEST_BLOB_UNKNOWN", "MANIFEST_UNVERIFIED"}:
            raise UnsupportedArtifactError(
                f"the registry refused the manifest{detail}", reference=where, found=", ".join(sorted(codes))
            )
        raise ServerError(f"{what}: unexpected answer {status}{detail}", reference=where, status=status)


def _tls_context(ca_file: Path) -> ssl.SSLContext:
    """The system's trusted CAs and the bundle in ``ca_file`` (one controller-wide bundle must not make public
    registries untrusted)."""
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the CA bundle: {exc}", where=str(ca_file)) from exc
    return context


@contextlib.contextmanager
def _network_errors(client: RegistryClient, ref: Reference) -> Iterator[None]:
    """Translate httpx transport failures into a retryable UnreachableError (TLS verification: not retried)."""
    try:
        yield
    except httpx.TransportError as exc:
        message = _describe_transport_error(exc, client)
        error = UnreachableError(message, reference=str(ref))
        if _is_tls_verification(exc) or _is_plain_http(exc):
            raise error from exc  # retrying will not change the certificate or the protocol
        raise _Transient(error) from exc


def _describe_transport_error(exc: httpx.TransportError, client: RegistryClient) -> str:
    text = str(exc) or exc.__class__.__name__
    if _is_tls_verification(exc):
        return (
            f"the TLS certificate of {client.registry} is not trusted ({text}): give the bundle of the CA that signed "
            "it (wasmflow push --ca-file; the controller's WASMFLOW_REGISTRY_CA_FILE)"
        )
    if _is_plain_http(exc):
        return f"TLS handshake with {client.registry} failed ({text}): if it serves plain HTTP, set insecure: true"
    kind = {
        httpx.ConnectTimeout: "connection timed out",
        httpx.ReadTimeout: "read timed out",
        httpx.WriteTimeout: "write timed out",
        httpx.PoolTimeout: "timed out waiting for a connection",
        httpx.ConnectError: "cannot connect",
        httpx.ReadError: "connection broken while reading",
        httpx.WriteError: "connection broken while writing",
        httpx.RemoteProtocolError: "the registry broke the HTTP exchange",
    }.get(type(exc), exc.__class__.__name__)
    return f"{client.base_url}: {kind} ({text})"


def _is_plain_http(exc: BaseException) -> bool:
    """TLS spoken to a plain-HTTP server: OpenSSL reads the HTTP answer as a record with a wrong version."""
    return "WRONG_VERSION_NUMBER" in str(exc) or "wrong version number" in str(exc)


def _is_tls_verification(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _pull_scope(ref: Reference) -> str:
    return f"repository:{ref.repository}:pull"


def _push_scope(ref: Reference) -> str:
    return f"repository:{ref.repository}:pull,push"


def _base_type(content_type: str | None) -> str | None:
    return content_type.split(";", 1)[0].strip() if content_type else None


def _check_served_digest(digest: str, ref: Reference, what: str) -> None:
    """A ``Docker-Content-Digest`` must be a digest we verify before anything is compared with it or returned."""
    try:
        parse_digest(digest)
    except InvalidReferenceError as exc:
        raise CorruptContentError(
            f"the registry names {what} by a Docker-Content-Digest that is not one we verify ({exc.message}): "
            "nothing it names that way is believed",
            reference=str(ref),
            actual=_clean(digest, 80),
        ) from exc


def _origin_of(url: httpx.URL) -> _Origin:
    """(scheme, host, port) with the scheme's default port filled in: what 'the same server' means here."""
    port = url.port or (443 if url.scheme == "https" else 80)
    return url.scheme, url.host.lower(), port


def _host_port(url: httpx.URL) -> str:
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{host}:{url.port}" if url.port else host


def _describe_origin(url: httpx.URL) -> str:
    """``scheme://host[:port]`` of ``url``: where it points, without its path or query (which may carry secrets)."""
    return f"{url.scheme}://{_host_port(url)}"


def _host_name(host_port: str) -> str:
    """The host of ``host[:port]`` (an IPv6 address without its brackets), lower-case."""
    try:
        return httpx.URL(f"http://{host_port}").host.lower()
    except httpx.InvalidURL:
        return host_port.lower()


def _is_loopback(name: str) -> bool:
    """``localhost`` or a loopback address: traffic that never leaves the machine (no DNS name is trusted to)."""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _join(base: httpx.URL, location: str, ref: Reference) -> httpx.URL:
    try:
        return base.join(location)
    except httpx.InvalidURL as exc:
        raise UnsafeRedirectError("the registry sent a Location that is not a URL", reference=str(ref)) from exc


def _without_authorization(headers: Mapping[str, str]) -> dict[str, str]:
    return {key: value for key, value in headers.items() if key.lower() != "authorization"}


def _clean(text: str, limit: int) -> str:
    """``text`` with control characters blanked, whitespace collapsed, cut to ``limit`` characters."""
    collapsed = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return collapsed if len(collapsed) <= limit else collapsed[: limit - 3] + "..."


def _check_length(response: httpx.Response, limit: int, size: int | None, ref: Reference, what: str) -> None:
    """Refuse before reading when Content-Length already says too much."""
    header = response.headers.get("content-length")
    if not header or not header.isdigit():
        return
    length = int(header)
    if length > limit:
        raise TooLargeError(
            f"{what} is {length} bytes (Content-Length), over the limit of {limit} bytes",
            reference=str(ref),
            limit=limit,
        )
    if size is not None and length != size:
        raise CorruptContentError(
            f"the registry is sending {length} bytes for {what}, its descriptor declares {size}",
            reference=str(ref),
            actual=f"{length} bytes",
        )


async def _chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    async for chunk in response.aiter_bytes(_CHUNK):
        yield chunk


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


async def _read_some(response: httpx.Response, limit: int = _ERROR_BODY_LIMIT) -> bytes:
    body = bytearray()
    with contextlib.suppress(httpx.HTTPError):
        async for chunk in response.aiter_bytes():
            body.extend(chunk)
            if len(body) >= limit:
                break
    return bytes(body[:limit])


async def _error_codes(response: httpx.Response, origin: _Origin) -> tuple[set[str], str]:
    """The distribution error codes in the body, and a ``: message`` suffix for ours (empty when none).

    Only the registry's own structured errors (``{"errors": [{"code", "message"}]}``) are read, and only from its
    own origin: at most _ERRORS_SHOWN of them, codes that look like codes, messages cut and stripped of control
    characters. Anything else (an HTML page, the answer of whatever a redirect pointed to) is never quoted: at
    most its size is said.
    """
    if response.request.method == "HEAD":
        return set(), ""
    if _origin_of(response.url) != origin:
        return set(), f" (from {_describe_origin(response.url)}, body not shown)"
    body = await _read_some(response)
    try:
        document = json.loads(body)
        errors = document.get("errors") if isinstance(document, dict) else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        errors = None
    if not isinstance(errors, list):
        if not body:
            return set(), ""
        if b"HTTP request to an HTTPS server" in body:  # Go's net/http, to plain HTTP on its TLS port
            return set(), ": the server says it got an HTTP request to an HTTPS server (drop insecure)"
        size = f"{len(body)}+" if len(body) >= _ERROR_BODY_LIMIT else str(len(body))
        return set(), f" (a body of {size} bytes that is not a distribution error, not shown)"
    codes: set[str] = set()
    shown: list[str] = []
    for error in errors:
        if not isinstance(error, dict):
            continue
        code = error.get("code")
        code = code if isinstance(code, str) and _ERROR_CODE.match(code) else None
        if code is not None:
            codes.add(code)
        message = error.get("message")
        text = _clean(message, _ERROR_MESSAGE_CHARS) if isinstance(message, str) else ""
        if (code or text) and len(shown) < _ERRORS_SHOWN:
            shown.append(text or code or "")
    return codes, f": {'; '.join(shown)}" if shown else ""
