"""What a registry exchange is given and gives back, apart from the HTTP client that carries it out (client.py).

Kept apart so that what only reads the cache (a worker restarting at the edge, its modules pinned and cached)
never imports the HTTP stack: that is a tenth of a second of every worker start.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from wasmflow.oci.manifest import Manifest

#: distribution refuses manifests over 4 MiB; so do we.
DEFAULT_MAX_MANIFEST_BYTES = 4 * 2**20
#: The component limit (the contract checker's default too).
DEFAULT_MAX_BLOB_BYTES = 64 * 2**20


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient failures are retried: ``attempts`` tries in all."""

    attempts: int = 4
    initial_delay: float = 0.25
    max_delay: float = 5.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (0-based): full-jitter exponential backoff."""
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        ceiling = min(self.max_delay, self.initial_delay * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not cryptography


@dataclass(frozen=True)
class FetchedManifest:
    """A manifest as the registry served it, verified: ``digest`` is the hash of ``raw``."""

    manifest: Manifest
    raw: bytes
    digest: str
    media_type: str
