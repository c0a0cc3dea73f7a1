"""The ``report`` fixture: a fault or hostile-input test prints its figures as a ``FAULT`` line, even uncaptured.

``make test-faults`` collects these lines; each hardening case prints one with what it measured (memory, time,
messages lost). Registered as a plugin by tests/conftest.py, so unit and integration tests share it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

Report = Callable[..., None]


@pytest.fixture
def report(request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> Report:
    """``report(lost=0, duplicated=3, recovery_s=1.2)``: print the figures of this test, uncaptured."""

    def say(**figures: Any) -> None:
        text = " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
        with capsys.disabled():
            print(f"\nFAULT {request.node.name}: {text}")

    return say
