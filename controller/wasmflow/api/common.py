"""Shared pieces of the resource models: the pydantic base, references, quantities, durations, conditions.

Quantities and durations stay strings in the manifests (as Kubernetes users write them: ``64Mi``, ``100ms``) and are
parsed by pure functions with errors that say what is wrong.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic.alias_generators import to_camel

from wasmflow.errors import ConfigError

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
Name = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]


class Model(BaseModel):
    """camelCase in YAML, snake_case in Python; unknown fields are errors (a typo must not be silently ignored)."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, extra="forbid", frozen=True
    )


def with_rules(*rules: dict[str, str]) -> ConfigDict:
    """Model config that adds CEL rules (``x-kubernetes-validations``) to the model's schema in the CRD."""
    extra: dict[str, JsonValue] = {"x-kubernetes-validations": [dict(rule) for rule in rules]}
    return ConfigDict(**Model.model_config, json_schema_extra=extra)


class LocalObjectReference(Model):
    """A Secret or ConfigMap in the same namespace."""

    name: Name


class SecretKeyReference(Model):
    """One key of a Secret in the same namespace."""

    name: Name
    key: str = Field(min_length=1, max_length=253)


_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_QUANTITY_FACTORS = {
    None: 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$"


def parse_quantity(value: str, where: str = "") -> int:
    """Bytes in a Kubernetes quantity such as ``64Mi`` or ``1G``."""
    match = _QUANTITY.match(value.strip())
    if not match:
        raise ConfigError(f"not a quantity: {value!r} (examples: 64Mi, 1Gi, 500M)", where=where)
    return int(float(match[1]) * _QUANTITY_FACTORS[match[2]])


_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_DURATION_FACTORS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str, where: str = "") -> float:
    """Seconds in a Go-style duration such as ``100ms``, ``30s``, ``1m30s``."""
    text = value.strip()
    parts = _DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ConfigError(f"not a duration: {value!r} (examples: 100ms, 30s, 10m, 1h30m)", where=where)
    return sum(float(n) * _DURATION_FACTORS[u] for n, u in parts)


class Condition(Model):
    """A metav1.Condition: Ready, Reconciling, Stalled (kstatus and Flux read these)."""

    type: str = Field(
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
    )
    status: str = Field(pattern=r"^(True|False|Unknown)$")
    reason: str = Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    message: str = Field(default="", max_length=32768)
    last_transition_time: str
    observed_generation: int | None = Field(default=None, ge=0)
