"""What a component may import, and which grants make those imports work.

Toolchains import more than an operator uses (componentize-py imports wasi:sockets, wasi:filesystem, wasi:cli...),
so the host links every WASI 0.2 interface it knows and *denies* what the WasmModule does not grant: no preopened
directories, no network, no environment. A strict WasmModule refuses components whose imports exceed their grants.

The engine uses ``classify_import`` and ``granted`` to decide what to wire; the checker uses them to report. Both
compile with the same wasm features (``restrict_features``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from wasmtime import Config

from wasmflow.api.kinds import Capability
from wasmflow.contract import aio_names

__all__ = [
    "FEATURES",
    "Capability",
    "ImportClass",
    "ImportVerdict",
    "classify_import",
    "parse_capabilities",
    "restrict_features",
    "split_name",
]


class ImportClass(enum.StrEnum):
    """How the host treats one import of a component."""

    #: Our own interfaces (logging, types): always provided.
    CONTRACT = "contract"
    #: WASI that every operator may use (clocks, random, io, stdout/stderr to the log, exit).
    ALLOWED = "allowed"
    #: WASI linked but denied unless granted.
    DENIED_UNLESS_GRANTED = "denied-unless-granted"
    #: Nothing the host can provide: the component is refused.
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ImportVerdict:
    """The host's answer for one import name."""

    name: str
    kind: ImportClass
    #: The capability that makes it work, for DENIED_UNLESS_GRANTED imports.
    capability: Capability | None = None

    def granted(self, grants: Iterable[Capability | str]) -> bool:
        """True when the import works (not just links) under ``grants``."""
        if self.kind in (ImportClass.CONTRACT, ImportClass.ALLOWED):
            return True
        if self.kind is ImportClass.DENIED_UNLESS_GRANTED and self.capability is not None:
            return self.capability.value in {str(g) for g in grants}
        return False


_NAME = re.compile(
    r"^(?P<ns>[a-z][a-z0-9-]*):(?P<pkg>[a-z][a-z0-9-]*)/(?P<iface>[a-z%][a-z0-9-]*)(?:@(?P<ver>[0-9A-Za-z.+-]+))?$"
)

#: WASI 0.2 interfaces any operator may use: they reveal nothing and reach nothing outside the sandbox.
_ALLOWED = {
    "wasi:io/poll",
    "wasi:io/error",
    "wasi:io/streams",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/exit",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
}

#: WASI 0.2 interfaces linked but denied unless the capability is granted.
_GATED: dict[str, Capability] = {
    "wasi:cli/environment": Capability.ENVIRONMENT,
    "wasi:cli/stdin": Capability.STDIO,
    "wasi:filesystem/types": Capability.FILESYSTEM,
    "wasi:filesystem/preopens": Capability.FILESYSTEM,
    "wasi:sockets/network": Capability.NETWORK,
    "wasi:sockets/instance-network": Capability.NETWORK,
    "wasi:sockets/udp": Capability.NETWORK,
    "wasi:sockets/udp-create-socket": Capability.NETWORK,
    "wasi:sockets/tcp": Capability.NETWORK,
    "wasi:sockets/tcp-create-socket": Capability.NETWORK,
    "wasi:sockets/ip-name-lookup": Capability.NETWORK,
    "wasi:http/types": Capability.HTTP,
    "wasi:http/outgoing-handler": Capability.HTTP,
}

#: Our own interfaces a component may import.
_CONTRACT = {"wasmflow:operator/logging", "wasmflow:operator/types"}
#: Interfaces of types only, which a composed component keeps importing (the host has nothing to provide): the
#: types of Azure's composition sample (``map:custom``, unversioned), plugged by wasmflow's adapter (DESIGN.md 2b).
_TYPES_ONLY = {("map:custom/types", None)}


#: The engine settings ``restrict_features`` applies, as part of the compiled-cache key.
FEATURES = "multi_memory=1;gc=0;exceptions=0"


def restrict_features(config: Config) -> None:
    """Turn off the wasm features that would let an instance hold memory that ``limits.memory`` does not bound.

    The workers' engines and the contract checker's use it alike. Every linear memory is bounded: the engine counts
    the memories a component defines (``wasmflow.contract.parts``) and splits ``limits.memory`` between them
    (``wasmflow.engine.sandbox.StoreLimits``). Multi-memory stays on because wasmtime's fused adapters, which copy
    values between the core modules of a composed component (DESIGN.md 2b), import both modules' memories. The GC
    proposal, on by default in wasmtime, allocates GC objects in a heap of their own, limited like a linear memory
    but not counted with it: 32 MiB of arrays beside 60 MiB of memory ran under a 64 MiB limit. Exceptions allocate
    there too. No toolchain we support emits either (CPython, SpiderMonkey and Rust components use neither), so both
    are off and the engine has no GC heap at all.
    """
    config.wasm_multi_memory = True
    config.wasm_gc = False
    config.wasm_exceptions = False
    config.gc_support = False


def split_name(name: str) -> tuple[str, str | None]:
    """``wasi:cli/stdout@0.2.9`` -> (``wasi:cli/stdout``, ``0.2.9``); names that are not interfaces come back whole."""
    match = _NAME.match(name)
    if not match:
        return name, None
    return f"{match['ns']}:{match['pkg']}/{match['iface']}", match["ver"]


def classify_import(name: str) -> ImportVerdict:
    """What the host does with an import of this name (WASI must be 0.2.x, our contract 0.1.x)."""
    base, version = split_name(name)
    if base in _CONTRACT and version is not None and version.startswith("0.1."):
        return ImportVerdict(name, ImportClass.CONTRACT)
    if (base, version) in _TYPES_ONLY:
        return ImportVerdict(name, ImportClass.CONTRACT)
    aio = aio_names.aio_interface(base, version)
    if aio is not None and aio[1] in aio_names.PROVIDED:
        return ImportVerdict(name, ImportClass.CONTRACT)  # an AIO host interface (aio_names.py)
    if aio is not None and aio[1] in aio_names.DENIED:
        return ImportVerdict(name, ImportClass.DENIED_UNLESS_GRANTED)  # linked; every call fails naming it
    wasi_02 = version is not None and version.startswith("0.2.")
    if wasi_02 and base in _ALLOWED:
        return ImportVerdict(name, ImportClass.ALLOWED)
    if wasi_02 and base in _GATED:
        return ImportVerdict(name, ImportClass.DENIED_UNLESS_GRANTED, _GATED[base])
    return ImportVerdict(name, ImportClass.UNKNOWN)


def parse_capabilities(values: Iterable[str]) -> frozenset[Capability]:
    """Validate grant names; unknown names raise ValueError listing the valid ones."""
    valid = {c.value: c for c in Capability}
    result = set()
    for value in values:
        if value not in valid:
            raise ValueError(f"unknown capability {value!r}; valid: {', '.join(sorted(valid))}")
        result.add(valid[value])
    return frozenset(result)
