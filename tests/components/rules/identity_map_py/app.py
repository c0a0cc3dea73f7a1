"""Rules for a map that return their input unchanged: the composed twin of tests/components/python/identity_map,
for the composed-vs-monolithic benchmark (bench/bench_compose.py)."""

from wit_world import exports
from wit_world.exports import rules


class Rules(exports.Rules):
    def init(self, properties: list[tuple[str, str]]) -> None:
        return None

    def process(self, input: rules.Message) -> rules.Message:
        return input
