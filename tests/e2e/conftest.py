"""The wasmflow image, built once per session from the project's own files (``make docker-build``'s script).

The first build on a machine also builds the Debian base with mmdebstrap (minutes); later sessions reuse the cached
base and buildah's layers.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
HACK = ROOT / "hack"
IMAGE = "localhost/wasmflow:e2e"


@dataclass(frozen=True)
class Run:
    """What one run of the image printed and returned."""

    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Image:
    """A built image and the way to run it as the chart's pod would (``hack/image-run.sh``)."""

    ref: str
    image_id: str

    def run(self, *args: str, volumes: Sequence[tuple[Path, str]] = (), entrypoint: str | None = None) -> Run:
        command = [str(HACK / "image-run.sh")]
        for host, target in volumes:
            command += ["--volume", f"{host}:{target}"]
        if entrypoint:
            command += ["--entrypoint", entrypoint]
        result = subprocess.run([*command, self.ref, *args], capture_output=True, text=True, check=False, timeout=600)
        return Run(result.returncode, result.stdout, result.stderr)


@pytest.fixture(scope="session")
def image() -> Image:
    """``hack/docker-build.sh`` with IMG=localhost/wasmflow:e2e; fails (never skips) when the build fails."""
    result = subprocess.run(
        [str(HACK / "docker-build.sh")],
        env={**os.environ, "IMG": IMAGE},
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    if result.returncode != 0:
        pytest.fail(f"hack/docker-build.sh failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return Image(ref=IMAGE, image_id=result.stdout.strip().splitlines()[-1])
