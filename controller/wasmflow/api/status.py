"""The condition lifecycle of kstatus and Flux (STYLE.md 2.4, 2.7), as pure functions over condition lists.

- reconcile starts:       Reconciling=True (Progressing), Ready=Unknown
- may heal, retrying:     Reconciling=True (ProgressingWithRetry), Ready=False with the reason
- the user must fix it:   Stalled=True, Ready=False, both with the reason (Flux fails fast instead of timing out)
- done:                   Ready=True (Succeeded); Reconciling and Stalled removed
``lastTransitionTime`` changes only when a condition's status flips. The list is always written whole (merge
patches replace lists).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

Conditions = list[dict[str, Any]]


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: Sequence[dict[str, Any]],
    type_: str,
    status: str,
    reason: str,
    message: str,
    generation: int | None,
    at: str | None = None,
) -> Conditions:
    """A new list with ``type_`` set; its lastTransitionTime is kept unless its status changes."""
    result = [dict(c) for c in conditions if c.get("type") != type_]
    previous = next((c for c in conditions if c.get("type") == type_), None)
    transition = previous["lastTransitionTime"] if previous and previous.get("status") == status else (at or now())
    condition: dict[str, Any] = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message[:32768],
        "lastTransitionTime": transition,
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    result.append(condition)
    return sorted(
        result,
        key=lambda c: (
            ("Ready", "Reconciling", "Stalled").index(c["type"])
            if c["type"] in ("Ready", "Reconciling", "Stalled")
            else 9
        ),
    )


def remove_condition(conditions: Sequence[dict[str, Any]], type_: str) -> Conditions:
    return [dict(c) for c in conditions if c.get("type") != type_]


def reconciling(conditions: Sequence[dict[str, Any]], message: str, generation: int | None) -> Conditions:
    result = set_condition(conditions, "Reconciling", "True", "Progressing", message, generation)
    result = remove_condition(result, "Stalled")
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    if ready is None or ready.get("observedGeneration") != generation:
        result = set_condition(result, "Ready", "Unknown", "Progressing", message, generation)
    return result


def retrying(conditions: Sequence[dict[str, Any]], reason: str, message: str, generation: int | None) -> Conditions:
    result = set_condition(conditions, "Reconciling", "True", "ProgressingWithRetry", message, generation)
    result = remove_condition(result, "Stalled")
    return set_condition(result, "Ready", "False", reason, message, generation)


def stalled(conditions: Sequence[dict[str, Any]], reason: str, message: str, generation: int | None) -> Conditions:
    result = remove_condition(conditions, "Reconciling")
    result = set_condition(result, "Stalled", "True", reason, message, generation)
    return set_condition(result, "Ready", "False", reason, message, generation)


def ready(conditions: Sequence[dict[str, Any]], message: str, generation: int | None) -> Conditions:
    result = remove_condition(remove_condition(conditions, "Reconciling"), "Stalled")
    return set_condition(result, "Ready", "True", "Succeeded", message, generation)
