"""The content-addressed cache, verified streaming, retry backoff and the error types' contract with status."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from wasmflow.errors import RegistryError
from wasmflow.oci import (
    BlobCache,
    CorruptContentError,
    DigestMismatchError,
    InvalidReferenceError,
    NotFoundError,
    PinMismatchError,
    RetryPolicy,
    ServerError,
    TooLargeError,
    UnauthorizedError,
    UnreachableError,
    UnsupportedArtifactError,
)
from wasmflow.oci.digests import digest_of, read_verified, sha256_digest

DATA = b"\0asm\x0d\x00\x01\x00component bytes"


def test_a_cached_entry_reads_back_verified(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    digest = sha256_digest(DATA)
    path = cache.write(digest, DATA)
    assert path == tmp_path / "blobs" / "sha256" / digest.split(":")[1]
    assert cache.read(digest) == DATA
    assert cache.contains(digest)


def test_a_write_leaves_no_temporary_file_behind(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    cache.write(sha256_digest(DATA), DATA)
    cache.write(sha256_digest(DATA), DATA)  # a second writer of the same digest replaces it whole
    assert [p.name for p in (tmp_path / "blobs" / "sha256").iterdir()] == [sha256_digest(DATA).split(":")[1]]


def test_a_damaged_entry_is_deleted_counted_and_reported_as_a_miss(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    digest = sha256_digest(DATA)
    cache.write(digest, DATA).write_bytes(DATA + b"tampered")
    assert cache.read(digest) is None
    assert cache.corrupt == 1
    assert not cache.contains(digest)


def test_content_is_never_cached_under_a_digest_it_does_not_hash_to(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not hash to that digest"):
        BlobCache(tmp_path).write(sha256_digest(b"other"), DATA)


def test_manifests_and_blobs_are_separate_namespaces(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    digest = sha256_digest(DATA)
    cache.write(digest, DATA, "manifests")
    assert cache.read(digest, "manifests") == DATA
    assert cache.read(digest) is None


def test_an_absent_entry_is_a_miss(tmp_path: Path) -> None:
    assert BlobCache(tmp_path).read(sha256_digest(DATA)) is None


def test_sha512_entries_are_verified_with_sha512(tmp_path: Path) -> None:
    digest = digest_of(DATA, "sha512:" + "0" * 128)
    assert digest == "sha512:" + hashlib.sha512(DATA).hexdigest()
    cache = BlobCache(tmp_path)
    cache.write(digest, DATA)
    assert cache.read(digest) == DATA


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def verify(*parts: bytes, digest: str | None, limit: int = 1000, size: int | None = None) -> tuple[str, bytes]:
    received = bytearray()
    result = asyncio.run(read_verified(chunks(*parts), received.extend, digest=digest, limit=limit, size=size))
    return result, bytes(received)


def test_a_stream_that_matches_its_digest_and_size_is_copied_whole() -> None:
    digest, received = verify(DATA[:5], DATA[5:], digest=sha256_digest(DATA), size=len(DATA))
    assert (digest, received) == (sha256_digest(DATA), DATA)


def test_a_stream_past_the_limit_stops_at_the_chunk_that_passed_it_and_writes_nothing_of_it() -> None:
    received = bytearray()
    with pytest.raises(TooLargeError) as caught:
        asyncio.run(read_verified(chunks(b"a" * 8, b"b" * 8, b"c" * 8), received.extend, digest=None, limit=10))
    assert (caught.value.limit, caught.value.received) == (10, 16)
    assert bytes(received) == b"a" * 8


def test_a_stream_longer_than_its_declared_size_is_a_mismatch_before_the_end() -> None:
    with pytest.raises(CorruptContentError, match="longer than the 4 bytes its descriptor declares"):
        verify(b"12", b"345", b"6789", digest=None, size=4)


def test_a_stream_shorter_than_its_declared_size_is_a_mismatch() -> None:
    with pytest.raises(CorruptContentError, match="has 3 bytes, its descriptor declares 4"):
        verify(b"123", digest=None, size=4)


def test_content_that_does_not_hash_to_its_digest_is_corrupt_content_naming_both_digests() -> None:
    expected = sha256_digest(b"what was pushed")
    with pytest.raises(CorruptContentError) as caught:
        verify(DATA, digest=expected)
    assert (caught.value.expected, caught.value.actual) == (expected, sha256_digest(DATA))


def test_without_a_digest_the_stream_is_hashed_with_sha256() -> None:
    assert verify(DATA, digest=None)[0] == sha256_digest(DATA)


def test_the_backoff_grows_within_bounds_and_honours_retry_after_up_to_the_maximum() -> None:
    policy = RetryPolicy(attempts=5, initial_delay=0.5, max_delay=4.0)
    for attempt in range(8):
        ceiling = min(4.0, 0.5 * 2**attempt)
        assert ceiling / 2 <= policy.delay(attempt) <= ceiling
    assert policy.delay(0, retry_after=2.0) == 2.0
    assert policy.delay(0, retry_after=60.0) == 4.0


@pytest.mark.parametrize(
    ("error", "reason", "transient"),
    [
        (InvalidReferenceError("x"), "InvalidReference", False),
        (NotFoundError("x"), "NotFound", False),
        (UnauthorizedError("x"), "Unauthorized", False),
        (DigestMismatchError("x"), "DigestMismatch", False),
        (PinMismatchError("x"), "DigestMismatch", False),
        (CorruptContentError("x"), "DigestMismatch", True),
        (TooLargeError("x"), "TooLarge", False),
        (UnsupportedArtifactError("x"), "UnsupportedArtifact", False),
        (UnreachableError("x"), "Unreachable", True),
        (ServerError("x", status=503), "ServerError", True),
        (ServerError("x", status=429), "ServerError", True),
        (ServerError("x", status=405), "ServerError", False),
    ],
)
def test_each_error_says_its_status_reason_and_whether_it_may_heal(
    error: RegistryError, reason: str, transient: bool
) -> None:
    assert isinstance(error, RegistryError)
    assert (getattr(error, "reason", None), getattr(error, "transient", None)) == (reason, transient)


def test_an_error_message_starts_with_the_reference() -> None:
    assert str(NotFoundError("manifest 1.0 not found", reference="r.example/op:1.0")) == (
        "r.example/op:1.0: manifest 1.0 not found"
    )
