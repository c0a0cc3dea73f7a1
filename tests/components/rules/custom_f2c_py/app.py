"""A rules component in the style of Azure's composition sample: exports map:custom/custom (built here with
componentize-py), converting a JSON reading from °F to °C with the "precision" property, and knowing nothing of
AIO or wasmflow."""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

PRECISION = 1


class Custom(exports.Custom):
    def init(self, configuration: types.ModuleConfiguration) -> bool:
        global PRECISION
        for key, value in configuration.properties:
            if key == "precision":
                if not value.isdigit():
                    return False
                PRECISION = int(value)
        return True

    def process(self, message: types.DataModel) -> types.DataModel:
        try:
            reading = json.loads(bytes(message.payload))
            celsius = round((float(reading["value"]) - 32) * 5 / 9, PRECISION)
        except (ValueError, KeyError, TypeError) as exc:
            raise Err(types.Error_InvalidArgument(f"not a reading: {exc}"))
        return types.DataModel(json.dumps({"value": celsius, "unit": "C"}, separators=(",", ":")).encode())
