"""PUBACKs go out in arrival order, only for finished messages, and never for another connection's packet ids."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wasmflow.connectors.ack_order import AckOrder


def test_a_message_finished_in_order_is_due_at_once() -> None:
    order = AckOrder()
    first = order.track(epoch=1, mid=10)
    assert order.finish(first) == [10]
    assert order.waiting == 0


def test_a_message_finished_early_waits_for_the_ones_before_it() -> None:
    order = AckOrder()
    first, second, third = (order.track(1, mid) for mid in (1, 2, 3))
    assert order.finish(third) == []
    assert order.finish(second) == []
    assert order.waiting == 3
    assert order.finish(first) == [1, 2, 3]
    assert order.waiting == 0


def test_finishing_twice_acknowledges_once() -> None:
    order = AckOrder()
    ticket = order.track(1, 7)
    assert order.finish(ticket) == [7]
    assert order.finish(ticket) == []


def test_a_new_connection_forgets_what_the_old_one_delivered() -> None:
    order = AckOrder()
    old = order.track(1, 5)
    new = order.track(2, 5)  # the broker redelivers with the same packet id
    assert order.finish(old) == []
    assert order.finish(new) == [5]


def test_an_unfinished_old_message_does_not_hold_back_the_new_connection() -> None:
    order = AckOrder()
    order.track(1, 1)
    ticket = order.track(2, 9)
    assert order.finish(ticket) == [9]


@given(st.permutations(list(range(1, 30))))
def test_any_finishing_order_acknowledges_every_message_once_in_arrival_order(finish_order: list[int]) -> None:
    order = AckOrder()
    tickets = {mid: order.track(1, mid) for mid in range(1, 30)}
    acknowledged: list[int] = []
    for mid in finish_order:
        due = order.finish(tickets[mid])
        acknowledged.extend(due)
        # Nothing is acknowledged while an earlier message is unfinished.
        assert acknowledged == list(range(1, len(acknowledged) + 1))
    assert acknowledged == list(range(1, 30))
