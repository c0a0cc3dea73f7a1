"""The AIO state store bounded (issue 16, case 9) and scoped (case 12): what an operator, or a record from the
broker, can make it hold. The in-process store is the one ``wasmflow run`` and a single worker use, and the local
view of the shared one."""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from tests.fault_report import Report
from wasmflow.api.dataflow_graph import StateStoreLimits, state_topic_prefix
from wasmflow.engine.worlds.aio.model import Hlc
from wasmflow.engine.worlds.aio.state import FencingRefused, MemoryStateStore, SetCondition, StateLimitExceeded
from wasmflow.errors import ConfigError

ALWAYS = SetCondition.UNCONDITIONAL


def test_expired_keys_are_purged_without_being_read(report: Report) -> None:
    """10,000 keys of 2 KiB that expire after a second, never read again: before, they stayed until each was read
    (forever, for keys written once), ~20 MiB here."""
    now = [0.0]
    store = MemoryStateStore(monotonic=lambda: now[0])
    gc.collect()
    tracemalloc.start()
    try:
        for i in range(10_000):
            store.set(f"session/{i}".encode(), bytes(2048), None, ALWAYS, 1.0)
        written = tracemalloc.get_traced_memory()[0]
        now[0] = 2.0
        store.set(b"other", b"1", None, ALWAYS, None)  # any operation purges; none of the expired keys is read
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    report(keys=10_000, written_mib=written / 2**20, held_after_expiry_mib=held / 2**20)
    assert written > 20 * 2**20
    assert held < 2 * 2**20


def test_keys_rewritten_with_an_expiry_do_not_pile_up_in_the_expiry_index() -> None:
    now = [0.0]
    store = MemoryStateStore(monotonic=lambda: now[0])
    for _ in range(50_000):
        store.set(b"heartbeat", b"1", None, ALWAYS, 3600.0)
    assert len(store._expiry) <= 2 * 1 + 1024 + 1
    assert store.usage().keys == 1


def test_the_key_count_bound_refuses_with_a_clear_error(report: Report) -> None:
    store = MemoryStateStore()  # the defaults: 10,000 keys
    for i in range(10_000):
        store.set(f"k{i}".encode(), b"1", None, ALWAYS, None)
    with pytest.raises(StateLimitExceeded, match=r"holds 10000 keys, its limit \(maxKeys\)"):
        store.set(b"one-more", b"1", None, ALWAYS, None)
    assert store.get(b"one-more") == (None, None)
    assert store.set(b"k1", b"2", None, ALWAYS, None)[0]  # an existing key still updates
    assert store.delete(b"k2", None)[0] == 1
    assert store.set(b"one-more", b"1", None, ALWAYS, None)[0]  # a delete makes room
    report(max_keys=10_000, refused_past_it=1)


def test_the_value_key_and_total_size_bounds_refuse_with_a_clear_error() -> None:
    store = MemoryStateStore()
    with pytest.raises(StateLimitExceeded, match=r"value of 65537 bytes is over the limit of 65536 \(maxValueBytes\)"):
        store.set(b"k", bytes(65_537), None, ALWAYS, None)
    with pytest.raises(StateLimitExceeded, match=r"key of 1025 bytes is over the limit of 1024 \(maxKeyBytes\)"):
        store.set(bytes(1025), b"v", None, ALWAYS, None)
    assert store.usage().keys == 0
    small = MemoryStateStore(limits=StateStoreLimits(max_total_bytes=4096, max_value_bytes=3000))
    small.set(b"a", bytes(3000), None, ALWAYS, None)
    with pytest.raises(StateLimitExceeded, match=r"maxTotalBytes"):
        small.set(b"b", bytes(2000), None, ALWAYS, None)
    assert small.set(b"a", bytes(10), None, ALWAYS, None)[0]  # shrinking is always allowed
    assert small.set(b"b", bytes(2000), None, ALWAYS, None)[0]
    assert small.usage().bytes == 1 + 10 + 1 + 2000


def test_records_from_elsewhere_past_the_bounds_or_rolling_a_fencing_token_back_are_refused() -> None:
    store = MemoryStateStore(limits=StateStoreLimits(max_keys=1))
    store.apply(b"lock", b"a", Hlc(5, 0, 0, "r1"), Hlc(10, 0), None)
    with pytest.raises(FencingRefused):
        store.apply(b"lock", b"b", Hlc(6, 0, 0, "x"), Hlc(9, 0), None)
    with pytest.raises(FencingRefused):
        store.apply(b"lock", None, Hlc(6, 0, 0, "x"), None, None)  # a delete without the token
    with pytest.raises(StateLimitExceeded):
        store.apply(b"second", b"b", Hlc(6, 0, 0, "x"), None, None)
    assert store.get(b"lock") == (b"a", Hlc(5, 0, 0, "r1"))
    store.apply(b"lock", b"c", Hlc(4, 0, 0, "r2"), Hlc(11, 0), None)  # the broker's order, not the stamp, decides
    assert store.get(b"lock")[0] == b"c"


def test_every_store_is_scoped_by_namespace_whatever_prefix_it_names() -> None:
    assert state_topic_prefix("team-a", "counts", None) == "wasmflow/state/team-a/counts"
    shared_a = state_topic_prefix("team-a", "counts", "plant/line-1")
    shared_b = state_topic_prefix("team-b", "counts", "plant/line-1")
    assert shared_a == "wasmflow/state/team-a/~shared/plant/line-1"
    assert not shared_b.startswith("wasmflow/state/team-a/")
    # A prefix naming another namespace's tree stays inside this namespace's.
    assert state_topic_prefix("team-b", "x", "wasmflow/state/team-a/counts").startswith("wasmflow/state/team-b/")
    assert state_topic_prefix("team-a", "x", "/counts/") == "wasmflow/state/team-a/~shared/counts"
    for namespace, dataflow, prefix in (("a/b", "x", None), ("a", "+", None), ("a", "x", "p/#"), ("a", "x", "/")):
        with pytest.raises(ConfigError):
            state_topic_prefix(namespace, dataflow, prefix)
