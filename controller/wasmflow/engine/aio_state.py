"""The key-value store AIO operators reach through the ``state-store`` import: one per Dataflow.

``MemoryStateStore`` serves ``wasmflow run`` and a single worker: every operator instance of the graph sees the same
keys, in process. Semantics follow AIO's state store: every write gets a new version (an HLC stamp), a write or
delete that carries a fencing token is refused when the key was last written with a newer token, ``set`` honours
``only-if-does-not-exist`` / ``only-if-equal-or-does-not-exist`` and an expiry, ``vdel`` deletes only when the value
matches. It is also the local view of ``connectors.mqtt_state.MqttStateStore``, which shares keys between a worker's
replicas: that store only adds publishing its writes and ``apply``-ing the writes other replicas publish.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from wasmflow.engine.aio_model import Hlc, HlcClock


class SetCondition(enum.StrEnum):
    ONLY_IF_DOES_NOT_EXIST = "only-if-does-not-exist"
    ONLY_IF_EQUAL_OR_DOES_NOT_EXIST = "only-if-equal-or-does-not-exist"
    UNCONDITIONAL = "unconditional"


class FencingRefused(Exception):  # noqa: N818 - a refusal the guest sees as a request error
    """A write carried a fencing token older than the key's."""


@dataclass(frozen=True)
class Entry:
    """One key's value; ``version`` is None only for a value written by something other than a wasmflow store."""

    value: bytes
    version: Hlc | None
    fencing: Hlc | None
    expires_at: float | None


class StateStore(Protocol):
    def get(self, key: bytes) -> tuple[bytes | None, Hlc | None]: ...
    def set(
        self, key: bytes, value: bytes, fencing: Hlc | None, condition: SetCondition, expires_seconds: float | None
    ) -> tuple[bool, Hlc | None]: ...
    def delete(self, key: bytes, fencing: Hlc | None, value: bytes | None = None) -> tuple[int, Hlc | None]: ...


class MemoryStateStore:
    """In-process state store; thread-safe (operators of one graph share it)."""

    def __init__(self, node_id: str = "wasmflow", monotonic: Callable[[], float] = time.monotonic) -> None:
        self._clock = HlcClock(node_id)
        self._monotonic = monotonic
        self._entries: dict[bytes, Entry] = {}
        self._lock = threading.Lock()

    def _live(self, key: bytes) -> Entry | None:
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at is not None and entry.expires_at <= self._monotonic():
            del self._entries[key]
            return None
        return entry

    @staticmethod
    def _fenced(entry: Entry | None, fencing: Hlc | None) -> None:
        if entry is not None and entry.fencing is not None and (fencing is None or fencing < entry.fencing):
            raise FencingRefused("the key is fenced by a newer token")

    def get(self, key: bytes) -> tuple[bytes | None, Hlc | None]:
        with self._lock:
            entry = self._live(key)
            return (None, None) if entry is None else (entry.value, entry.version)

    def set(
        self, key: bytes, value: bytes, fencing: Hlc | None, condition: SetCondition, expires_seconds: float | None
    ) -> tuple[bool, Hlc | None]:
        written, entry = self.put(key, value, fencing, condition, expires_seconds)
        return written, entry.version

    def put(
        self, key: bytes, value: bytes, fencing: Hlc | None, condition: SetCondition, expires_seconds: float | None
    ) -> tuple[bool, Entry]:
        """``set`` that returns the entry now under ``key`` (the one it kept when refused): a replicated store publishes
        exactly what was written, fencing token included, without a second, racy read."""
        with self._lock:
            entry = self._live(key)
            self._fenced(entry, fencing)
            if entry is not None and (
                condition is SetCondition.ONLY_IF_DOES_NOT_EXIST
                or (condition is SetCondition.ONLY_IF_EQUAL_OR_DOES_NOT_EXIST and entry.value != value)
            ):
                return False, entry
            expires_at = None if expires_seconds is None else self._monotonic() + expires_seconds
            written = Entry(value, self._clock.stamp(), fencing or (entry.fencing if entry else None), expires_at)
            self._entries[key] = written
            return True, written

    def delete(self, key: bytes, fencing: Hlc | None, value: bytes | None = None) -> tuple[int, Hlc | None]:
        """1 when a key was deleted, 0 when there was none, -1 when ``value`` (vdel) did not match."""
        with self._lock:
            entry = self._live(key)
            if entry is None:
                return 0, None
            self._fenced(entry, fencing)
            if value is not None and entry.value != value:
                return -1, entry.version
            del self._entries[key]
            return 1, self._clock.stamp()

    def apply(
        self, key: bytes, value: bytes | None, version: Hlc | None, fencing: Hlc | None, expires_seconds: float | None
    ) -> None:
        """Take a write made elsewhere as it is, without conditions or fencing (its writer checked them); ``None``
        deletes. The clock observes its version so that later local writes are stamped after it."""
        with self._lock:
            if version is not None:
                self._clock.observe(version)
            if value is None:
                self._entries.pop(key, None)
                return
            expires_at = None if expires_seconds is None else self._monotonic() + expires_seconds
            self._entries[key] = Entry(value, version, fencing, expires_at)
