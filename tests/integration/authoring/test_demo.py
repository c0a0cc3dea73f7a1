"""`make demo`'s script, end to end: examples built, pushed to a real registry, run by the worker over real MQTT.

The demo checks itself (it exits 1 unless every reading is accounted for); this test also holds it to what it
promises to show, and to cleaning up: nothing it started is left running, its scratch directory is gone.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[3]


def listening(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket() as s:
        return s.connect_ex((host, int(port))) == 0


def test_the_demo_runs_the_plant_dataflow_through_registry_mqtt_and_worker(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(ROOT / "hack" / "demo.sh")],
        env={**os.environ, "TMPDIR": str(tmp_path), "DEMO_RATE": "60"},
        capture_output=True,
        text=True,
        check=False,
        timeout=1100,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert out.count("✓ wasmflow push ") == 5
    assert len(re.findall(r"^    sha256:[0-9a-f]{64}$", out, re.MULTILINE)) == 5
    assert "✓ resolved 5 WasmModules as the controller does" in out
    assert "worker ready" in out
    # The per-node table from the worker's /metrics, once everything is in.
    assert re.search(r"^  sensors +source +60 +60", out, re.MULTILINE)
    assert re.search(r"^  in-range +filter +60 +58 +2", out, re.MULTILINE)
    assert out.count("  ALERT oven-2: ") == 3
    assert "alerts on plant/alerts    3: oven-2" in out
    assert "✓ every reading accounted for: 3 alerts + 55 averaged + 2 dropped = 60" in out
    # Cleaned up: the run directory (registry, broker, worker state) is gone and its services no longer answer.
    registry = re.search(r"registry http://(\S+), broker mqtt://(\S+)", out)
    assert registry is not None
    assert not listening(registry.group(1))
    assert not listening(registry.group(2))
    assert list(tmp_path.iterdir()) == []
