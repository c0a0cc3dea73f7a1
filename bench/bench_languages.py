"""Figure 2: the cost of sandboxing per language. One small transformation (°F→°C on a JSON payload), four ways:

* plain Python in-process: what a user would write without wasmflow (json.loads, arithmetic, json.dumps), the
  comparator of every row;
* a componentize-py component (tests/components/python/f2c_map), a JavaScript component built by jco /
  componentize-js (tests/components/js/f2c_map) and a WAT component assembled by wasm-tools (bench/wat_operators),
  each called through the engine as a worker calls it (``OperatorNode.map``).

All four are measured in the same interleaved rounds, and each must give the same answer (compared as parsed JSON)
before it is timed.
"""

from __future__ import annotations

import json
from typing import Any

from prometheus_client import CollectorRegistry
from tests.components.build import build
from tests.components.build import cache_dir as components_dir

from bench import wat_operators
from bench.report import compare
from wasmflow.api.kinds import OperatorKind
from wasmflow.engine.host import EngineHost, OperatorSpec
from wasmflow.engine.message import Message
from wasmflow.engine.metrics import EngineMetrics

MESSAGE = Message(
    b'{"sensor":"line-3/oven-2","value":98.6,"quality":"good"}',
    "factory/lyon/line-3/temperature",
    "application/json",
    (("site", "lyon"),),
    1_764_547_200_000,
)
EXPECTED = {"sensor": "line-3/oven-2", "value": 37.0, "quality": "good", "unit": "C"}


def plain_python(msg: Message) -> Message:
    """The same transformation as the Python operator, without a sandbox (precision 2)."""
    body = json.loads(msg.payload)
    body["value"] = round((float(body["value"]) - 32) * 5 / 9, 2)
    body["unit"] = "C"
    return Message(
        json.dumps(body, separators=(",", ":")).encode(),
        msg.topic,
        "application/json",
        msg.properties,
        msg.timestamp_ms,
    )


def run() -> list[dict[str, Any]]:
    components = {
        "componentize-py": build("f2c_map").read_bytes(),
        "JavaScript (jco)": build("js_f2c_map").read_bytes(),
        "WAT (wasm-tools)": wat_operators.f2c_map(),
    }
    calls: dict[str, Any] = {"plain Python": lambda: plain_python(MESSAGE)}
    with EngineHost(
        cache_dir=components_dir().parent / "compiled-bench", metrics=EngineMetrics(CollectorRegistry())
    ) as host:
        for label, data in components.items():
            node = host.load(OperatorSpec(f"f2c-{label}", OperatorKind.MAP, data, timeout_seconds=5.0))
            answer = json.loads(node.map(MESSAGE).payload)
            if answer != EXPECTED:
                raise AssertionError(f"{label} answered {answer}, expected {EXPECTED}")
            calls[label] = lambda node=node: node.map(MESSAGE)
        assert json.loads(plain_python(MESSAGE).payload) == EXPECTED
        samples = compare(calls, runs=7, budget_seconds=0.15)
    floor = samples["plain Python"]
    return [
        {
            "name": f"2. °F→°C on JSON, {label} component: per message",
            "unit": "s",
            "ours": samples[label],
            "comparators": {"plain Python in-process": floor},
            "note": f"sandboxing costs {(samples[label].median - floor.median) * 1e6:.0f} µs a message",
        }
        for label in components
    ]
