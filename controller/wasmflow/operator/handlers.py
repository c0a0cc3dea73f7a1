"""The table of Kopf handlers: every handler the controller runs is registered here, on an explicit registry.

Handlers are thin (STYLE.md 1.2): they parse the body into the api models, call the reconcile functions of
``wasmmodules`` / ``dataflows`` and write status. Registering on an explicit registry instead of Kopf's global
one keeps imports free of side effects and lets tests run a controller with exactly these handlers.
"""

from __future__ import annotations

import kopf

from wasmflow.operator.config import OperatorConfig
from wasmflow.operator.dataflow_handlers import register_dataflows
from wasmflow.operator.metrics import ControllerMetrics
from wasmflow.operator.wasmmodule_handlers import register_wasmmodules
from wasmflow.operator.wasmmodules import ContractChecks


def register(registry: kopf.OperatorRegistry, config: OperatorConfig, metrics: ControllerMetrics | None = None) -> None:
    """Attach every wasmflow handler to ``registry``; both controllers share one set of contract checks (one
    compile slot, one verdict per component digest)."""
    checks = ContractChecks(
        concurrency=config.max_concurrent_checks,
        on_compile=metrics.contract_compiles.inc if metrics is not None else None,
    )
    register_wasmmodules(registry, config, metrics, checks=checks)
    register_dataflows(registry, config, checks=checks)
