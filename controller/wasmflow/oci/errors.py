"""Why a registry operation failed, as types the controller maps to status reasons.

Every error here is a ``wasmflow.errors.RegistryError``; ``reason`` is the stable word the WasmModule controller
writes into its conditions, ``transient`` says whether trying again later may heal it. Messages name the reference,
the part that is wrong, the media type found or the digests compared; they never carry credentials or tokens.

    RegistryError (wasmflow.errors)
    └── OciError                      reason              transient
        ├── InvalidReferenceError     InvalidReference    no   the reference does not parse (``part`` names where)
        ├── NotFoundError             NotFound            no   repository, tag, manifest or blob unknown
        ├── UnauthorizedError         Unauthorized        no   credentials missing or refused, access denied
        ├── DigestMismatchError       DigestMismatch      no   digests disagree (an upload the registry refused)
        │   ├── PinMismatchError      DigestMismatch      no   the artifact is not the one the user pinned
        │   └── CorruptContentError   DigestMismatch      yes  served bytes do not match their own digest or size
        ├── TooLargeError             TooLarge            no   a manifest or blob is over the size limit
        ├── UnsupportedArtifactError  UnsupportedArtifact no   not a Wasm component / graph (``found`` names it)
        ├── InsecureCredentialsError  InsecureCredentials no   credentials or a token would travel over plain HTTP
        ├── UnsafeRedirectError       UnsafeRedirect      no   a redirect a registry has no business sending
        ├── UnreachableError          Unreachable         yes  refused, reset, timed out, TLS failure
        └── ServerError               ServerError         yes  5xx or 429 after the retries (other 4xx: no)
"""

from __future__ import annotations

from typing import ClassVar

from wasmflow.errors import RegistryError

__all__ = [
    "CorruptContentError",
    "DigestMismatchError",
    "InsecureCredentialsError",
    "InvalidReferenceError",
    "NotFoundError",
    "OciError",
    "PinMismatchError",
    "ServerError",
    "TooLargeError",
    "UnauthorizedError",
    "UnreachableError",
    "UnsafeRedirectError",
    "UnsupportedArtifactError",
]


class OciError(RegistryError):
    """Base of the typed registry errors; ``reference`` is the reference being handled, when there is one."""

    reason: ClassVar[str] = "RegistryError"
    transient: bool = False

    def __init__(self, message: str, *, reference: str | None = None) -> None:
        self.message = message
        self.reference = reference
        super().__init__(f"{reference}: {message}" if reference else message)


class InvalidReferenceError(OciError):
    """The reference does not parse; ``part`` is the piece that is wrong (host, port, repository, tag, digest)."""

    reason = "InvalidReference"

    def __init__(self, message: str, *, reference: str | None = None, part: str = "") -> None:
        self.part = part
        super().__init__(message, reference=reference)


class NotFoundError(OciError):
    """The registry does not know the repository, the tag, the manifest or the blob."""

    reason = "NotFound"


class UnauthorizedError(OciError):
    """The registry wants credentials we do not have, refused the ones we sent, or denies this access."""

    reason = "Unauthorized"


class DigestMismatchError(OciError):
    """Content did not hash to the digest that names it, or a tag resolved to something other than the pin."""

    reason = "DigestMismatch"

    def __init__(self, message: str, *, reference: str | None = None, expected: str = "", actual: str = "") -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(message, reference=reference)


class PinMismatchError(DigestMismatchError):
    """The reference resolved to an artifact other than the pinned one (``expected``): the pin or the reference is
    what the user must change; pulling again cannot help."""


class CorruptContentError(DigestMismatchError):
    """The registry served bytes that do not hash to the digest naming them, or not the size their descriptor
    declares: its storage is damaged or something on the way tampers with the transfer. Nobody's pin is wrong, so
    it is transient: a repaired registry (or a clean path) heals it, and nothing unverified is ever used meanwhile."""

    transient = True


class TooLargeError(OciError):
    """A manifest or blob is over the limit; ``received`` is how many bytes were read before stopping (often 0)."""

    reason = "TooLarge"

    def __init__(self, message: str, *, reference: str | None = None, limit: int = 0, received: int = 0) -> None:
        self.limit = limit
        self.received = received
        super().__init__(message, reference=reference)


class UnsupportedArtifactError(OciError):
    """The artifact is not a layout we pull (an image, an index, a non-wasm layer...); ``found`` names what it is."""

    reason = "UnsupportedArtifact"

    def __init__(self, message: str, *, reference: str | None = None, found: str = "") -> None:
        self.found = found
        super().__init__(message, reference=reference)


class InsecureCredentialsError(OciError):
    """Credentials (or a token obtained with them) would cross the network in clear: refused before any is sent.

    ``host`` is the registry or token host; the message says how to allow it (a host on loopback always is).
    """

    reason = "InsecureCredentials"

    def __init__(self, message: str, *, reference: str | None = None, host: str = "") -> None:
        self.host = host
        super().__init__(message, reference=reference)


class UnsafeRedirectError(OciError):
    """The registry redirected a request where registries do not (a manifest to another host, https to http, more
    hops than a blob download to storage takes): followed, it would make us a probe of whatever it points to."""

    reason = "UnsafeRedirect"


class UnreachableError(OciError):
    """The registry could not be reached (refused, reset, timed out, TLS failed) after the retries."""

    reason = "Unreachable"
    transient = True


class ServerError(OciError):
    """The registry answered with an error status; 5xx and 429 are transient, any other unexpected status is not."""

    reason = "ServerError"
    transient = True

    def __init__(self, message: str, *, reference: str | None = None, status: int = 0) -> None:
        self.status = status
        self.transient = status >= 500 or status == 429
        super().__init__(message, reference=reference)
