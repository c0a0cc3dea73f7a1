"""The controller's own Prometheus metrics, created against an injected registry (STYLE.md 4.3)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass(frozen=True)
class ControllerMetrics:
    """Reconciles by kind and result, their duration, and what the module pulls cost."""

    reconciles: Counter
    reconcile_seconds: Histogram
    modules_pulled: Counter
    bytes_pulled: Counter
    contract_compiles: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ControllerMetrics:
        return cls(
            reconciles=Counter(
                "wasmflow_controller_reconciles",
                "Reconciles by resource kind and result (ready, stalled, retry).",
                ["kind", "result"],
                registry=registry,
            ),
            reconcile_seconds=Histogram(
                "wasmflow_controller_reconcile_seconds",
                "Duration of one reconcile, by resource kind.",
                ["kind"],
                registry=registry,
            ),
            modules_pulled=Counter(
                "wasmflow_controller_modules_pulled",
                "Module blobs pulled from registries (cache misses).",
                registry=registry,
            ),
            bytes_pulled=Counter(
                "wasmflow_controller_pulled_bytes",
                "Bytes of module blobs pulled from registries.",
                registry=registry,
            ),
            contract_compiles=Counter(
                "wasmflow_controller_contract_compiles",
                "Components compiled for a contract check (once per digest, whatever the grants).",
                registry=registry,
            ),
        )
