"""filter: keeps messages whose JSON "value" lies within [min, max] (configuration properties, defaults -50, 150)."""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

BOUNDS = {"min": -50.0, "max": 150.0}


class Lifecycle(exports.Lifecycle):
    def init(self, config: types.Configuration) -> None:
        for key, value in config.properties:
            if key in BOUNDS:
                try:
                    BOUNDS[key] = float(value)
                except ValueError:
                    raise Err(f"{key} must be a number, got {value!r}")


class Filter(exports.Filter):
    def process(self, input: types.Message) -> bool:
        payload = input.payload
        text = payload.value if isinstance(payload, types.Payload_Text) else bytes(payload.value).decode()
        try:
            value = float(json.loads(text)["value"])
        except (ValueError, KeyError, TypeError) as exc:
            raise Err(types.OperatorError(f"expected JSON with a numeric 'value': {exc}"))
        return BOUNDS["min"] <= value <= BOUNDS["max"]
