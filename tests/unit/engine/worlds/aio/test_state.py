"""The in-process state store AIO operators reach (engine/worlds/aio/state.py)."""

from __future__ import annotations

import pytest

from wasmflow.engine.worlds.aio.model import Hlc
from wasmflow.engine.worlds.aio.state import FencingRefused, MemoryStateStore, SetCondition


def test_the_state_store_versions_writes_and_honours_conditions() -> None:
    store = MemoryStateStore()
    assert store.get(b"k") == (None, None)
    done, first = store.set(b"k", b"1", None, SetCondition.UNCONDITIONAL, None)
    assert done and first is not None
    assert store.set(b"k", b"2", None, SetCondition.ONLY_IF_DOES_NOT_EXIST, None)[0] is False
    assert store.set(b"k", b"1", None, SetCondition.ONLY_IF_EQUAL_OR_DOES_NOT_EXIST, None)[0] is True
    value, version = store.get(b"k")
    assert value == b"1" and version is not None and version > first
    assert store.delete(b"k", None, b"other")[0] == -1
    assert store.delete(b"k", None, b"1")[0] == 1
    assert store.delete(b"k", None)[0] == 0


def test_a_write_with_an_older_fencing_token_is_refused() -> None:
    store = MemoryStateStore()
    store.set(b"k", b"1", Hlc(10, 0), SetCondition.UNCONDITIONAL, None)
    with pytest.raises(FencingRefused):
        store.set(b"k", b"2", Hlc(9, 0), SetCondition.UNCONDITIONAL, None)
    assert store.set(b"k", b"3", Hlc(11, 0), SetCondition.UNCONDITIONAL, None)[0]


def test_an_expired_key_is_gone() -> None:
    now = [100.0]
    store = MemoryStateStore(monotonic=lambda: now[0])
    store.set(b"k", b"v", None, SetCondition.UNCONDITIONAL, 5.0)
    now[0] = 106.0
    assert store.get(b"k") == (None, None)
