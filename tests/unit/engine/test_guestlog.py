"""Guest output reaches the log with the node name, and a chatty guest cannot flood it."""

from __future__ import annotations

import logging

import pytest

from wasmflow.engine.guestlog import MAX_RECORD_CHARS, GuestLog


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "wasmflow.guest"]


def test_records_carry_the_node_name_and_level(caplog: pytest.LogCaptureFixture, clock: Clock) -> None:
    caplog.set_level(logging.DEBUG, "wasmflow.guest")
    GuestLog("to-celsius", clock=clock).log("warn", "odd reading")
    [record] = [r for r in caplog.records if r.name == "wasmflow.guest"]
    assert record.getMessage() == "[to-celsius] odd reading"
    assert record.levelno == logging.WARNING
    assert record.node == "to-celsius"  # type: ignore[attr-defined]


def test_a_burst_beyond_the_budget_is_dropped_counted_and_summarised(
    caplog: pytest.LogCaptureFixture, clock: Clock
) -> None:
    caplog.set_level(logging.INFO, "wasmflow.guest")
    dropped: list[int] = []
    log = GuestLog("n", rate=1.0, burst=3.0, clock=clock, on_dropped=dropped.append)
    for i in range(10):
        log.log("info", f"line {i}")
    assert messages(caplog) == ["[n] line 0", "[n] line 1", "[n] line 2"]
    assert sum(dropped) == 7
    clock.now = 1.0
    log.log("info", "later")
    assert messages(caplog)[-2:] == ["[n] 7 guest log records dropped (rate limit)", "[n] later"]


def test_stdout_becomes_one_record_per_line_and_keeps_partial_lines(
    caplog: pytest.LogCaptureFixture, clock: Clock
) -> None:
    caplog.set_level(logging.INFO, "wasmflow.guest")
    log = GuestLog("n", clock=clock)
    write = log.stream("stdout", logging.INFO)
    write(b"first\nsec")
    write(b"ond\n\nthird")
    assert messages(caplog) == ["[n] stdout: first", "[n] stdout: second"]
    log.flush()
    assert messages(caplog)[-1] == "[n] stdout: third"


def test_undecodable_output_and_huge_records_are_made_safe(caplog: pytest.LogCaptureFixture, clock: Clock) -> None:
    caplog.set_level(logging.INFO, "wasmflow.guest")
    log = GuestLog("n", clock=clock)
    log.stream("stderr", logging.WARNING)(b"\xff\xfe bad\n")
    log.log("info", "x" * (MAX_RECORD_CHARS + 10))
    first, second = messages(caplog)
    assert first == "[n] stderr: \ufffd\ufffd bad"
    assert second.endswith("... [10 more characters]")


def test_recent_output_is_kept_per_call_even_when_rate_limited(clock: Clock) -> None:
    log = GuestLog("n", rate=0.0, burst=0.0, clock=clock)
    log.stream("stderr", logging.WARNING)(b"MemoryError\n")
    assert "MemoryError" in log.recent()
    log.begin_call()
    assert log.recent() == ""
