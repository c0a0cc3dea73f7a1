"""The WasmModule controller's pure decisions: status for a verified module, for failures, backoff, interval."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from tests.components.engine import wat
from tests.fault_report import Report
from wasmflow.api.kinds import OperatorKind
from wasmflow.api.wasmmodule import WasmModule
from wasmflow.contract.capabilities import ImportClass
from wasmflow.contract.check import check_component
from wasmflow.contract.report import ContractReport, ImportReport
from wasmflow.operator import wasmmodules
from wasmflow.operator.wasmmodules import (
    ContractChecks,
    Fetched,
    check_interval,
    retry_delay,
    status_failed,
    status_ready,
    status_started,
)

DIGEST = "sha256:" + "ab" * 32
FETCHED = Fetched(
    data=b"\0asm" + b"x" * 96, digest=DIGEST, media_type="application/wasm", source="r.example/op:1", pulled=True
)
REPORT = ContractReport(
    size=100,
    operator=OperatorKind.MAP,
    world="wasmflow:operator/map-operator@0.1.0",
    imports=(ImportReport("wasmflow:operator/logging@0.1.0", ImportClass.CONTRACT, None, True),),
)
AT = "2026-12-01T08:00:00Z"


def condition(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in status["conditions"] if c["type"] == type_), None)


def test_a_verified_module_is_ready_with_artifact_world_and_imports() -> None:
    status = status_ready({}, 3, FETCHED, REPORT, AT)
    assert status["observedGeneration"] == 3
    assert status["artifact"] == {"digest": DIGEST, "size": 100, "mediaType": "application/wasm", "fetchedAt": AT}
    assert status["world"] == "wasmflow:operator/map-operator@0.1.0"
    assert status["imports"] == ["wasmflow:operator/logging@0.1.0"]
    ready = condition(status, "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == ("True", "Succeeded", 3)
    assert DIGEST in ready["message"] and "map-operator" in ready["message"]
    assert [c["type"] for c in status["conditions"]] == ["Ready"]


def test_a_failure_the_user_must_fix_is_stalled_and_not_ready_with_the_same_reason() -> None:
    status = status_failed({}, 2, "NotFound", "manifest 1 not found: push it", transient=False)
    assert {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]} == {
        "Ready": ("False", "NotFound"),
        "Stalled": ("True", "NotFound"),
    }
    assert status["observedGeneration"] == 2


def test_a_failure_that_may_heal_keeps_reconciling_with_retry() -> None:
    status = status_failed({}, 2, "Unreachable", "cannot connect (retrying in 5s)", transient=True)
    assert {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]} == {
        "Ready": ("False", "Unreachable"),
        "Reconciling": ("True", "ProgressingWithRetry"),
    }


def test_a_failure_after_success_keeps_the_last_good_artifact_but_is_not_ready() -> None:
    ready = status_ready({}, 1, FETCHED, REPORT, AT)
    failed = status_failed(ready, 2, "DigestMismatch", "pin does not match", transient=False)
    assert failed["artifact"]["digest"] == DIGEST
    stalled = condition(failed, "Stalled")
    assert stalled is not None and stalled["observedGeneration"] == 2


def test_healing_removes_stalled_and_reconciling() -> None:
    stalled = status_failed({}, 1, "NotFound", "x", transient=False)
    healed = status_ready(stalled, 1, FETCHED, REPORT, AT)
    assert [c["type"] for c in healed["conditions"]] == ["Ready"]


def test_ready_keeps_its_transition_time_while_it_stays_ready() -> None:
    first = status_ready({}, 1, FETCHED, REPORT, AT)
    again = status_ready(first, 1, FETCHED, REPORT, "2026-12-01T09:00:00Z")
    assert condition(again, "Ready")["lastTransitionTime"] == condition(first, "Ready")["lastTransitionTime"]  # type: ignore[index]


def test_the_backoff_doubles_from_5_seconds_to_at_most_5_minutes() -> None:
    assert [retry_delay(n) for n in range(8)] == [5, 10, 20, 40, 80, 160, 300, 300]
    assert retry_delay(10_000) == 300


@pytest.mark.parametrize(
    ("spec", "seconds"),
    [
        ({"interval": "10m"}, 600),
        ({"interval": "1m30s"}, 90),
        ({"interval": "100ms"}, 1),
        ({}, 600),
        ({"interval": "x"}, 600),
    ],
)
def test_the_recheck_interval_comes_from_the_spec_and_is_never_under_a_second(
    spec: dict[str, str], seconds: float
) -> None:
    assert check_interval({"spec": spec}) == seconds


def test_a_new_generation_starts_reconciling_with_ready_unknown() -> None:
    started = status_started({}, 1, "r.example/op:1")
    assert started is not None
    assert started["observedGeneration"] == 1
    assert {c["type"]: (c["status"], c["reason"]) for c in started["conditions"]} == {
        "Ready": ("Unknown", "Progressing"),
        "Reconciling": ("True", "Progressing"),
    }
    edited = status_started(status_ready({}, 1, FETCHED, REPORT, AT), 2, "r.example/op:1")
    assert edited is not None and condition(edited, "Ready")["status"] == "Unknown"  # type: ignore[index]


def test_a_generation_already_judged_does_not_start_over() -> None:
    assert status_started(status_ready({}, 1, FETCHED, REPORT, AT), 1, "r.example/op:1") is None


def wasm_module(kind: str, capabilities: list[str] | None = None) -> WasmModule:
    return WasmModule.model_validate(
        {
            "metadata": {"name": "op"},
            "spec": {
                "source": {"oci": {"reference": "r.example/op:1"}},
                "operator": kind,
                "capabilities": capabilities or [],
            },
        }
    )


def test_a_component_used_by_many_modules_is_checked_once() -> None:
    data = wat.operator("map")
    fetched = Fetched(data=data, digest=wat.digest(data), media_type="application/wasm", source="x", pulled=False)
    checks = ContractChecks()

    async def many() -> list[ContractReport]:
        return await asyncio.gather(*(checks.check(fetched, wasm_module("map"), 2**20) for _ in range(5)))

    reports = asyncio.run(many())
    assert all(r == reports[0] for r in reports) and reports[0].valid
    assert checks.compiles == 1


def test_a_verdict_depends_on_the_kind_and_the_grants_as_well_as_the_bytes() -> None:
    data = wat.operator("map")
    fetched = Fetched(data=data, digest=wat.digest(data), media_type="application/wasm", source="x", pulled=False)
    checks = ContractChecks()

    async def judge(module: WasmModule) -> ContractReport:
        return await checks.check(fetched, module, 2**20)

    as_map = asyncio.run(judge(wasm_module("map")))
    as_filter = asyncio.run(judge(wasm_module("filter")))
    granted = asyncio.run(judge(wasm_module("map", ["network"])))
    assert as_map.valid and granted.valid and granted is not as_map
    assert [p.code.value for p in as_filter.problems] == ["kind-mismatch"]
    assert checks.compiles == 1  # one compile, three verdicts


def test_compiles_run_one_at_a_time_and_the_same_bytes_under_other_grants_are_not_compiled_again(
    monkeypatch: pytest.MonkeyPatch, report: Report
) -> None:
    components = [wat.operator("map", "(nop) " * (i + 1)) for i in range(4)]
    fetched = [
        Fetched(data=d, digest=wat.digest(d), media_type="application/wasm", source="x", pulled=False)
        for d in components
    ]
    running, peak, lock = 0, 0, threading.Lock()

    def watched(data: bytes, **kwargs: Any) -> ContractReport:
        """The real check, counting how many run at once (they run in threads)."""
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            time.sleep(0.05)  # widen the window in which a second compile would overlap
            return check_component(data, **kwargs)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(wasmmodules, "check_component", watched)
    checks = ContractChecks(concurrency=1)

    async def everything() -> list[ContractReport]:
        grants: list[list[str]] = [[], ["network"], ["http", "stdio"]]
        return await asyncio.gather(*(checks.check(f, wasm_module("map", g), 2**20) for f in fetched for g in grants))

    reports = asyncio.run(everything())
    assert all(r.valid for r in reports)
    assert checks.compiles == len(components)
    assert peak == 1
    report(components=len(components), verdicts=len(reports), compiles=checks.compiles, compiling_at_once=peak)
