"""Run one message through a WAT identity map in a fresh process and print what it cost in resident memory.

``python -m tests.unit.hostile.codec_memory_probe KIND SIZE`` (KIND: ``binary`` or ``text``) prints one JSON object:
``peak`` (VmHWM above the resident set just before the call, bytes), ``retained`` (resident set after the call and
a garbage collection, above it), ``outcome`` (``echoed`` or the failure). A process of its own, so that neither the
test run's earlier allocations nor its allocator's free lists blur a figure of tens of MiB.
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

from tests.components.engine import wat
from wasmflow.api.kinds import OperatorKind
from wasmflow.engine.host import EngineHost, OperatorSpec
from wasmflow.engine.message import Message
from wasmflow.errors import OperatorFailure


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/self/status")


def main(kind: str, size: int) -> None:
    payload = (b"\xff" if kind == "binary" else b"t") * size
    with EngineHost(cache_dir=None) as host:
        spec = OperatorSpec("op", OperatorKind.MAP, wat.operator("map"), memory_bytes=512 * 2**20, timeout_seconds=60)
        node = host.load(spec)
        node.map(Message(payload[:16], "warm-up"))
        gc.collect()
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        before = _status("VmRSS")
        try:
            out = node.map(Message(payload, "t"))
            outcome = "echoed" if out.payload == payload else "changed"
            del out
        except OperatorFailure as failure:
            outcome = f"{failure.kind}: {failure.message}"
        peak = _status("VmHWM") - before
        gc.collect()
        retained = _status("VmRSS") - before
        node.close()
    print(json.dumps({"peak": peak, "retained": retained, "outcome": outcome}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
