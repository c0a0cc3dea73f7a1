"""The WasmModule resource: a component in an OCI registry (or a ConfigMap), its operator kind, grants and limits."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from wasmflow.api.common import (
    DURATION_PATTERN,
    QUANTITY_PATTERN,
    Condition,
    LocalObjectReference,
    Model,
    Name,
    parse_duration,
    parse_quantity,
    with_rules,
)
from wasmflow.api.kinds import Capability, OperatorKind
from wasmflow.api.meta import ObjectMeta

DIGEST_PATTERN = r"^sha256:[a-f0-9]{64}$"


class OciSource(Model):
    """A component in an OCI registry."""

    #: ``host[:port]/repository[:tag][@digest]``, e.g. ``registry.example:5000/ops/to-celsius:1.0.0``.
    reference: str = Field(min_length=3, max_length=512, pattern=r"^[A-Za-z0-9.-]+(:[0-9]+)?/[^\s]+$")
    #: Pin: the artifact must have this digest, or the module is Stalled (DigestMismatch).
    digest: str | None = Field(default=None, pattern=DIGEST_PATTERN)
    #: A ``kubernetes.io/dockerconfigjson`` Secret with the registry credentials.
    secret_ref: LocalObjectReference | None = None
    #: Allow plain HTTP to this registry (never the default).
    insecure: bool = False


class ConfigMapSource(Model):
    """A component stored in a ConfigMap's ``binaryData`` (air-gapped sites)."""

    name: Name
    key: str = Field(default="module.wasm", min_length=1, max_length=253)


class ModuleSource(Model):
    """Where the component comes from: exactly one of ``oci`` and ``configMapRef``."""

    model_config = with_rules(
        {
            "rule": "has(self.oci) != has(self.configMapRef)",
            "message": "set exactly one of oci and configMapRef",
        }
    )

    oci: OciSource | None = None
    config_map_ref: ConfigMapSource | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ModuleSource:
        if (self.oci is None) == (self.config_map_ref is None):
            raise ValueError("set exactly one of oci and configMapRef")
        return self


class Limits(Model):
    """What one instance of the operator may use."""

    #: Linear memory cap (Kubernetes quantity).
    memory: str = Field(default="64Mi", pattern=QUANTITY_PATTERN, max_length=32)
    #: Time limit for one message (Go duration); a message over it fails with a timeout.
    timeout_per_message: str = Field(default="100ms", pattern=DURATION_PATTERN, max_length=32)
    #: Optional fuel (instruction budget) per message, on top of the time limit.
    fuel: int | None = Field(default=None, ge=1)

    @property
    def memory_bytes(self) -> int:
        return parse_quantity(self.memory, "spec.limits.memory")

    @property
    def timeout_seconds(self) -> float:
        return parse_duration(self.timeout_per_message, "spec.limits.timeoutPerMessage")


class WasmModuleSpec(Model):
    """Desired state of a WasmModule."""

    source: ModuleSource
    #: The operator interface the component must export.
    operator: OperatorKind
    #: Grants beyond the defaults (logging, clocks, random, stdout/stderr to the log).
    capabilities: list[Capability] = Field(default_factory=list, max_length=8)
    limits: Limits = Field(default_factory=Limits)
    #: How often a tag is re-resolved to a digest.
    interval: str = Field(default="10m", pattern=DURATION_PATTERN, max_length=32)
    #: Refuse components whose imports exceed their grants.
    strict: bool = False


class Artifact(Model):
    """The verified artifact the module resolved to."""

    digest: str
    size: int
    media_type: str
    fetched_at: str


class WasmModuleStatus(Model):
    """Observed state of a WasmModule (kstatus/Flux conventions)."""

    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    artifact: Artifact | None = None
    world: str | None = None
    imports: list[str] = Field(default_factory=list)


class WasmModule(Model):
    """A WasmModule manifest."""

    api_version: Literal["wasmflow.io/v1alpha1"] = "wasmflow.io/v1alpha1"
    kind: Literal["WasmModule"] = "WasmModule"
    metadata: ObjectMeta
    spec: WasmModuleSpec
    status: WasmModuleStatus | None = None
