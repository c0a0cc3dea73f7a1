"""The WasmModule resource: a component in an OCI registry (or a ConfigMap), its operator kind, grants and limits."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from wasmflow.api.common import (
    DNS_LABEL,
    DURATION_PATTERN,
    QUANTITY_PATTERN,
    Condition,
    FieldError,
    LocalObjectReference,
    Model,
    Name,
    condition_list,
    filled_in,
    is_dns_label,
    parse_duration,
    parse_quantity,
    with_rules,
)
from wasmflow.api.kinds import Capability, OperatorKind
from wasmflow.api.meta import ObjectMeta

DIGEST_PATTERN = r"^sha256:[a-f0-9]{64}$"
#: A wasm32 linear memory cannot grow beyond 4 GiB, so a larger cap means nothing.
MAX_MEMORY_BYTES = 4 * 2**30
#: A call runs on the worker's event loop: one longer than this would starve the MQTT keepalive (30 s) and the
#: health endpoint, and the liveness probe's timeout is derived from the largest timeout (operator/render.py).
MAX_TIMEOUT_PER_MESSAGE_S = 30
TIMEOUT_TOO_LONG = f"timeoutPerMessage must be at most {MAX_TIMEOUT_PER_MESSAGE_S}s (a call blocks the worker's loop)"


class OciSource(Model):
    """A component in an OCI registry."""

    reference: str = Field(min_length=3, max_length=512, pattern=r"^[A-Za-z0-9.-]+(:[0-9]+)?/[^\s]+$")
    """``host[:port]/repository[:tag][@digest]``, e.g. ``registry.example:5000/ops/to-celsius:1.0.0``."""
    digest: str | None = Field(default=None, pattern=DIGEST_PATTERN)
    """Pin: the artifact must have this digest, or the module is Stalled (DigestMismatch)."""
    secret_ref: LocalObjectReference | None = None
    """A ``kubernetes.io/dockerconfigjson`` Secret with the registry credentials."""
    insecure: bool = False
    """Allow plain HTTP to this registry (never the default)."""


class ConfigMapSource(Model):
    """A component stored in a ConfigMap's ``binaryData`` (air-gapped sites)."""

    name: Name
    """Name of the ConfigMap (same namespace)."""
    key: str = Field(default="module.wasm", min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    """Key of ``binaryData`` holding the component."""


class ModuleSource(Model):
    """Where the component comes from: exactly one of ``oci`` and ``configMapRef``."""

    model_config = with_rules(
        {
            "rule": "has(self.oci) != has(self.configMapRef)",
            "message": "set exactly one of oci and configMapRef",
        }
    )

    oci: OciSource | None = None
    """A component in an OCI registry."""
    config_map_ref: ConfigMapSource | None = None
    """A component stored in a ConfigMap (air-gapped sites)."""

    @model_validator(mode="after")
    def _exactly_one(self) -> ModuleSource:
        if (self.oci is None) == (self.config_map_ref is None):
            raise ValueError("set exactly one of oci and configMapRef")
        return self


class KeyReference(Model):
    """One key of a ConfigMap or Secret in the same namespace."""

    name: Name
    """Name of the object."""
    key: str = Field(default="cosign.pub", min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    """The key holding the PEM public key."""


class PublicKeySource(Model):
    """A trusted public key (PEM, as ``cosign.pub``) in a ConfigMap or a Secret of the module's namespace."""

    model_config = with_rules(
        {
            "rule": "has(self.configMapRef) != has(self.secretRef)",
            "message": "set exactly one of configMapRef and secretRef",
        }
    )

    config_map_ref: KeyReference | None = None
    """The key of a ConfigMap's ``data`` holding the PEM public key."""
    secret_ref: KeyReference | None = None
    """The key of a Secret holding the PEM public key."""

    @model_validator(mode="after")
    def _exactly_one(self) -> PublicKeySource:
        if (self.config_map_ref is None) == (self.secret_ref is None):
            raise ValueError("set exactly one of configMapRef and secretRef")
        return self


class Verification(Model):
    """Which signatures the module's artifact must carry (cosign's key-based signatures, ECDSA P-256)."""

    public_keys: list[PublicKeySource] = Field(min_length=1, max_length=8)
    """Trusted keys: a signature by any one of them, over the artifact's manifest digest, is required."""


class Limits(Model):
    """What one instance of the operator may use."""

    model_config = with_rules(
        {
            "rule": "quantity(self.memory).isGreaterThan(quantity('0')) "
            "&& quantity(self.memory).compareTo(quantity('4Gi')) <= 0",
            "message": "memory must be more than 0 and at most 4Gi (a wasm32 memory cannot grow further)",
            "fieldPath": ".memory",
        },
        {
            "rule": "duration(self.timeoutPerMessage) > duration('0s')",
            "message": "timeoutPerMessage must be more than 0",
            "fieldPath": ".timeoutPerMessage",
        },
        {
            "rule": f"duration(self.timeoutPerMessage) <= duration('{MAX_TIMEOUT_PER_MESSAGE_S}s')",
            "message": TIMEOUT_TOO_LONG,
            "fieldPath": ".timeoutPerMessage",
        },
    )

    memory: str = Field(default="64Mi", pattern=QUANTITY_PATTERN, max_length=32)
    """Linear memory cap of one instance (Kubernetes quantity, at most 4Gi)."""
    timeout_per_message: str = Field(default="100ms", pattern=DURATION_PATTERN, max_length=32)
    """Time limit for one message (Go duration); a message over it fails with a timeout."""
    fuel: int | None = Field(default=None, ge=1, json_schema_extra={"format": "int64"})
    """Optional fuel (instruction budget) per message, on top of the time limit."""

    @model_validator(mode="after")
    def _positive(self) -> Limits:
        if not 0 < parse_quantity(self.memory) <= MAX_MEMORY_BYTES:
            raise FieldError(
                ("memory",), "memory must be more than 0 and at most 4Gi (a wasm32 memory cannot grow further)"
            )
        if parse_duration(self.timeout_per_message) <= 0:
            raise FieldError(("timeoutPerMessage",), "timeoutPerMessage must be more than 0")
        if parse_duration(self.timeout_per_message) > MAX_TIMEOUT_PER_MESSAGE_S:
            raise FieldError(("timeoutPerMessage",), TIMEOUT_TOO_LONG)
        return self

    @property
    def memory_bytes(self) -> int:
        return parse_quantity(self.memory, "spec.limits.memory")

    @property
    def timeout_seconds(self) -> float:
        return parse_duration(self.timeout_per_message, "spec.limits.timeoutPerMessage")


class WasmModuleSpec(Model):
    """Desired state of a WasmModule."""

    source: ModuleSource
    """Where the component comes from."""
    operator: OperatorKind
    """The operator interface the component must export: map, filter, branch or accumulate."""
    capabilities: list[Capability] = Field(
        default_factory=list, max_length=8, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """Grants beyond the defaults (logging, clocks, random, stdout/stderr to the log)."""
    limits: Limits = Field(default_factory=Limits, json_schema_extra=filled_in(Limits))
    """What one instance of the operator may use."""
    interval: str = Field(default="10m", pattern=DURATION_PATTERN, max_length=32)
    """How often a tag is re-resolved to a digest (Go duration)."""
    strict: bool = False
    """Refuse components whose imports exceed their grants (otherwise they are denied at run time)."""
    verify: Verification | None = None
    """Require a cosign signature by a trusted key (otherwise the controller's default policy applies)."""

    @model_validator(mode="after")
    def _capabilities_once(self) -> WasmModuleSpec:
        """Mirror of ``x-kubernetes-list-type: set``: the API server refuses a repeated grant."""
        repeated = sorted({c.value for c in self.capabilities if self.capabilities.count(c) > 1})
        if repeated:
            raise FieldError(("capabilities",), f"capabilities are listed more than once: {', '.join(repeated)}")
        return self


class Artifact(Model):
    """The verified artifact the module resolved to."""

    digest: str
    """sha256 digest of the component bytes."""
    size: int = Field(json_schema_extra={"format": "int64"})
    """Size in bytes."""
    media_type: str
    """Media type of the layer holding the component."""
    fetched_at: str = Field(json_schema_extra={"format": "date-time"})
    """When the artifact was fetched and verified."""


class SignatureStatus(Model):
    """The signature that was verified for the artifact."""

    signer: str
    """Who signed: ``key sha256:<first 16 hex digits of the key's fingerprint>``."""
    key_id: str
    """The trusted key's fingerprint: sha256 of its DER SubjectPublicKeyInfo."""
    digest: str
    """Digest of the signature manifest holding the verified signature."""
    payload_digest: str
    """Digest of the signed payload (cosign's simple-signing document)."""
    signed_digest: str
    """The artifact manifest digest the signature covers."""


class WasmModuleStatus(Model):
    """Observed state of a WasmModule (kstatus/Flux conventions)."""

    observed_generation: int | None = Field(default=None, json_schema_extra={"format": "int64"})
    """The ``metadata.generation`` this status describes."""
    conditions: list[Condition] = condition_list()
    """Ready, Reconciling and Stalled."""
    artifact: Artifact | None = None
    """The verified artifact the module resolved to."""
    world: str | None = None
    """The contract world the component implements, e.g. ``wasmflow:operator/map-operator@0.1.0``."""
    imports: list[str] = Field(default_factory=list)
    """Interfaces the component imports (what it may ask the host for)."""
    signature: SignatureStatus | None = None
    """The verified signature, when a signature policy applies."""
    last_handled_reconcile_at: str | None = None
    """The last ``reconcile.fluxcd.io/requestedAt`` annotation value handled (Flux's manual re-sync)."""


_NAME_RULE = {
    "rule": "self.metadata.name.size() <= 63 && self.metadata.name.matches('" + DNS_LABEL + "')",
    "message": "a WasmModule name must be a DNS label (at most 63 of a-z, 0-9 and '-'): Dataflow nodes refer to it",
}


class WasmModule(Model):
    """A WebAssembly component usable as an operator in Dataflows."""

    model_config = with_rules(_NAME_RULE)

    api_version: Literal["wasmflow.io/v1alpha1"] = "wasmflow.io/v1alpha1"
    kind: Literal["WasmModule"] = "WasmModule"
    metadata: ObjectMeta
    spec: WasmModuleSpec
    status: WasmModuleStatus | None = None

    @model_validator(mode="after")
    def _name(self) -> WasmModule:
        if len(self.metadata.name) > 63 or not is_dns_label(self.metadata.name):
            raise FieldError(("metadata", "name"), _NAME_RULE["message"])
        return self
