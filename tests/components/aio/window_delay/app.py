"""AIO delay (tinykube-graph:processor@1.0.0): move each item to the end of its tumbling window of `windowMs`.

The window is taken from the message's own timestamp, as AIO's window sample does; the counter is reset so every
item of a window carries the same timestamp, which is what lets an accumulate after it fold the window.
"""

from wit_world import exports
from wit_world.imports import hybrid_logical_clock, types

WINDOW_MS = [10_000]


class Delay(exports.Delay):
    def init(self, configuration: types.ModuleConfiguration) -> bool:
        for key, value in configuration.properties:
            if key == "windowMs":
                WINDOW_MS[0] = int(value)
        return WINDOW_MS[0] > 0

    def process(
        self, data: types.DataModel, timestamp: hybrid_logical_clock.HybridLogicalClock
    ) -> hybrid_logical_clock.HybridLogicalClock:
        time = data.value.timestamp.timestamp if isinstance(data, types.DataModel_Message) else timestamp.timestamp
        ms = time.secs * 1000 + time.nanos // 1_000_000
        if ms % WINDOW_MS[0] or time.nanos % 1_000_000:
            ms = (ms // WINDOW_MS[0] + 1) * WINDOW_MS[0]
        end = hybrid_logical_clock.Timespec(ms // 1000, (ms % 1000) * 1_000_000)
        return hybrid_logical_clock.HybridLogicalClock(end, 0, timestamp.node_id)
