"""Where the WIT contract lives, and its identity (package name and version).

The ``wit/`` folder ships inside the wheel; ``wasmflow wit`` prints it and ``wasmflow new`` scaffolds against it.
"""

from __future__ import annotations

from pathlib import Path

NAMESPACE = "wasmflow"
PACKAGE = "operator"
VERSION = "0.1.0"
WIT_DIR = Path(__file__).resolve().parent / "wit"
#: The rules contract (DESIGN.md 2b): one SDK-free package per operator kind, ``wasmflow:<kind>-rules``.
RULES_DIR = WIT_DIR / "rules"
RULES_VERSION = "0.1.0"


def wit_files() -> list[Path]:
    """The WIT files of the contract, in a stable order."""
    return sorted(WIT_DIR.glob("*.wit"))


def read_wit() -> str:
    """The whole WIT package as text."""
    return "\n".join(p.read_text(encoding="utf-8") for p in wit_files())


def rules_wit_files() -> list[Path]:
    """The rules packages, one file per operator kind (``map.wit`` is ``wasmflow:map-rules``), in a stable order."""
    return sorted(RULES_DIR.glob("*.wit"))


def rules_wit_file(kind: str) -> Path:
    """The rules package of one operator kind; each is a whole WIT package a toolchain can build against."""
    return RULES_DIR / f"{kind}.wit"


def rules_interface_name(kind: str, version: str = RULES_VERSION) -> str:
    """The name a rules component exports, e.g. ``wasmflow:map-rules/rules@0.1.0``."""
    return f"{NAMESPACE}:{kind}-rules/rules@{version}"


def interface_name(interface: str, version: str = VERSION) -> str:
    """The fully qualified name a component uses for one of our interfaces, e.g. ``wasmflow:operator/map@0.1.0``."""
    return f"{NAMESPACE}:{PACKAGE}/{interface}@{version}"
