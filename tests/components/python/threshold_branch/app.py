"""branch: true (alert arm) when the JSON "value" is above `threshold` (configuration, default 80)."""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

THRESHOLD = [80.0]


class Lifecycle(exports.Lifecycle):
    def init(self, config: types.Configuration) -> None:
        for key, value in config.properties:
            if key == "threshold":
                THRESHOLD[0] = float(value)


class Branch(exports.Branch):
    def process(self, input: types.Message) -> bool:
        payload = input.payload
        text = payload.value if isinstance(payload, types.Payload_Text) else bytes(payload.value).decode()
        try:
            return float(json.loads(text)["value"]) > THRESHOLD[0]
        except (ValueError, KeyError, TypeError) as exc:
            raise Err(types.OperatorError(f"expected JSON with a numeric 'value': {exc}"))
