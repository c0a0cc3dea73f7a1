"""The time of a graph (engine/time.py): how a node's progress follows its inputs', and how HLC stamps order."""

from __future__ import annotations

from wasmflow.engine.time import END, START, Frontier, Hlc, HlcClock, key


def test_a_nodes_frontier_is_the_least_of_its_inputs() -> None:
    frontier = Frontier(2)
    assert frontier.advance(0, (5, 0, 0)) is None  # the other input has said nothing yet
    assert frontier.advance(1, (3, 0, 0)) == (3, 0, 0)
    assert frontier.advance(1, (9, 0, 0)) == (5, 0, 0)


def test_progress_never_goes_back() -> None:
    frontier = Frontier(1)
    assert frontier.advance(0, (5, 0, 0)) == (5, 0, 0)
    assert frontier.advance(0, (4, 0, 0)) is None
    assert frontier.current == (5, 0, 0)


def test_the_end_passes_every_timestamp() -> None:
    frontier = Frontier(2)
    frontier.advance(0, END)
    assert frontier.advance(1, END) == END
    assert START < key(Hlc(0, 0)) < key(Hlc(2**40, 999_999_999, 2**16)) < END


def test_stamps_of_one_source_time_are_ordered_by_their_counter() -> None:
    clock = HlcClock("source", physical=None)
    first, second = clock.stamp(1_000_000_000), clock.stamp(1_000_000_000)
    assert key(first) < key(second)
    assert (first.secs, second.secs) == (1, 1)
