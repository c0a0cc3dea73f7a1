"""The kstatus/Flux condition lifecycle."""

from __future__ import annotations

from wasmflow.api.status import ready, reconciling, retrying, set_condition, stalled


def types(conditions: list[dict[str, object]]) -> dict[object, object]:
    return {c["type"]: c["status"] for c in conditions}


def test_a_first_reconcile_is_reconciling_with_ready_unknown() -> None:
    assert types(reconciling([], "pulling", 1)) == {"Ready": "Unknown", "Reconciling": "True"}


def test_success_leaves_only_ready_true() -> None:
    assert types(ready(reconciling([], "pulling", 1), "ok", 1)) == {"Ready": "True"}


def test_a_permanent_error_is_stalled_and_not_ready() -> None:
    conditions = stalled(reconciling([], "pulling", 2), "DigestMismatch", "pin differs", 2)
    assert types(conditions) == {"Ready": "False", "Stalled": "True"}
    assert {c["reason"] for c in conditions} == {"DigestMismatch"}
    assert all(c["observedGeneration"] == 2 for c in conditions)


def test_a_retry_keeps_reconciling() -> None:
    assert types(retrying([], "RegistryUnavailable", "connection refused", 1)) == {
        "Ready": "False",
        "Reconciling": "True",
    }


def test_transition_time_changes_only_when_status_flips() -> None:
    first = set_condition([], "Ready", "False", "A", "m", 1, at="2026-01-01T00:00:00Z")
    same = set_condition(first, "Ready", "False", "B", "m2", 2, at="2026-01-02T00:00:00Z")
    flipped = set_condition(same, "Ready", "True", "C", "m3", 3, at="2026-01-03T00:00:00Z")
    assert same[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert flipped[0]["lastTransitionTime"] == "2026-01-03T00:00:00Z"
