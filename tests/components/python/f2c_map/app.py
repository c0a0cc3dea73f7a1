"""map: {"value": F, ...} in Fahrenheit -> the same object with "value" in Celsius and "unit": "C".

Configuration: `precision` (decimal places, default 2). A payload that is not JSON, or has no numeric "value",
is an operator error (the message goes to the error policy).
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

PRECISION = 2


class Lifecycle(exports.Lifecycle):
    def init(self, config: types.Configuration) -> None:
        global PRECISION
        for key, value in config.properties:
            if key == "precision":
                if not value.isdigit():
                    raise Err(f"precision must be a whole number, got {value!r}")
                PRECISION = int(value)


def text_of(payload: types.Payload) -> str:
    if isinstance(payload, types.Payload_Text):
        return payload.value
    return bytes(payload.value).decode("utf-8")


class Map(exports.Map):
    def process(self, input: types.Message) -> types.Message:
        try:
            body = json.loads(text_of(input.payload))
            fahrenheit = float(body["value"])
        except (ValueError, KeyError, TypeError) as exc:
            raise Err(types.OperatorError(f"expected JSON with a numeric 'value': {exc}"))
        body["value"] = round((fahrenheit - 32) * 5 / 9, PRECISION)
        body["unit"] = "C"
        return types.Message(
            payload=types.Payload_Text(json.dumps(body, separators=(",", ":"))),
            topic=input.topic,
            content_type="application/json",
            properties=input.properties,
            timestamp_ms=input.timestamp_ms,
        )
