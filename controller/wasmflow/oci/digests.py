"""Content digests, and reading a stream that must match one without ever holding more than the limit.

``read_verified`` is the one place where downloaded bytes are counted and hashed: it stops as soon as the stream
passes the size limit (or the size the descriptor declared) and checks the digest at the end, so nothing
unverified leaves it and an oversized blob costs at most one chunk beyond the limit.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, Callable

from wasmflow.oci.errors import CorruptContentError, TooLargeError
from wasmflow.oci.reference import parse_digest

__all__ = ["digest_of", "hasher_for", "read_verified", "sha256_digest"]


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hasher_for(digest: str) -> hashlib._Hash:
    """A fresh hash object of the algorithm ``digest`` names."""
    algorithm, _ = parse_digest(digest)
    return hashlib.new(algorithm)


def digest_of(data: bytes, like: str) -> str:
    """The digest of ``data`` in the algorithm of ``like``."""
    hasher = hasher_for(like)
    hasher.update(data)
    return f"{hasher.name}:{hasher.hexdigest()}"


async def read_verified(
    chunks: AsyncIterable[bytes],
    write: Callable[[bytes], object],
    *,
    digest: str | None,
    limit: int,
    size: int | None = None,
    what: str = "blob",
    reference: str | None = None,
) -> str:
    """Copy ``chunks`` to ``write``, stopping early past ``limit`` or past the declared ``size``.

    Returns the digest of what was read (sha256 unless ``digest`` names another algorithm). Raises TooLargeError
    past ``limit``, CorruptContentError when the bytes differ from ``size`` or ``digest``. ``write`` only ever
    receives bytes within the limit; callers must discard them when this raises.
    """
    hasher = hasher_for(digest) if digest else hashlib.sha256()
    received = 0
    async for chunk in chunks:
        received += len(chunk)
        if received > limit:
            raise TooLargeError(
                f"{what} is larger than the limit of {limit} bytes (stopped after {received} bytes)",
                reference=reference,
                limit=limit,
                received=received,
            )
        if size is not None and received > size:
            raise CorruptContentError(
                f"{what} is longer than the {size} bytes its descriptor declares",
                reference=reference,
                expected=digest or "",
                actual=f"more than {size} bytes",
            )
        hasher.update(chunk)
        write(chunk)
    actual = f"{hasher.name}:{hasher.hexdigest()}"
    if size is not None and received != size:
        raise CorruptContentError(
            f"{what} has {received} bytes, its descriptor declares {size}",
            reference=reference,
            expected=digest or "",
            actual=actual,
        )
    if digest is not None and actual != digest:
        raise CorruptContentError(
            f"{what} content has digest {actual}, expected {digest}",
            reference=reference,
            expected=digest,
            actual=actual,
        )
    return actual
