"""Which existing objects a Dataflow may apply its children over: only its own (pure).

Children are server-side applied with ``force``, which takes every field it names from any other manager. Applied
over an object someone else made (a ``foo-worker`` Service of another app, say), that would replace its selector,
add our owner reference and later have it garbage-collected with the Dataflow. So an existing object is updated
only when its controller owner reference is a wasmflow Dataflow of the same name: this Dataflow, or an earlier
Dataflow of that name (deleted and created again; names are unique in a namespace, so that one is gone, and the
apply moves the reference to the new uid). Anything else is refused, naming the object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from wasmflow.operator.kube import GROUP

__all__ = ["foreign_child"]


def _controller(references: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return next((r for r in references if r.get("controller") is True), None)


def foreign_child(kind: str, name: str, references: Sequence[Mapping[str, Any]] | None, dataflow: str) -> str | None:
    """Why the existing ``kind`` ``name`` (with these ownerReferences; None: it does not exist) is not ours to
    apply over, or None when it is ours (or absent)."""
    if references is None:
        return None
    controller = _controller(references)
    if (
        controller is not None
        and controller.get("kind") == "Dataflow"
        and str(controller.get("apiVersion", "")).startswith(f"{GROUP}/")
        and controller.get("name") == dataflow
    ):
        return None
    if controller is None:
        owner = "it has no controller owner"
    else:
        owner = f"it is controlled by {controller.get('kind')} {controller.get('name')}"
    return (
        f"{kind} {name} already exists and was not created by this Dataflow ({owner}): wasmflow does not take over "
        f"objects it did not create; delete or rename that {kind}, or give the Dataflow another name"
    )
