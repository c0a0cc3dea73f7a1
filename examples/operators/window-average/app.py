"""window-average: folds a window of readings into count, min, max and average (°C)."""

import json

from wit_world import exports
from wit_world.imports import types

from wasmflow_guest import configure, guard, payload_bytes, with_payload


def fold(state: dict | None, body: dict) -> dict:
    """Fold one reading into the window's state (None for the first reading of a window)."""
    value = float(body["value"])
    state = state or {"count": 0, "sum": 0.0, "min": value, "max": value}
    state["count"] += 1
    state["sum"] = round(state["sum"] + value, 6)
    state["min"] = min(state["min"], value)
    state["max"] = max(state["max"], value)
    state["avg"] = round(state["sum"] / state["count"], 3)
    state["unit"] = "C"
    return state


class Lifecycle(exports.Lifecycle):
    def init(self, config: types.Configuration) -> None:
        configure(config)


class Accumulate(exports.Accumulate):
    def process(self, state: types.Message, input: types.Message) -> types.Message:
        def run() -> types.Message:
            previous = payload_bytes(state)
            folded = fold(json.loads(previous) if previous else None, json.loads(payload_bytes(input)))
            return with_payload(input, json.dumps(folded, separators=(",", ":")).encode(), "application/json")

        return guard(run)
