"""Quantities, durations and field paths: the small pure pieces the models are built from."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from wasmflow.api.common import Condition, format_path, parse_duration, parse_quantity
from wasmflow.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("64Mi", 64 * 2**20),
        ("1Gi", 2**30),
        ("1.5Ki", 1536),
        ("500M", 500_000_000),
        ("2k", 2000),
        ("10", 10),
        ("0.5", 1),  # rounded up, as Kubernetes does
    ],
)
def test_quantities_parse_to_bytes(text: str, expected: int) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize("text", ["", "64MB", "-1Mi", "Mi", "1e3", "64 Mi x"])
def test_bad_quantities_say_what_is_expected_and_where(text: str) -> None:
    with pytest.raises(ConfigError, match=r"not a quantity: .* \(examples: 64Mi, 1Gi, 500M\)") as info:
        parse_quantity(text, "spec.limits.memory")
    assert info.value.where == "spec.limits.memory"


@pytest.mark.parametrize(
    ("text", "expected"), [("100ms", 0.1), ("30s", 30), ("1m30s", 90), ("2h", 7200), ("1.5m", 90), ("0s", 0)]
)
def test_go_durations_parse_to_seconds(text: str, expected: float) -> None:
    assert parse_duration(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "10", "1x", "s10", "1d", "-1s", "1s 2s"])
def test_bad_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(ConfigError, match=r"examples: 100ms, 30s, 10m, 1h30m"):
        parse_duration(text)


def test_field_paths_read_as_in_yaml() -> None:
    assert format_path(("spec", "nodes", 1, "module")) == "spec.nodes[1].module"
    assert format_path(()) == ""


def test_a_condition_status_is_true_false_or_unknown() -> None:
    with pytest.raises(ValidationError):
        Condition.model_validate({"type": "Ready", "status": "Yes", "reason": "R", "lastTransitionTime": "t"})


def test_a_condition_reason_is_a_camel_case_identifier() -> None:
    with pytest.raises(ValidationError):
        Condition.model_validate({"type": "Ready", "status": "True", "reason": "not ok", "lastTransitionTime": "t"})
