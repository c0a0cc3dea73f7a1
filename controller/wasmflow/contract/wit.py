"""Where the WIT contract lives, and its identity (package name and version).

The ``wit/`` folder ships inside the wheel; ``wasmflow wit`` prints it and ``wasmflow new`` scaffolds against it.
"""

from __future__ import annotations

from pathlib import Path

NAMESPACE = "wasmflow"
PACKAGE = "operator"
VERSION = "0.1.0"
WIT_DIR = Path(__file__).resolve().parent / "wit"


def wit_files() -> list[Path]:
    """The WIT files of the contract, in a stable order."""
    return sorted(WIT_DIR.glob("*.wit"))


def read_wit() -> str:
    """The whole WIT package as text."""
    return "\n".join(p.read_text(encoding="utf-8") for p in wit_files())


def interface_name(interface: str, version: str = VERSION) -> str:
    """The fully qualified name a component uses for one of our interfaces, e.g. ``wasmflow:operator/map@0.1.0``."""
    return f"{NAMESPACE}:{PACKAGE}/{interface}@{version}"
