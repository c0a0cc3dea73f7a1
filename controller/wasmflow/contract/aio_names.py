"""The names of Azure IoT Operations (AIO) operator packages and of the host interfaces their components import.

Plain data with no imports of its own, so both the import classification (``capabilities``) and the AIO checker
(``aio``) can use it without importing each other. See ``wit/aio/README.md`` for the two published packages.
"""

from __future__ import annotations

#: Package -> the major version wasmflow speaks. Both published packages are 1.x.
PACKAGES = {"tinykube-graph:processor": "1.", "wasm-graph:processor": "1."}

#: Interfaces the host serves to AIO components (types carries the `buffer` resource).
PROVIDED = frozenset({"types", "hybrid-logical-clock", "logger", "metrics", "state-store", "state-store-types"})

#: Interfaces AIO hosts offer that wasmflow cannot serve: linked, and every call fails with an error naming them.
DENIED = frozenset({"command-invoker", "rpc-types", "schema-registry", "schema-types"})

#: The operator interfaces an AIO component may export (one module may export several).
OPERATIONS = ("map", "filter", "branch", "accumulate", "delay")


def aio_interface(base: str, version: str | None) -> tuple[str, str] | None:
    """(package, interface) when ``base`` (``ns:pkg/iface``) at ``version`` is an AIO interface, else None."""
    package, sep, interface = base.partition("/")
    major = PACKAGES.get(package)
    if not sep or major is None or version is None or not version.startswith(major):
        return None
    return package, interface
