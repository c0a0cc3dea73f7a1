"""The real ``cosign`` CLI (built from its Go module by hack/build-kube.sh, cached per user), run as a user would.

``Cosign.run`` runs it offline: key-based signing without the transparency log (``--tlog-upload=false``; its
verification with ``--insecure-ignore-tlog``), against the loopback test registries over plain HTTP, with a home
of its own (no docker config, no TUF cache of the user's).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Cosign", "KeyPair", "find_cosign"]

HACK = Path(__file__).resolve().parent.parent / "hack"
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class KeyPair:
    """``cosign generate-key-pair`` output: the encrypted private key and the PEM public key."""

    private: Path
    public: Path
    password: str = PASSWORD


@dataclass(frozen=True)
class Cosign:
    binary: Path
    home: Path

    def env(self, password: str = PASSWORD) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "COSIGN_PASSWORD": password,
            "COSIGN_YES": "true",
            "SIGSTORE_NO_CACHE": "true",
            "TUF_ROOT": str(self.home / "tuf"),
        }

    def run(self, *args: str, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env=self.env(password),
            cwd=self.home,
        )

    def generate_key_pair(self, directory: Path) -> KeyPair:
        directory.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [str(self.binary), "generate-key-pair"],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env=self.env(),
            cwd=directory,
        )
        assert result.returncode == 0, result.stderr
        return KeyPair(private=directory / "cosign.key", public=directory / "cosign.pub")

    def sign(self, key: KeyPair, ref: str) -> subprocess.CompletedProcess[str]:
        return self.run(
            "sign", "--key", str(key.private), "--tlog-upload=false", "--allow-insecure-registry", "--yes", ref
        )

    def verify(self, public_key: Path, ref: str) -> subprocess.CompletedProcess[str]:
        return self.run(
            "verify", "--key", str(public_key), "--insecure-ignore-tlog=true", "--allow-insecure-registry", ref
        )


def find_cosign(home: Path) -> Cosign:
    """The pinned cosign (built on first use, cached per user)."""
    result = subprocess.run(
        [str(HACK / "build-kube.sh"), "--print-path", "cosign"],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    home.mkdir(parents=True, exist_ok=True)
    return Cosign(binary=Path(result.stdout.strip().splitlines()[-1]), home=home)
