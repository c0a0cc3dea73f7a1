"""Hybrid-logical-clock rules (engine/worlds/aio/model.py)."""

from __future__ import annotations

from wasmflow.engine.worlds.aio.model import Hlc, HlcClock


def test_a_clock_takes_event_time_and_counts_when_it_does_not_advance() -> None:
    clock = HlcClock("src", physical=None)
    assert clock.stamp(5_000_000_000) == Hlc(5, 0, 0, "src")
    assert clock.stamp(5_000_000_000) == Hlc(5, 0, 1, "src")
    assert clock.stamp(4_000_000_000) == Hlc(5, 0, 2, "src")  # an older event time never moves the clock back
    assert clock.stamp(6_500_000_000) == Hlc(6, 500_000_000, 0, "src")


def test_a_clock_with_a_physical_clock_never_lags_it() -> None:
    clock = HlcClock("n", physical=lambda: 9_000_000_000)
    assert clock.stamp(1_000_000_000) == Hlc(9, 0, 0, "n")
    assert clock.observe(Hlc(20, 0, 3, "other")) == Hlc(20, 0, 4, "n")
