"""Guest output (the ``logging`` import, stdout, stderr) into Python logging, with the node name, rate-limited.

An operator runs once per message, so one careless ``print`` is one log line per message: a token bucket per node
keeps a chatty or hostile operator from flooding the worker's log, and the dropped records are counted and
summarised once the bucket refills.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

#: The logger guest records go to; the node name is in every record (``extra={"node": ...}`` and the text).
GUEST_LOGGER = logging.getLogger("wasmflow.guest")

#: WIT ``logging.level`` case names -> Python levels (``trace`` has no Python level: it goes out as DEBUG).
LEVELS: dict[str, int] = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}

#: Longest record kept; the rest is cut with a marker (a guest can write megabytes in one call).
MAX_RECORD_CHARS = 4096

#: Guest output kept per call for classifying failures.
_RECENT_CHARS = 16384


class GuestLog:
    """The log sink of one node: ``rate`` records per second on average, bursts up to ``burst``."""

    def __init__(
        self,
        node: str,
        *,
        rate: float = 20.0,
        burst: float = 100.0,
        on_dropped: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = GUEST_LOGGER,
    ) -> None:
        self.node = node
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._clock = clock
        self._last = clock()
        self._dropped = 0
        self._on_dropped = on_dropped
        self._logger = logger
        self._partial: dict[str, str] = {}
        self._recent: list[str] = []
        self._recent_chars = 0

    def begin_call(self) -> None:
        """Forget the output of earlier calls (see :meth:`recent`)."""
        if self._recent:
            self._recent.clear()
            self._recent_chars = 0

    def recent(self) -> str:
        """What the guest wrote since :meth:`begin_call`, rate limit or not (the tail, at most ~16 KiB): the host
        reads it to tell an out-of-memory trap from another trap."""
        partial = "".join(self._partial.values())
        return "\n".join(self._recent) + ("\n" + partial if partial else "")

    def record(self, level: int, text: str) -> None:
        """Emit one record unless the node is over its rate; a summary follows a run of drops."""
        self._recent.append(text[-_RECENT_CHARS:])
        self._recent_chars += min(len(text), _RECENT_CHARS)
        while self._recent_chars > _RECENT_CHARS and len(self._recent) > 1:
            self._recent_chars -= len(self._recent.pop(0))
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1.0:
            self._dropped += 1
            if self._on_dropped is not None:
                self._on_dropped(1)
            return
        self._tokens -= 1.0
        if self._dropped:
            self._logger.warning(
                "[%s] %d guest log records dropped (rate limit)", self.node, self._dropped, extra={"node": self.node}
            )
            self._dropped = 0
        if len(text) > MAX_RECORD_CHARS:
            text = text[:MAX_RECORD_CHARS] + f"... [{len(text) - MAX_RECORD_CHARS} more characters]"
        self._logger.log(level, "[%s] %s", self.node, text, extra={"node": self.node})

    def log(self, level_name: str, text: str) -> None:
        """The ``wasmflow:operator/logging.log`` import."""
        self.record(LEVELS.get(level_name, logging.INFO), text)

    def stream(self, stream: str, level: int) -> Callable[[bytes], None]:
        """A WASI stdout/stderr sink: complete lines become records; a partial line waits for its end."""

        def write(chunk: bytes) -> None:
            if sys.is_finalizing():
                return  # a store freed during interpreter exit may still flush; Python cannot log any more
            buffered = self._partial.get(stream, "") + chunk.decode("utf-8", errors="replace")
            *lines, rest = buffered.split("\n")
            if len(rest) > MAX_RECORD_CHARS:
                lines.append(rest)
                rest = ""
            self._partial[stream] = rest
            for line in lines:
                if line:
                    self.record(level, f"{stream}: {line}")

        return write

    def flush(self) -> None:
        """Emit what is left of unterminated stdout/stderr lines (an instance is going away)."""
        for stream, rest in list(self._partial.items()):
            if rest:
                self.record(logging.INFO if stream == "stdout" else logging.WARNING, f"{stream}: {rest}")
        self._partial.clear()
