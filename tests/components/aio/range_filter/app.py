"""AIO filter (wasm-graph:processor@1.1.0): pass {"value": V} when lower <= V <= upper (parameters `lower`, `upper`).

A payload without a numeric value is an `error` result (1.1.0 returns `result<bool, error>`).
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import logger, types

BOUNDS = [float("-inf"), float("inf")]


def payload_bytes(payload: types.BufferOrBytes) -> bytes:
    if isinstance(payload, types.BufferOrBytes_Buffer):
        return payload.value.read()
    return payload.value


class Filter(exports.Filter):
    def init(self, configuration: types.ModuleConfiguration) -> bool:
        for key, value in configuration.properties:
            if key in ("lower", "upper"):
                try:
                    BOUNDS[0 if key == "lower" else 1] = float(value)
                except ValueError:
                    logger.log(logger.Level.ERROR, "range/filter", f"{key} must be a number, got {value!r}")
                    return False
        return True

    def process(self, message: types.DataModel) -> bool:
        if not isinstance(message, types.DataModel_Message):
            raise Err(types.Error("expected a message"))
        try:
            value = float(json.loads(payload_bytes(message.value.payload))["value"])
        except (ValueError, KeyError, TypeError) as exc:
            raise Err(types.Error(f"expected JSON with a numeric 'value': {exc}"))
        return BOUNDS[0] <= value <= BOUNDS[1]
