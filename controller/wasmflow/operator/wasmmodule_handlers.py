"""Kopf handlers of the WasmModule controller: thin shells over ``wasmmodules.reconcile``.

- create / update / resume: for a generation not judged yet, Reconciling=True is written first (a pull may take a
  while); then reconcile and write the status. A failure that may heal is written as such, then raises
  ``kopf.TemporaryError`` with our backoff (5 s doubling to 5 min), so Kopf retries the handler.
- a daemon per module re-checks it every ``spec.interval`` (a tag that moved is pulled and checked again; a Stalled
  module is tried again, so creating a missing Secret or pushing a missing tag heals it without an edit), and keeps
  retrying with the backoff while a failure may heal.
- both write the status themselves, inside a per-module lock, so a handler and the daemon never reconcile the
  same module at once; the daemon reads the object fresh inside the lock, so it never writes a status computed
  from an older spec.

Events: one when Ready changes status or reason, or the artifact digest changes (a warning when the user must
act). Metrics: reconciles by result, their duration, modules and bytes pulled from registries.
"""

from __future__ import annotations

import asyncio
import functools
import time
import weakref
from typing import Any, cast

import kopf

from wasmflow.operator import kube
from wasmflow.operator.config import OperatorConfig
from wasmflow.operator.kube import GROUP, VERSION
from wasmflow.operator.metrics import ControllerMetrics
from wasmflow.operator.wasmmodules import (
    ContractChecks,
    Outcome,
    Result,
    check_interval,
    reconcile,
    status_started,
)

PLURAL = "wasmmodules"
#: Reasons of a refusal by the API server: retried, but someone must grant the permission, so a Warning Event.
ACCESS_REFUSED = frozenset({"Forbidden", "Unauthorized"})


def register_wasmmodules(
    registry: kopf.OperatorRegistry,
    config: OperatorConfig,
    metrics: ControllerMetrics | None = None,
    *,
    checks: ContractChecks | None = None,
) -> None:
    """Attach the WasmModule handlers: reconcile on changes, re-check on ``spec.interval``. ``checks`` may be
    shared with the Dataflow controller (``handlers.register``)."""
    api = functools.cache(kube.api_client)  # made at its first call, not at registration; then reused
    locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
    if checks is None:
        checks = ContractChecks(
            concurrency=config.max_concurrent_checks,
            on_compile=metrics.contract_compiles.inc if metrics is not None else None,
        )

    def lock_for(uid: str) -> asyncio.Lock:
        lock = locks.get(uid)
        if lock is None:
            lock = asyncio.Lock()
            locks[uid] = lock
        return lock

    async def reconcile_handler(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, retry: int, **_: Any) -> None:
        started = time.perf_counter()
        namespace, name = str(body.metadata.namespace), str(body.metadata.name)
        previous = dict(body.get("status") or {})
        current = dict(body)
        async with lock_for(str(body.metadata.uid)):
            status = status_started(previous, body.metadata.get("generation"), _source(body))
            if status is not None:
                await kube.patch_custom_status(api(), namespace, PLURAL, name, {"status": status})
                current["status"] = {**previous, **status}
            outcome = await reconcile(api(), current, config, attempt=retry, checks=checks)
            await kube.patch_custom_status(api(), namespace, PLURAL, name, {"status": outcome.status})
        _report(body, previous, outcome, getattr(memo, "metrics", None), started, logger)
        if outcome.result is Result.RETRY:
            raise kopf.TemporaryError(outcome.message, delay=outcome.retry_after or 0)

    for decorator in (kopf.on.create, kopf.on.update, kopf.on.resume):
        decorator(GROUP, VERSION, PLURAL, registry=registry, id="reconcile")(reconcile_handler)

    async def recheck(
        stopped: kopf.DaemonStopped, body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any
    ) -> None:
        namespace, name, uid = str(body.metadata.namespace), str(body.metadata.name), str(body.metadata.uid)
        delay, attempt = check_interval(dict(body)), 0
        while not stopped:
            await stopped.wait(delay)
            if stopped:
                return
            started = time.perf_counter()
            async with lock_for(uid):
                fresh = await kube.get_custom(api(), namespace, PLURAL, name)
                if fresh is None or fresh.get("metadata", {}).get("deletionTimestamp"):
                    return
                outcome = await reconcile(api(), fresh, config, periodic=True, attempt=attempt, checks=checks)
                if outcome.result is not Result.UNCHANGED:
                    await kube.patch_custom_status(api(), namespace, PLURAL, name, {"status": outcome.status})
            previous = dict(fresh.get("status") or {})
            _report(
                kopf.Body(cast(kopf.RawBody, fresh)), previous, outcome, getattr(memo, "metrics", None), started, logger
            )
            if outcome.result is Result.RETRY:
                attempt += 1
                delay = outcome.retry_after or check_interval(fresh)
            else:
                attempt, delay = 0, check_interval(fresh)

    kopf.daemon(GROUP, VERSION, PLURAL, registry=registry, id="recheck", cancellation_timeout=10)(recheck)


def _source(body: kopf.Body) -> str:
    source = body.spec.get("source") or {}
    if "oci" in source:
        return str(source["oci"].get("reference"))
    return f"ConfigMap {(source.get('configMapRef') or {}).get('name')}"


def _report(
    body: kopf.Body,
    previous: dict[str, Any],
    outcome: Outcome,
    metrics: ControllerMetrics | None,
    started: float,
    logger: kopf.Logger,
) -> None:
    """An Event when something a user watches changed; a log line and the metrics always."""
    if metrics is not None:
        metrics.reconciles.labels("WasmModule", outcome.result.value).inc()
        metrics.reconcile_seconds.labels("WasmModule").observe(time.perf_counter() - started)
        if outcome.fetched is not None and outcome.fetched.pulled:
            metrics.modules_pulled.inc()
            metrics.bytes_pulled.inc(outcome.fetched.size)
    if outcome.result is Result.UNCHANGED:
        logger.debug("WasmModule re-checked: unchanged")
        return
    before: dict[str, Any] = next((c for c in previous.get("conditions") or [] if c.get("type") == "Ready"), {})
    after = next(c for c in outcome.status["conditions"] if c["type"] == "Ready")
    old_digest = (previous.get("artifact") or {}).get("digest")
    new_digest = (outcome.status.get("artifact") or {}).get("digest")
    changed = (before.get("status"), before.get("reason")) != (after["status"], after["reason"])
    moved = outcome.result is Result.READY and old_digest is not None and old_digest != new_digest
    if changed or moved:
        message = after["message"] + (f" (was {old_digest})" if moved else "")
        if outcome.result is Result.STALLED or after["reason"] in ACCESS_REFUSED:
            kopf.warn(body, reason=after["reason"], message=message)
        else:
            kopf.info(body, reason=after["reason"], message=message)
    logger.info("WasmModule %s: %s (%s)", outcome.result.value, after["reason"], after["message"])
