"""The kstatus/Flux condition lifecycle."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from wasmflow.api.common import Condition
from wasmflow.api.status import now, ready, reconciling, remove_condition, retrying, set_condition, stalled

T1, T2, T3 = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"


def types(conditions: list[dict[str, Any]]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in conditions}


def test_a_first_reconcile_is_reconciling_with_ready_unknown() -> None:
    assert types(reconciling([], "pulling", 1)) == {"Ready": "Unknown", "Reconciling": "True"}


def test_success_leaves_only_ready_true_for_the_generation_handled() -> None:
    conditions = ready(reconciling([], "pulling", 1), "ok", 1)
    assert types(conditions) == {"Ready": "True"}
    assert (conditions[0]["reason"], conditions[0]["observedGeneration"]) == ("Succeeded", 1)


def test_a_permanent_error_is_stalled_and_not_ready() -> None:
    conditions = stalled(reconciling([], "pulling", 2), "DigestMismatch", "pin differs", 2)
    assert types(conditions) == {"Ready": "False", "Stalled": "True"}
    assert {c["reason"] for c in conditions} == {"DigestMismatch"}
    assert all(c["observedGeneration"] == 2 for c in conditions)


def test_a_retry_keeps_reconciling_and_says_why_not_ready() -> None:
    conditions = retrying(stalled([], "Broken", "x", 1), "RegistryUnavailable", "connection refused", 1)
    assert types(conditions) == {"Ready": "False", "Reconciling": "True"}
    assert conditions[0]["message"] == "connection refused"


def test_recovering_from_stalled_removes_stalled() -> None:
    conditions = ready(stalled([], "InvalidGraph", "cycle", 1), "ok", 2)
    assert types(conditions) == {"Ready": "True"}


def test_a_new_generation_makes_ready_unknown_again() -> None:
    assert types(reconciling(ready([], "ok", 1), "updating", 2)) == {"Ready": "Unknown", "Reconciling": "True"}


def test_reconciling_a_generation_already_ready_keeps_it_ready() -> None:
    assert types(reconciling(ready([], "ok", 1), "re-checking", 1)) == {"Ready": "True", "Reconciling": "True"}


def test_transition_time_changes_only_when_status_flips() -> None:
    first = set_condition([], "Ready", "False", "A", "m", 1, at=T1)
    same = set_condition(first, "Ready", "False", "B", "m2", 2, at=T2)
    flipped = set_condition(same, "Ready", "True", "C", "m3", 3, at=T3)
    assert same[0]["lastTransitionTime"] == T1
    assert (same[0]["reason"], same[0]["message"], same[0]["observedGeneration"]) == ("B", "m2", 2)
    assert flipped[0]["lastTransitionTime"] == T3


def test_the_input_list_is_left_alone() -> None:
    before = set_condition([], "Ready", "False", "A", "m", 1, at=T1)
    snapshot = [dict(c) for c in before]
    set_condition(before, "Ready", "True", "B", "m", 1, at=T2)
    remove_condition(before, "Ready")
    assert before == snapshot


def test_ready_comes_first_and_other_types_are_kept() -> None:
    conditions = set_condition([], "ArtifactVerified", "True", "Verified", "", 1, at=T1)
    conditions = stalled(conditions, "Broken", "x", 1)
    assert [c["type"] for c in conditions] == ["Ready", "Stalled", "ArtifactVerified"]


def test_every_condition_fits_the_crd_schema() -> None:
    for condition in retrying(reconciling([], "m" * 40000, 1), "Timeout", "x", 1):
        Condition.model_validate(condition)


@pytest.mark.parametrize(("status", "reason"), [("Yes", "Ok"), ("True", "not camel"), ("True", ""), ("True", "1st")])
def test_a_condition_the_schema_would_refuse_is_a_programming_error(status: str, reason: str) -> None:
    with pytest.raises(ValueError, match="condition"):
        set_condition([], "Ready", status, reason, "", 1)


def test_now_is_an_rfc3339_utc_time() -> None:
    assert datetime.strptime(now(), "%Y-%m-%dT%H:%M:%SZ")
