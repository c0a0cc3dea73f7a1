"""The bounded hand-over from paho's thread to the pipeline: order kept, producer held while full, close ends both,
finish ends the producer and lets the consumer empty it."""

from __future__ import annotations

import asyncio
import threading

import pytest

from wasmflow.connectors.handoff import Handoff


def test_items_arrive_in_order_from_another_thread() -> None:
    async def scenario() -> list[int]:
        handoff: Handoff[int] = Handoff(4)
        handoff.bind(asyncio.get_running_loop())
        producer = threading.Thread(target=lambda: [handoff.put(i) for i in range(100)])
        producer.start()
        got = [await asyncio.wait_for(handoff.get(), 5) for _ in range(100)]
        await asyncio.to_thread(producer.join)
        return [g for g in got if g is not None]

    assert asyncio.run(scenario()) == list(range(100))


def test_a_full_handoff_holds_the_producer_until_the_consumer_takes_one() -> None:
    async def scenario() -> tuple[bool, bool, list[int | None]]:
        handoff: Handoff[int] = Handoff(2)
        handoff.bind(asyncio.get_running_loop())
        handoff.put(1)
        handoff.put(2)
        third = threading.Thread(target=handoff.put, args=(3,))
        third.start()
        await asyncio.to_thread(third.join, 0.2)
        held = third.is_alive()
        first = await handoff.get()
        await asyncio.to_thread(third.join, 5)
        released = not third.is_alive()
        return held, released, [first, await handoff.get(), await handoff.get()]

    assert asyncio.run(scenario()) == (True, True, [1, 2, 3])


def test_close_releases_a_held_producer_and_ends_the_consumer() -> None:
    async def scenario() -> tuple[list[bool], int | None]:
        handoff: Handoff[int] = Handoff(1)
        handoff.bind(asyncio.get_running_loop())
        handoff.put(1)
        accepted: list[bool] = []
        producer = threading.Thread(target=lambda: accepted.append(handoff.put(2)))
        producer.start()
        handoff.close()
        await asyncio.to_thread(producer.join, 5)
        return accepted, await asyncio.wait_for(handoff.get(), 5)

    assert asyncio.run(scenario()) == ([False], None)


def test_a_waiting_consumer_is_woken_by_close() -> None:
    async def scenario() -> int | None:
        handoff: Handoff[int] = Handoff(1)
        handoff.bind(asyncio.get_running_loop())
        waiting = asyncio.create_task(handoff.get())
        await asyncio.sleep(0)  # let it wait
        threading.Thread(target=handoff.close).start()
        return await asyncio.wait_for(waiting, 5)

    assert asyncio.run(scenario()) is None


def test_a_handoff_needs_room() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Handoff[int](0)


def test_finish_refuses_the_producer_but_hands_over_what_is_inside_first() -> None:
    async def scenario() -> tuple[list[int | None], bool]:
        handoff: Handoff[int] = Handoff(2)
        handoff.bind(asyncio.get_running_loop())
        handoff.put(1)
        handoff.put(2)
        refused: list[bool] = []
        held = threading.Thread(target=lambda: refused.append(handoff.put(3)))
        held.start()
        await asyncio.to_thread(held.join, 0.2)
        handoff.finish()
        await asyncio.to_thread(held.join, 5)
        return [await handoff.get(), await handoff.get(), await handoff.get()], refused == [False]

    assert asyncio.run(scenario()) == ([1, 2, None], True)
