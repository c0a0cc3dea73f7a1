"""Which imports the host provides, denies unless granted, or refuses."""

from __future__ import annotations

import pytest

from wasmflow.contract.capabilities import Capability, ImportClass, classify_import, parse_capabilities


@pytest.mark.parametrize("name", ["wasi:clocks/wall-clock@0.2.9", "wasi:random/random@0.2.0", "wasi:cli/stdout@0.2.3"])
def test_harmless_wasi_is_allowed(name: str) -> None:
    verdict = classify_import(name)
    assert verdict.kind is ImportClass.ALLOWED
    assert verdict.granted(())


@pytest.mark.parametrize(
    ("name", "capability"),
    [
        ("wasi:sockets/tcp@0.2.9", Capability.NETWORK),
        ("wasi:filesystem/preopens@0.2.9", Capability.FILESYSTEM),
        ("wasi:cli/environment@0.2.9", Capability.ENVIRONMENT),
        ("wasi:http/outgoing-handler@0.2.9", Capability.HTTP),
        ("wasi:cli/stdin@0.2.9", Capability.STDIO),
    ],
)
def test_reaching_outside_the_sandbox_is_denied_unless_granted(name: str, capability: Capability) -> None:
    verdict = classify_import(name)
    assert verdict.kind is ImportClass.DENIED_UNLESS_GRANTED
    assert verdict.capability is capability
    assert not verdict.granted(())
    assert verdict.granted([capability.value])


def test_our_logging_interface_is_part_of_the_contract() -> None:
    assert classify_import("wasmflow:operator/logging@0.1.0").kind is ImportClass.CONTRACT


@pytest.mark.parametrize(
    "name", ["wasi:sockets/tcp@0.3.0", "acme:vault/secrets@1.0.0", "wasmflow:operator/logging@0.2.0", "env"]
)
def test_anything_else_is_unknown(name: str) -> None:
    assert classify_import(name).kind is ImportClass.UNKNOWN


def test_unknown_capability_names_list_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown capability 'internet'; valid: environment, filesystem, http"):
        parse_capabilities(["network", "internet"])
