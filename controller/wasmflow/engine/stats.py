"""Per-node counters and call latencies of a running graph, bounded however long it runs.

A worker runs for weeks: one float per message kept forever is a leak (about 32 bytes a message, 2.7 GiB a day at
1,000 messages a second). ``Latencies`` keeps a fixed-size uniform sample instead (reservoir sampling, Vitter's
algorithm R): exact while a run has at most ``capacity`` calls (every ``wasmflow run`` on a test file), and a
uniform sample of all of them after that, which is what the summary's p50/p99 need. The worker's latency
histograms (engine/metrics.py) are bounded already; this is for the summary and ``NodeStats`` readers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

#: Latencies kept per node: 8192 floats, about 64 KiB in a list; a p99 from that many is within a few per cent.
LATENCY_SAMPLE = 8192


class Latencies:
    """A bounded uniform sample of call durations (seconds), with the exact count and total."""

    __slots__ = ("_random", "capacity", "count", "samples", "total")

    def __init__(self, capacity: int = LATENCY_SAMPLE, *, seed: int = 0) -> None:
        if capacity < 1:
            raise ValueError(f"a latency sample needs room for at least one value, got {capacity}")
        self.capacity = capacity
        self.count = 0
        self.total = 0.0
        self.samples: list[float] = []
        # Seeded: the same run keeps the same sample, so a summary is reproducible.
        self._random = random.Random(seed).random  # noqa: S311 - sampling, not security

    def add(self, seconds: float) -> None:
        """Record one call (the hot path: an append, or one random draw once the sample is full)."""
        self.count += 1
        self.total += seconds
        if len(self.samples) < self.capacity:
            self.samples.append(seconds)
            return
        slot = int(self._random() * self.count)
        if slot < self.capacity:
            self.samples[slot] = seconds

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return self.count > 0

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (0..1) of the sample, nearest rank; ValueError when nothing was recorded."""
        if not self.samples:
            raise ValueError("no latency recorded")
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def median(self) -> float:
        """The median of the sample (the mean of the two middle values for an even count, as ``statistics``)."""
        if not self.samples:
            raise ValueError("no latency recorded")
        ordered = sorted(self.samples)
        middle = len(ordered) // 2
        return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


@dataclass
class NodeStats:
    """What ``wasmflow run`` prints at the end, per node."""

    received: int = 0
    emitted: int = 0
    dropped: int = 0
    dead_lettered: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    latencies: Latencies = field(default_factory=Latencies)
    #: Accumulate windows closed before their count or duration, because a source's in-flight budget was full.
    windows_closed_early: int = 0
