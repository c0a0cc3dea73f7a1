"""OCI references: ``host[:port]/repository[:tag][@algorithm:hex]``, parsed strictly.

Edge registries have no implicit default: a reference without a registry host is refused (no ``docker.io``
guessing), and every refusal names the part that is wrong. Without a tag or a digest the tag is ``latest``.
A reference with both a tag and a digest is pulled by its digest (the tag is kept for messages only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from wasmflow.oci.errors import InvalidReferenceError

__all__ = ["DEFAULT_TAG", "Reference", "parse_digest", "parse_reference"]

DEFAULT_TAG = "latest"
#: Names longer than this are refused by distribution (registry host + repository).
MAX_NAME_LENGTH = 255

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_IPV4 = re.compile(r"^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$")
_IPV6 = re.compile(r"^\[[0-9A-Fa-f:.]+\]$")
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_HEX_LENGTH = {"sha256": 64, "sha512": 128}


@dataclass(frozen=True)
class Reference:
    """A parsed reference. ``registry`` is ``host[:port]`` exactly as written (it is also the credentials key)."""

    registry: str
    repository: str
    tag: str | None = DEFAULT_TAG
    digest: str | None = None

    @property
    def identifier(self) -> str:
        """What goes after ``/manifests/``: the digest when pinned, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def name(self) -> str:
        """``registry/repository`` without tag or digest."""
        return f"{self.registry}/{self.repository}"

    def with_digest(self, digest: str) -> Reference:
        parse_digest(digest)
        return replace(self, digest=digest)

    def with_tag(self, tag: str | None) -> Reference:
        return replace(self, tag=tag)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_digest(text: str, *, reference: str | None = None) -> tuple[str, str]:
    """``(algorithm, hex)`` of ``algorithm:hex``; sha256 and sha512 only, lower-case hex of the right length."""
    algorithm, sep, hexpart = text.partition(":")
    if not sep:
        raise InvalidReferenceError(
            f"digest {text!r} has no algorithm: write it as sha256:<64 hex digits>", reference=reference, part="digest"
        )
    if algorithm not in _HEX_LENGTH:
        raise InvalidReferenceError(
            f"digest algorithm {algorithm!r} is not supported (sha256 or sha512)", reference=reference, part="digest"
        )
    length = _HEX_LENGTH[algorithm]
    if len(hexpart) != length or not all(c in "0123456789abcdef" for c in hexpart):
        hint = " (hex digits must be lower-case)" if hexpart.lower() != hexpart else ""
        raise InvalidReferenceError(
            f"digest {text!r} is not {algorithm}: followed by {length} hex digits{hint}",
            reference=reference,
            part="digest",
        )
    return algorithm, hexpart


def parse_reference(text: str) -> Reference:
    """Parse ``host[:port]/repository[:tag][@digest]``; raise InvalidReferenceError naming the wrong part."""
    ref = text
    if not text or text != text.strip() or any(c.isspace() for c in text):
        raise InvalidReferenceError(
            "a reference must be non-empty and contain no spaces", reference=ref, part="reference"
        )
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise InvalidReferenceError(
            f"a reference has no scheme: drop {scheme + '://'!r} (plain HTTP is chosen with insecure: true)",
            reference=ref,
            part="scheme",
        )
    rest, at, digest = text.partition("@")
    if at:
        parse_digest(digest, reference=ref)
    host, slash, path = rest.partition("/")
    if not slash and _looks_like_host(host):
        raise InvalidReferenceError(
            f"no repository after the host: write {host}/<repository>[:tag]", reference=ref, part="repository"
        )
    if not slash or not _looks_like_host(host):
        example = f"registry.example:5000/{rest.lstrip('/')}" if rest.strip("/") else "registry.example:5000/ops/m:1"
        raise InvalidReferenceError(
            f"no registry host: the reference must start with host[:port]/ (wasmflow has no default registry), "
            f"e.g. {example}",
            reference=ref,
            part="host",
        )
    _check_host(host, ref)
    tag: str | None = None
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, _, tag = path.rpartition(":")
        if not _TAG.match(tag):
            raise InvalidReferenceError(
                f"tag {tag!r} is invalid: up to 128 of letters, digits, '_', '.', '-', not starting with '.' or '-'",
                reference=ref,
                part="tag",
            )
    _check_repository(path, ref)
    if len(host) + 1 + len(path) > MAX_NAME_LENGTH:
        raise InvalidReferenceError(
            f"the name is longer than {MAX_NAME_LENGTH} characters", reference=ref, part="repository"
        )
    if tag is None and not at:
        tag = DEFAULT_TAG
    return Reference(registry=host, repository=path, tag=tag, digest=digest if at else None)


def _looks_like_host(host: str) -> bool:
    """The first path part is a host when it has a dot, a port, is bracketed IPv6 or is localhost (docker's rule)."""
    return bool(host) and ("." in host or ":" in host or host.startswith("[") or host == "localhost")


def _check_host(host: str, ref: str) -> None:
    name, port = host, None
    if host.startswith("["):
        end = host.find("]")
        name, after = host[: end + 1], host[end + 1 :]
        if end < 0 or (after and not after.startswith(":")):
            raise InvalidReferenceError(f"host {host!r} is not a valid [IPv6] address", reference=ref, part="host")
        port = after[1:] if after else None
    elif ":" in host:
        name, _, port = host.partition(":")
    if port is not None and (not port.isdigit() or not 0 < int(port) < 65536 or port != str(int(port))):
        raise InvalidReferenceError(f"port {port!r} is not a number from 1 to 65535", reference=ref, part="port")
    if not (_HOSTNAME.match(name) or _IPV4.match(name) or _IPV6.match(name)):
        raise InvalidReferenceError(f"host {name!r} is not a valid host name or IP address", reference=ref, part="host")


def _check_repository(path: str, ref: str) -> None:
    if not path:
        raise InvalidReferenceError("the repository is empty", reference=ref, part="repository")
    for component in path.split("/"):
        if not _COMPONENT.match(component):
            hint = " (repositories are lower-case)" if component.lower() != component else ""
            raise InvalidReferenceError(
                f"repository part {component!r} is invalid{hint}: lower-case letters and digits, separated by "
                "'.', '_', '__' or dashes",
                reference=ref,
                part="repository",
            )
