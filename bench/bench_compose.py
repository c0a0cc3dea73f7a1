"""Composed vs monolithic (issue 19): the per-message cost of the same identity map built both ways.

Monolithic: tests/components/python/identity_map (componentize-py, our operator world). Composed: the same logic as
rules (tests/components/rules/identity_map_py, wasmflow:map-rules) fused with wasmflow's map adapter by
``contract.compose``. Both run in one EngineHost, one call per message of 1 KiB text; target: composed <= 1.2x.
"""

from __future__ import annotations

import statistics
import time

from tests.components.build import build

from wasmflow.api.kinds import OperatorKind
from wasmflow.contract.compose import compose_rules
from wasmflow.engine.host import EngineHost, OperatorSpec
from wasmflow.engine.message import Message

CALLS = 2000
ROUNDS = 5


def _per_call_us(host: EngineHost, component: bytes, node: str) -> list[float]:
    operator = host.load(OperatorSpec(node, OperatorKind.MAP, component, timeout_seconds=5.0))
    message = Message(b"x" * 1024, "t")
    for _ in range(200):
        operator.map(message)
    rounds = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(CALLS):
            operator.map(message)
        rounds.append((time.perf_counter() - start) / CALLS * 1e6)
    return rounds


def run() -> list[dict[str, object]]:
    monolithic = build("identity_map").read_bytes()
    composed = compose_rules(build("rules_identity_map").read_bytes(), "map").data
    with EngineHost(cache_dir=None) as host:
        mono = _per_call_us(host, monolithic, "monolithic")
        comp = _per_call_us(host, composed, "composed")
    ratio = statistics.median(comp) / statistics.median(mono)
    return [
        {
            "name": "composed identity map, per message (1 KiB text)",
            "unit": "us",
            "ours": comp,
            "comparators": {"monolithic": mono},
            "target": "<= 1.2x monolithic",
            "note": f"composed / monolithic = {ratio:.2f}",
        }
    ]
