"""The condition lifecycle of kstatus and Flux (STYLE.md 2.4, 2.7), as pure functions over condition lists.

- reconcile starts:       Reconciling=True (Progressing), Ready=Unknown
- may heal, retrying:     Reconciling=True (ProgressingWithRetry), Ready=False with the reason
- the user must fix it:   Stalled=True, Ready=False, both with the reason (Flux fails fast instead of timing out)
- done:                   Ready=True (Succeeded); Reconciling and Stalled removed
``lastTransitionTime`` changes only when a condition's status flips. The list is always written whole (merge
patches replace lists).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

Conditions = list[dict[str, Any]]
_REASON = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
_ORDER = ("Ready", "Reconciling", "Stalled")


def now() -> str:
    """The current time as metav1.Time writes it (RFC 3339, seconds, UTC)."""
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
    """A new list with ``type_`` set; its lastTransitionTime is kept unless its status changes.

    ``at`` (RFC 3339, default now) is the transition time when there is one. A reason or status the CRD schema would
    refuse raises ValueError here, where the mistake is, rather than a 422 on the status patch.
    """
    if status not in ("True", "False", "Unknown"):
        raise ValueError(f"condition status must be True, False or Unknown, not {status!r}")
    if not _REASON.match(reason) or len(reason) > 1024:
        raise ValueError(f"condition reason must be a CamelCase identifier, not {reason!r}")
    result = [dict(c) for c in conditions if c.get("type") != type_]
    previous = next((c for c in conditions if c.get("type") == type_), None)
    kept = previous is not None and previous.get("status") == status and previous.get("lastTransitionTime")
    condition: dict[str, Any] = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message[:32768],
        "lastTransitionTime": previous["lastTransitionTime"] if previous and kept else (at or now()),
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    result.append(condition)
    return sorted(result, key=lambda c: _ORDER.index(c["type"]) if c["type"] in _ORDER else len(_ORDER))


def remove_condition(conditions: Sequence[dict[str, Any]], type_: str) -> Conditions:
    """A new list without ``type_`` (abnormal-true conditions are removed rather than set to False)."""
    return [dict(c) for c in conditions if c.get("type") != type_]


def reconciling(conditions: Sequence[dict[str, Any]], message: str, generation: int | None) -> Conditions:
    """Work started: Reconciling=True. Ready turns Unknown for a new generation, and stays as it is while a
    generation already judged is reconciled again (a periodic re-check must not make a healthy resource flap)."""
    result = set_condition(conditions, "Reconciling", "True", "Progressing", message, generation)
    result = remove_condition(result, "Stalled")
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    if ready is None or ready.get("observedGeneration") != generation:
        result = set_condition(result, "Ready", "Unknown", "Progressing", message, generation)
    return result


def retrying(conditions: Sequence[dict[str, Any]], reason: str, message: str, generation: int | None) -> Conditions:
    """A failure that may heal (a registry down, a module not ready yet): keep Reconciling, Ready=False saying why."""
    result = set_condition(conditions, "Reconciling", "True", "ProgressingWithRetry", message, generation)
    result = remove_condition(result, "Stalled")
    return set_condition(result, "Ready", "False", reason, message, generation)


def stalled(conditions: Sequence[dict[str, Any]], reason: str, message: str, generation: int | None) -> Conditions:
    """A failure only the user can fix: Stalled=True and Ready=False, so kstatus and Flux stop waiting."""
    result = remove_condition(conditions, "Reconciling")
    result = set_condition(result, "Stalled", "True", reason, message, generation)
    return set_condition(result, "Ready", "False", reason, message, generation)


def ready(conditions: Sequence[dict[str, Any]], message: str, generation: int | None) -> Conditions:
    """Done: Ready=True (Succeeded) alone."""
    result = remove_condition(remove_condition(conditions, "Reconciling"), "Stalled")
    return set_condition(result, "Ready", "True", "Succeeded", message, generation)
