"""overheat: routes readings above `threshold` (°C, default 80) to the true arm (alerts), the rest to the false arm."""

import json

from wit_world import exports
from wit_world.imports import types

from wasmflow_guest import CONFIG, configure, guard, log, payload_bytes


def is_true_arm(body: dict) -> bool:
    """True when the reading is an anomaly that must raise an alert."""
    hot = float(body["value"]) > float(CONFIG.get("threshold", "80"))
    if hot:
        log(f"overheat: {body.get('asset', body.get('sensor', '?'))} at {body['value']} C")
    return hot


class Lifecycle(exports.Lifecycle):
    def init(self, config: types.Configuration) -> None:
        configure(config)


class Branch(exports.Branch):
    def process(self, input: types.Message) -> bool:
        return guard(lambda: is_true_arm(json.loads(payload_bytes(input))))
