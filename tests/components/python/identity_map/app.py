"""map: returns its input unchanged (the host-overhead baseline)."""

from wit_world import exports
from wit_world.imports import types


class Lifecycle(exports.Lifecycle):
    def init(self, config: types.Configuration) -> None:
        return None


class Map(exports.Map):
    def process(self, input: types.Message) -> types.Message:
        return input
