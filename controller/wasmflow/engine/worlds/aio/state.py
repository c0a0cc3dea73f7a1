"""The key-value store AIO operators reach through the ``state-store`` import: one per Dataflow.

``MemoryStateStore`` serves ``wasmflow run`` and a single worker: every operator instance of the graph sees the same
keys, in process. Semantics follow AIO's state store: every write gets a new version (an HLC stamp), a write or
delete that carries a fencing token is refused when the key was last written with a newer token, ``set`` honours
``only-if-does-not-exist`` / ``only-if-equal-or-does-not-exist`` and an expiry, ``vdel`` deletes only when the value
matches. It is also the local view of ``connectors.mqtt_state.MqttStateStore``, which shares keys between a worker's
replicas: that store checks a request against this view (``plan_set``/``plan_delete``), publishes it, and the write
enters the view only when the broker delivers it back (``apply``), in the broker's order.

Bounds (``StateStoreLimits``): keys held, key and value size, total bytes. A write past them is refused with an
error naming the limit; a record from the broker past them is refused too, so what other clients publish cannot
grow the store either. Expired keys are purged at every operation (reads of any key, writes, records applied), from
a heap ordered by expiry, so they neither linger until read nor count against the bounds; an idle store holds at
most its bounds, which is why no background sweeper (a task to supervise) is needed.
"""

from __future__ import annotations

import enum
import heapq
import threading
import time
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Protocol

from wasmflow.api.dataflow_graph import StateStoreLimits
from wasmflow.engine.worlds.aio.model import Hlc, HlcClock
from wasmflow.errors import WasmflowError


class SetCondition(enum.StrEnum):
    ONLY_IF_DOES_NOT_EXIST = "only-if-does-not-exist"
    ONLY_IF_EQUAL_OR_DOES_NOT_EXIST = "only-if-equal-or-does-not-exist"
    UNCONDITIONAL = "unconditional"


class StateStoreError(WasmflowError):
    """A state-store request failed; the operator's call returns AIO's ``state-store-error``, it never traps.

    Subclasses say which case: ``StateRefused`` (``request-error`` with the message) and ``StateStoreTimeout``
    (``timeout``: the outcome is unknown).
    """


class StateRefused(StateStoreError):  # noqa: N818 - a refusal the guest sees as a request error
    """The request was refused and changed nothing: a condition of the store, a limit, or the broker said no."""


class FencingRefused(StateRefused):
    """A write carried a fencing token older than the key's."""


class StateLimitExceeded(StateRefused):
    """A write would pass one of the store's bounds (``StateStoreLimits``); the message names which."""


class StateStoreTimeout(StateStoreError):  # noqa: N818 - AIO names this case "timeout"
    """No answer in time from where the store is kept: the write may still be applied (and then reach every
    replica, this one included), as with any remote store."""


@dataclass(frozen=True)
class Entry:
    """One key's value with its version (an HLC stamp), fencing token and monotonic expiry time."""

    value: bytes
    version: Hlc | None
    fencing: Hlc | None
    expires_at: float | None


@dataclass(frozen=True)
class StateUsage:
    """What a store holds now: keys, and bytes of keys and values."""

    keys: int
    bytes: int


class StateStore(Protocol):
    def get(self, key: bytes) -> tuple[bytes | None, Hlc | None]: ...
    def set(
        self, key: bytes, value: bytes, fencing: Hlc | None, condition: SetCondition, expires_seconds: float | None
    ) -> tuple[bool, Hlc | None]: ...
    def delete(self, key: bytes, fencing: Hlc | None, value: bytes | None = None) -> tuple[int, Hlc | None]: ...


class MemoryStateStore:
    """In-process state store; thread-safe (operators of one graph share it, the broker's thread applies to it)."""

    def __init__(
        self,
        node_id: str = "wasmflow",
        monotonic: Callable[[], float] = time.monotonic,
        *,
        limits: StateStoreLimits | None = None,
    ) -> None:
        self.limits = limits or StateStoreLimits()
        self._clock = HlcClock(node_id)
        self._monotonic = monotonic
        self._entries: dict[bytes, Entry] = {}
        self._bytes = 0
        self._expiry: list[tuple[float, bytes]] = []  # a heap; stale items are skipped when popped
        self._lock = threading.Lock()

    # -- bookkeeping (lock held) -------------------------------------------------------------------------------

    def _purge(self) -> None:
        """Drop every key whose expiry has passed: O(1) when none has, O(log n) per key purged."""
        now = self._monotonic()
        while self._expiry and self._expiry[0][0] <= now:
            _at, key = heapq.heappop(self._expiry)
            entry = self._entries.get(key)
            if entry is not None and entry.expires_at is not None and entry.expires_at <= now:
                self._remove(key)
        if len(self._expiry) > 2 * len(self._entries) + 1024:  # keys rewritten with an expiry leave stale items
            self._expiry = [(e.expires_at, k) for k, e in self._entries.items() if e.expires_at is not None]
            heapq.heapify(self._expiry)

    def _store(self, key: bytes, entry: Entry) -> None:
        old = self._entries.get(key)
        self._bytes += len(entry.value) - (len(old.value) if old is not None else -len(key))
        self._entries[key] = entry
        if entry.expires_at is not None:
            heapq.heappush(self._expiry, (entry.expires_at, key))

    def _remove(self, key: bytes) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(key) + len(old.value)

    def _within_limits(self, key: bytes, value: bytes) -> None:
        """StateLimitExceeded naming the bound that writing ``value`` under ``key`` would pass."""
        limits, old = self.limits, self._entries.get(key)
        if len(key) > limits.max_key_bytes:
            raise StateLimitExceeded(
                f"state store: a key of {len(key)} bytes is over the limit of {limits.max_key_bytes} (maxKeyBytes)"
            )
        if len(value) > limits.max_value_bytes:
            raise StateLimitExceeded(
                f"state store: a value of {len(value)} bytes is over the limit of {limits.max_value_bytes} "
                "(maxValueBytes)"
            )
        if old is None and len(self._entries) >= limits.max_keys:
            raise StateLimitExceeded(
                f"state store: it holds {len(self._entries)} keys, its limit (maxKeys); delete keys or let them expire"
            )
        grown = self._bytes + len(value) - (len(old.value) if old is not None else -len(key))
        if grown > limits.max_total_bytes:
            raise StateLimitExceeded(
                f"state store: this write would hold {grown} bytes, over the limit of {limits.max_total_bytes} "
                "(maxTotalBytes)"
            )

    def _live(self, key: bytes) -> Entry | None:
        self._purge()
        return self._entries.get(key)

    @staticmethod
    def _fenced(entry: Entry | None, fencing: Hlc | None) -> None:
        if entry is not None and entry.fencing is not None and (fencing is None or fencing < entry.fencing):
            raise FencingRefused("the key is fenced by a newer token")

    # -- the StateStore protocol -------------------------------------------------------------------------------

    def get(self, key: bytes) -> tuple[bytes | None, Hlc | None]:
        with self._lock:
            entry = self._live(key)
            return (None, None) if entry is None else (entry.value, entry.version)

    def set(
        self, key: bytes, value: bytes, fencing: Hlc | None, condition: SetCondition, expires_seconds: float | None
    ) -> tuple[bool, Hlc | None]:
        with self._lock:
            written, entry = self._plan_set(key, value, fencing, condition, expires_seconds)
            if written:
                self._store(key, entry)
            return written, entry.version

    def delete(self, key: bytes, fencing: Hlc | None, value: bytes | None = None) -> tuple[int, Hlc | None]:
        """1 when a key was deleted, 0 when there was none, -1 when ``value`` (vdel) did not match."""
        with self._lock:
            deleted, version = self._plan_delete(key, fencing, value)
            if deleted == 1:
                self._remove(key)
            return deleted, version

    # -- for a replicated store: check and stamp now, write when the broker delivers -----------------------------

    def plan_set(
        self, key: bytes, value: bytes, fencing: Hlc | None, condition: SetCondition, expires_seconds: float | None
    ) -> tuple[bool, Entry]:
        """What ``set`` would write (its entry, newly stamped) without writing it; ``(False, entry kept)`` when a
        condition refuses. FencingRefused and StateLimitExceeded as ``set``."""
        with self._lock:
            return self._plan_set(key, value, fencing, condition, expires_seconds)

    def plan_delete(self, key: bytes, fencing: Hlc | None, value: bytes | None = None) -> tuple[int, Hlc | None]:
        """What ``delete`` would answer (with a new stamp when it would delete) without deleting."""
        with self._lock:
            return self._plan_delete(key, fencing, value)

    def _plan_set(
        self, key: bytes, value: bytes, fencing: Hlc | None, condition: SetCondition, expires_seconds: float | None
    ) -> tuple[bool, Entry]:
        entry = self._live(key)
        self._fenced(entry, fencing)
        if entry is not None and (
            condition is SetCondition.ONLY_IF_DOES_NOT_EXIST
            or (condition is SetCondition.ONLY_IF_EQUAL_OR_DOES_NOT_EXIST and entry.value != value)
        ):
            return False, entry
        self._within_limits(key, value)
        expires_at = None if expires_seconds is None else self._monotonic() + expires_seconds
        return True, Entry(value, self._clock.stamp(), fencing or (entry.fencing if entry else None), expires_at)

    def _plan_delete(self, key: bytes, fencing: Hlc | None, value: bytes | None) -> tuple[int, Hlc | None]:
        entry = self._live(key)
        if entry is None:
            return 0, None
        self._fenced(entry, fencing)
        if value is not None and entry.value != value:
            return -1, entry.version
        return 1, self._clock.stamp()

    def apply(
        self, key: bytes, value: bytes | None, version: Hlc | None, fencing: Hlc | None, expires_seconds: float | None
    ) -> None:
        """Take a write made elsewhere (``None`` deletes), in the order the broker delivers writes.

        Versions are taken as they come, not compared: the broker's order decides the last write, everywhere and
        for replicas started later (which see only the retained record), so a replica refusing an older-stamped but
        later-delivered write would diverge from both. Fencing tokens are compared: a record that would move a key's
        token backwards (or drop it) cannot come from a writer that honoured it, so it is refused (FencingRefused),
        as is a record past the bounds (StateLimitExceeded). The clock observes the version so that later local
        writes are stamped after it.
        """
        with self._lock:
            entry = self._live(key)
            self._fenced(entry, fencing)
            if version is not None:
                self._clock.observe(version)
            if value is None:
                self._remove(key)
                return
            self._within_limits(key, value)
            expires_at = None if expires_seconds is None else self._monotonic() + expires_seconds
            self._store(key, Entry(value, version, fencing, expires_at))

    def keep_only(self, keys: Container[bytes]) -> None:
        """Drop every key not in ``keys``: after a replica reconnects, what the broker no longer retains is gone."""
        with self._lock:
            for key in [k for k in self._entries if k not in keys]:
                self._remove(key)

    def usage(self) -> StateUsage:
        """Keys and bytes held now (expired keys purged first)."""
        with self._lock:
            self._purge()
            return StateUsage(len(self._entries), self._bytes)
