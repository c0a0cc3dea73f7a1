"""Registry credentials and the parts of the auth handshake that are pure: challenges and docker config lookup.

A registry answers 401 with ``WWW-Authenticate``: ``Basic realm=...`` (send the credentials on every request) or
``Bearer realm=...,service=...,scope=...`` (ask ``realm`` for a token for that scope, with the credentials if any,
and send the token). The client drives the exchange; this module parses and decides.

Credentials come from a ``kubernetes.io/dockerconfigjson`` Secret's ``.dockerconfigjson`` (the operator reads the
Secret, the worker reads the mounted file) or from the command line. They never appear in a repr, a message or a
log line: the fields are excluded from ``repr`` and no error here quotes them.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wasmflow.errors import ConfigError

__all__ = [
    "Challenge",
    "Credentials",
    "credentials_from_docker_config",
    "load_docker_config",
    "parse_challenges",
    "registry_key",
]


@dataclass(frozen=True)
class Credentials:
    """A username and password (or an identity token, the OAuth2 refresh token ``az acr login`` stores)."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str | None = field(default=None, repr=False)

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header; ``scheme`` lower-case, parameter names lower-case."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")


def registry_key(text: str) -> str:
    """The ``host[:port]`` a docker config key stands for (keys may carry a scheme and a path, as docker writes)."""
    key = text.strip()
    if "://" in key:
        key = key.split("://", 1)[1]
    return key.split("/", 1)[0].lower()


def credentials_from_docker_config(config: Mapping[str, Any], registry: str) -> Credentials | None:
    """The credentials for ``registry`` (``host[:port]``) in a parsed docker config, or None when it has none.

    Understands ``auths.<key>.auth`` (base64 ``user:password``), ``username``/``password`` and ``identitytoken``.
    A malformed entry is a ConfigError that names the registry key, never the content.
    """
    auths = config.get("auths", {})
    if not isinstance(auths, Mapping):
        raise ConfigError("'auths' must be an object", where=".dockerconfigjson")
    wanted = registry.lower()
    for key, entry in auths.items():
        if registry_key(str(key)) != wanted:
            continue
        where = f".dockerconfigjson auths[{key!r}]"
        if not isinstance(entry, Mapping):
            raise ConfigError("the entry must be an object", where=where)
        identity = entry.get("identitytoken") or None
        username = entry.get("username") or ""
        password = entry.get("password") or ""
        if entry.get("auth"):
            try:
                decoded = base64.b64decode(str(entry["auth"]), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise ConfigError("'auth' is not base64 of 'username:password'", where=where) from exc
            if ":" not in decoded:
                raise ConfigError("'auth' does not decode to 'username:password'", where=where)
            username, password = decoded.split(":", 1)
        if not isinstance(username, str) or not isinstance(password, str):
            raise ConfigError("'username' and 'password' must be strings", where=where)
        if not (username or password or identity):
            return None
        return Credentials(username=username, password=password, identity_token=str(identity) if identity else None)
    return None


def load_docker_config(path: Path, registry: str) -> Credentials | None:
    """Credentials for ``registry`` from a docker config file (a mounted ``.dockerconfigjson`` or ``config.json``)."""
    try:
        config = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read the registry credentials: {exc.strerror}", where=str(path)) from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"the registry credentials are not JSON (line {exc.lineno})", where=str(path)) from exc
    if not isinstance(config, Mapping):
        raise ConfigError("the registry credentials are not a JSON object", where=str(path))
    return credentials_from_docker_config(config, registry)


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` value (RFC 7235) into its challenges.

    Handles quoted strings with backslash escapes, commas inside quotes (``scope="repository:a:pull,push"``),
    several challenges in one header, and token68 values (``Basic abc==``, kept as parameter ``token68``).
    Malformed input yields the challenges that did parse.
    """
    items = _tokenize(header)
    challenges: list[Challenge] = []
    i, n = 0, len(items)

    def is_param(at: int) -> bool:
        return (
            at + 2 < n
            and items[at][0] == "token"
            and items[at + 1][0] == "="
            and items[at + 2][0] in ("token", "quoted")
        )

    while i < n:
        if items[i][0] != "token":
            i += 1
            continue
        scheme, params = items[i][1].lower(), {}
        i += 1
        if i < n and items[i][0] == "token" and not is_param(i):
            value = items[i][1]
            i += 1
            while i < n and items[i][0] == "=":
                value += "="
                i += 1
            params["token68"] = value
        else:
            while i < n:
                if is_param(i):
                    params[items[i][1].lower()] = items[i + 2][1]
                    i += 3
                elif items[i][0] == "," and is_param(i + 1):
                    i += 1
                else:
                    break
        challenges.append(Challenge(scheme, params))
    return challenges


def _tokenize(header: str) -> list[tuple[str, str]]:
    """``(kind, text)`` items: ``token``, ``quoted`` (unescaped content), ``=`` and ``,``; whitespace dropped."""
    items: list[tuple[str, str]] = []
    pos, n = 0, len(header)
    while pos < n:
        char = header[pos]
        if char in " \t":
            pos += 1
        elif char in ",=":
            items.append((char, char))
            pos += 1
        elif char == '"':
            pos += 1
            chars: list[str] = []
            while pos < n and header[pos] != '"':
                if header[pos] == "\\" and pos + 1 < n:
                    pos += 1
                chars.append(header[pos])
                pos += 1
            pos += 1
            items.append(("quoted", "".join(chars)))
        else:
            start = pos
            while pos < n and header[pos] not in ' \t,="':
                pos += 1
            items.append(("token", header[start:pos]))
    return items
