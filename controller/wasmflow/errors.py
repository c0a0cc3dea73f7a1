"""The one exception hierarchy of wasmflow.

Every error a user can cause or meet carries enough context to say what is wrong and where. Third-party errors
(wasmtime, httpx, kubernetes, paho) are translated at the boundary of the module that calls them and chained with
``raise ... from exc``, so callers only ever catch ``WasmflowError`` subclasses.

    WasmflowError
    ├── ConfigError          a manifest, a config file or a command-line value is invalid
    ├── ContractError        a component does not satisfy the WIT contract
    ├── RegistryError        an OCI registry refused, failed or returned bad content
    ├── EngineError          loading or running a component failed outside a single message
    ├── OperatorFailure      a single message failed inside an operator (trap, timeout, memory, err result)
    └── ConnectorError       a source or sink could not connect, read or write
"""

from __future__ import annotations


class WasmflowError(Exception):
    """Base of every error raised on purpose by wasmflow."""


class ConfigError(WasmflowError):
    """A manifest, a configuration file or a command-line value is invalid.

    ``where`` names the location (a file, a field path such as ``spec.nodes[2].module``).
    """

    def __init__(self, message: str, *, where: str = "") -> None:
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class ContractError(WasmflowError):
    """A component does not satisfy the WIT contract; ``problems`` lists every mismatch found."""


class RegistryError(WasmflowError):
    """An OCI registry refused a request, failed, or returned content that does not verify."""


class EngineError(WasmflowError):
    """Loading, compiling or instantiating a component failed."""


class OperatorFailure(WasmflowError):  # noqa: N818 - a failure of one message, not a programming error
    """One message failed inside one operator; the pipeline goes on.

    ``kind`` is one of ``trap``, ``timeout``, ``memory``, ``error`` (the operator returned ``err``).
    """

    def __init__(self, node: str, kind: str, message: str) -> None:
        self.node = node
        self.kind = kind
        self.message = message
        super().__init__(f"node {node!r}: {kind}: {message}")


class ConnectorError(WasmflowError):
    """A source or sink could not connect, read or write."""
