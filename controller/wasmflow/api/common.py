"""Shared pieces of the resource models: the pydantic base, references, quantities, durations, conditions.

Quantities and durations stay strings in the manifests (as Kubernetes users write them: ``64Mi``, ``100ms``) and are
parsed by pure functions with errors that say what is wrong.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic.alias_generators import to_camel

from wasmflow.errors import ConfigError

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
Name = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]


def is_dns_label(text: str) -> bool:
    """A name usable as a Service name or a label value: at most 63 of a-z, 0-9 and '-', no dot."""
    return len(text) <= 63 and re.fullmatch(DNS_LABEL, text) is not None


class Model(BaseModel):
    """camelCase in YAML, snake_case in Python; unknown fields are errors (a typo must not be silently ignored).

    The docstring under each field becomes its description in the CRD, so ``kubectl explain`` shows it (crd.py reads
    them when it generates the CRDs; pydantic's ``use_attribute_docstrings`` would read them at every import).
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        extra="forbid",
        frozen=True,
    )


Rule = dict[str, str]


def filled_in(model: type[Model]) -> dict[str, JsonValue]:
    """``json_schema_extra`` giving an optional object the CRD default of its fields' defaults.

    The API server then fills the object in (``kubectl get -o yaml`` shows the effective values) instead of leaving
    it out. The default is the whole object, not ``{}``: the API server checks a default against the object's CEL
    rules without applying the nested defaults first.
    """
    return {"default": model().model_dump(by_alias=True, exclude_none=True, mode="json")}


def with_rules(*rules: Rule) -> ConfigDict:
    """Model config that adds CEL rules (``x-kubernetes-validations``) to the model's schema in the CRD.

    Each rule must be mirrored by a validator of the same model: the API server and ``wasmflow run`` refuse the
    same manifests.
    """
    extra: dict[str, JsonValue] = {"x-kubernetes-validations": [dict(rule) for rule in rules]}
    return ConfigDict(**Model.model_config, json_schema_extra=extra)


class FieldError(ValueError):
    """A validator's complaint about a nested field, with its path relative to the model (``("edges", 3)``).

    pydantic can only place a model validator's error on the model itself; the manifest loader reads ``path`` so the
    user is pointed at ``spec.edges[3]`` rather than at ``spec``. ``str()`` carries the path too, for callers that
    only print pydantic's message.
    """

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{format_path(path)}: {message}" if path else message)


def format_path(path: tuple[str | int, ...] | list[str | int]) -> str:
    """``("spec", "nodes", 1, "module")`` as ``spec.nodes[1].module``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class LocalObjectReference(Model):
    """A Secret or ConfigMap in the same namespace."""

    name: Name
    """Name of the object."""


class SecretKeyReference(Model):
    """One key of a Secret in the same namespace."""

    name: Name
    """Name of the Secret."""
    key: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    """Key within the Secret's data."""


_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"
_QUANTITY_FACTORS = {
    None: 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def parse_quantity(value: str, where: str = "") -> int:
    """Bytes in a Kubernetes quantity such as ``64Mi`` or ``1G``, rounded up as Kubernetes does."""
    match = _QUANTITY.match(value.strip())
    if not match:
        raise ConfigError(f"not a quantity: {value!r} (examples: 64Mi, 1Gi, 500M)", where=where)
    return math.ceil(Decimal(match[1]) * _QUANTITY_FACTORS[match[2]])


_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_DURATION_FACTORS = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600)}


def parse_duration(value: str, where: str = "") -> float:
    """Seconds in a Go-style duration such as ``100ms``, ``30s``, ``1m30s``."""
    text = value.strip()
    parts = _DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ConfigError(f"not a duration: {value!r} (examples: 100ms, 30s, 10m, 1h30m)", where=where)
    return float(sum((Decimal(n) * _DURATION_FACTORS[u] for n, u in parts), Decimal(0)))


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(Model):
    """A metav1.Condition: Ready, Reconciling, Stalled (kstatus and Flux read these)."""

    type: str = Field(
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
    )
    """Type of condition in CamelCase: Ready, Reconciling or Stalled."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: str = Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    """Why the condition is in its state, as a CamelCase identifier."""
    message: str = Field(default="", max_length=32768)
    """What happened, for humans."""
    last_transition_time: str = Field(json_schema_extra={"format": "date-time"})
    """When ``status`` last changed."""
    observed_generation: int | None = Field(default=None, ge=0, json_schema_extra={"format": "int64"})
    """The ``metadata.generation`` the condition was set for."""


def condition_list() -> Any:
    """The ``status.conditions`` field: a list-map keyed by ``type``, as metav1.Condition lists are."""
    return Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
