"""The parts of ObjectMeta the controller and the CLI read; the rest of metadata is kept but not interpreted."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

API_GROUP = "wasmflow.io"
API_VERSION = f"{API_GROUP}/v1alpha1"


class ObjectMeta(BaseModel):
    """Name, namespace and the fields a controller needs; other metadata passes through untouched."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
