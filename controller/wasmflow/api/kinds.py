"""Enumerations shared by the resources, the contract and the engine (the lowest layer owns them)."""

from __future__ import annotations

import enum


class OperatorKind(enum.StrEnum):
    """The operator kinds of the contract and of a WasmModule's ``spec.operator``."""

    MAP = "map"
    FILTER = "filter"
    BRANCH = "branch"
    ACCUMULATE = "accumulate"


class Capability(enum.StrEnum):
    """Grants a WasmModule can list in ``spec.capabilities``."""

    #: Environment variables (the node's configuration is the intended way to configure an operator).
    ENVIRONMENT = "environment"
    #: A read-only preopened directory (reserved; no directory is mounted yet).
    FILESYSTEM = "filesystem"
    #: TCP/UDP sockets and name lookup.
    NETWORK = "network"
    #: Outgoing HTTP requests (wasi:http).
    HTTP = "http"
    #: stdin; stdout and stderr always go to the log, rate-limited.
    STDIO = "stdio"
