"""Session fixtures for the real test components (see build.py); each is built on first use and cached."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.components.build import build


@pytest.fixture(scope="session")
def component() -> Callable[[str], Path]:
    """``component("f2c_map")`` is the path of that built component (names: ``build.SOURCES``)."""
    return build


@pytest.fixture(scope="session")
def component_bytes() -> Callable[[str], bytes]:
    """``component_bytes("f2c_map")`` is the content of that built component."""
    cache: dict[str, bytes] = {}

    def read(name: str) -> bytes:
        if name not in cache:
            cache[name] = build(name).read_bytes()
        return cache[name]

    return read
