"""accumulate: folds JSON {"value": v} messages into {"count": n, "sum": s, "avg": a} (state starts empty)."""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types


class Lifecycle(exports.Lifecycle):
    def init(self, config: types.Configuration) -> None:
        return None


def text_of(payload: types.Payload) -> str:
    return payload.value if isinstance(payload, types.Payload_Text) else bytes(payload.value).decode()


class Accumulate(exports.Accumulate):
    def process(self, state: types.Message, input: types.Message) -> types.Message:
        try:
            value = float(json.loads(text_of(input.payload))["value"])
        except (ValueError, KeyError, TypeError) as exc:
            raise Err(types.OperatorError(f"expected JSON with a numeric 'value': {exc}"))
        current = json.loads(text_of(state.payload) or '{"count": 0, "sum": 0}')
        count = current["count"] + 1
        total = current["sum"] + value
        body = {"count": count, "sum": round(total, 6), "avg": round(total / count, 6)}
        return types.Message(
            payload=types.Payload_Text(json.dumps(body, separators=(",", ":"))),
            topic=input.topic,
            content_type="application/json",
            properties=[],
            timestamp_ms=input.timestamp_ms,
        )
