"""OCI references: what parses, what it means, and refusals that name the wrong part."""

from __future__ import annotations

import pytest

from wasmflow.oci import InvalidReferenceError, Reference, parse_reference
from wasmflow.oci.reference import parse_digest

SHA256 = "sha256:" + "0123456789abcdef" * 4
SHA512 = "sha512:" + "0123456789abcdef" * 8


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("registry.example:5000/ops/to-celsius:1.0.0", "registry.example:5000", "ops/to-celsius", "1.0.0", None),
        ("localhost/op", "localhost", "op", "latest", None),
        ("localhost:5000/op", "localhost:5000", "op", "latest", None),
        ("127.0.0.1:32768/a/b/c:v1_2-3.4", "127.0.0.1:32768", "a/b/c", "v1_2-3.4", None),
        ("[::1]:5000/op:1", "[::1]:5000", "op", "1", None),
        ("[fe80::1]/op", "[fe80::1]", "op", "latest", None),
        ("My-Registry.Example.COM/op", "My-Registry.Example.COM", "op", "latest", None),
        ("r.example:65535/op", "r.example:65535", "op", "latest", None),
        ("r.example/a.b/c__d/e--f/g_h", "r.example", "a.b/c__d/e--f/g_h", "latest", None),
        (f"r.example/op@{SHA256}", "r.example", "op", None, SHA256),
        (f"r.example/op:1.0@{SHA256}", "r.example", "op", "1.0", SHA256),
        (f"r.example:5000/op@{SHA512}", "r.example:5000", "op", None, SHA512),
    ],
)
def test_a_valid_reference_parses_into_its_parts(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)


def test_a_reference_without_tag_or_digest_means_latest_and_prints_it() -> None:
    assert str(parse_reference("r.example/op")) == "r.example/op:latest"


def test_a_pinned_reference_is_fetched_by_its_digest_and_keeps_the_tag_for_messages() -> None:
    ref = parse_reference(f"r.example/op:1.0@{SHA256}")
    assert ref.identifier == SHA256
    assert str(ref) == f"r.example/op:1.0@{SHA256}"


def test_with_digest_pins_and_refuses_a_malformed_digest() -> None:
    ref = parse_reference("r.example/op:1")
    assert ref.with_digest(SHA256) == Reference("r.example", "op", "1", SHA256)
    with pytest.raises(InvalidReferenceError):
        ref.with_digest("sha256:abc")


@pytest.mark.parametrize(
    ("text", "part", "says"),
    [
        ("ops/to-celsius:1.0", "host", "no registry host"),
        ("to-celsius", "host", "no registry host"),
        ("registry.example:5000", "repository", "no repository after the host"),
        ("http://registry.example/op", "scheme", "drop 'http://'"),
        ("oci://registry.example/op", "scheme", "insecure: true"),
        ("r.example/op :1", "reference", "no spaces"),
        ("", "reference", "non-empty"),
        ("r.example:0/op", "port", "port '0'"),
        ("r.example:65536/op", "port", "1 to 65535"),
        ("r.example:05000/op", "port", "port '05000'"),
        ("r.example:http/op", "port", "not a number"),
        ("-bad.example/op", "host", "not a valid host name"),
        ("[::1/op", "host", "IPv6"),
        ("r.example/Ops/op", "repository", "repositories are lower-case"),
        ("r.example/a//b", "repository", "repository part ''"),
        ("r.example/op-:1", "repository", "'op-'"),
        ("r.example/op:-1", "tag", "tag '-1'"),
        ("r.example/op:" + "t" * 129, "tag", "up to 128"),
        ("r.example/op@sha256:abc", "digest", "64 hex digits"),
        ("r.example/op@sha256:" + "AB" * 32, "digest", "lower-case"),
        ("r.example/op@md5:" + "ab" * 16, "digest", "not supported"),
        ("r.example/op@" + "ab" * 32, "digest", "no algorithm"),
        ("r.example/" + "a" * 250, "repository", "longer than 255"),
    ],
)
def test_an_invalid_reference_is_refused_naming_the_part(text: str, part: str, says: str) -> None:
    with pytest.raises(InvalidReferenceError) as caught:
        parse_reference(text)
    assert caught.value.part == part
    assert says in caught.value.message
    assert caught.value.reason == "InvalidReference"
    assert not caught.value.transient


def test_a_hostless_reference_is_refused_with_an_example_built_from_it() -> None:
    with pytest.raises(InvalidReferenceError, match=r"e\.g\. registry\.example:5000/ops/op:1"):
        parse_reference("ops/op:1")


def test_parse_digest_splits_algorithm_and_hex() -> None:
    assert parse_digest(SHA512) == ("sha512", "0123456789abcdef" * 8)
