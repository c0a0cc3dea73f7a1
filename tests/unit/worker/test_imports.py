"""What starting a worker imports: every module imported is time on every pod start (issue 5: start under 1 s)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("aiohttp", "httpx", "kopf", "kubernetes")


def _imported_by(statement: str) -> list[str]:
    probe = f"import sys\n{statement}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    return subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout.split()


def test_the_worker_command_imports_no_web_framework_http_client_or_kubernetes_client() -> None:
    # httpx is imported on the first exchange with a registry; modules from files or the cache never need it.
    assert _imported_by("import wasmflow.cli.worker") == []


def test_the_probe_sees_an_http_client_when_one_is_imported() -> None:
    assert _imported_by("import wasmflow.oci.client") == ["httpx"]
