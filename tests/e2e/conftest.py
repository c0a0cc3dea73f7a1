"""The wasmflow image, built once per session from the project's own files (``make docker-build``'s script).

The first build on a machine also builds the Debian base with mmdebstrap (minutes); later sessions reuse the cached
base and buildah's layers.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.chart_env import Helm, find_helm

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

    def command(
        self,
        *args: str,
        volumes: Sequence[tuple[Path, str]] = (),
        tmpfs: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        entrypoint: str | None = None,
    ) -> list[str]:
        """The ``hack/image-run.sh`` command line that runs the image with these mounts, variables and arguments."""
        command = [str(HACK / "image-run.sh")]
        for host, target in volumes:
            command += ["--volume", f"{host}:{target}"]
        for directory in tmpfs:
            command += ["--tmpfs", directory]
        for name, value in (env or {}).items():
            command += ["--env", f"{name}={value}"]
        if entrypoint:
            command += ["--entrypoint", entrypoint]
        return [*command, self.ref, *args]

    def run(self, *args: str, volumes: Sequence[tuple[Path, str]] = (), entrypoint: str | None = None) -> Run:
        command = self.command(*args, volumes=volumes, entrypoint=entrypoint)
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
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


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return find_helm(tmp_path_factory.mktemp("helm-home"))
