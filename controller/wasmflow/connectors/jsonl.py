"""JSON Lines sources and sinks for local runs (``wasmflow run``): files, stdin and stdout.

One message per line: ``topic``, ``payload`` (UTF-8 text) or ``payloadBase64``, ``properties`` (an object or a
list of pairs), ``contentType``, ``timestampMs``. A bad line is reported with its file and line number and skipped:
the other lines still flow. Sinks write the same shape plus ``sink``, the sink node's name.

Sizes are bounded as at any source (engine/limits.py): a message over ``max_message_size`` is handed on refused,
naming its file and line, and goes to the error policy; a line too long to hold such a message at all (more than
``line_limit``: eight bytes of JSON per byte of message, plus 64 KiB) is not even read into memory whole: it is
reported with its length and skipped like any bad line.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

from wasmflow.engine import limits
from wasmflow.engine.message import Message
from wasmflow.engine.ports import Inbound
from wasmflow.errors import ConfigError

log = logging.getLogger(__name__)

#: JSON characters a line may spend per byte of message (base64 takes 4/3, ``\u00XX`` escapes 6) and beyond.
LINE_FACTOR = 8
LINE_EXTRA = 64 * 2**10
#: What is read at a time of a line that is over its limit (to skip it without holding it).
_SKIP_CHUNK = 2**20


def line_limit(max_message_size: int) -> int:
    """Characters a JSON Lines record may take for messages up to ``max_message_size`` bytes."""
    return LINE_FACTOR * max_message_size + LINE_EXTRA


def parse_line(line: str, where: str) -> Message:
    """One JSON Lines record as a Message; ConfigError names ``where`` (file:line) and the field."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not JSON: {exc.msg} at column {exc.colno}", where=where) from exc
    if not isinstance(record, dict):
        raise ConfigError("expected a JSON object", where=where)
    if "payloadBase64" in record:
        try:
            payload = base64.b64decode(record["payloadBase64"], validate=True)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"payloadBase64 is not base64: {exc}", where=where) from exc
    elif isinstance(record.get("payload"), str):
        payload = record["payload"].encode("utf-8")
    elif "payload" in record:
        payload = json.dumps(record["payload"], separators=(",", ":")).encode()
    else:
        raise ConfigError("needs payload (text or JSON) or payloadBase64", where=where)
    raw_properties = record.get("properties", [])
    if isinstance(raw_properties, dict):
        properties = tuple((str(k), str(v)) for k, v in raw_properties.items())
    elif isinstance(raw_properties, list) and all(isinstance(p, list | tuple) and len(p) == 2 for p in raw_properties):
        properties = tuple((str(k), str(v)) for k, v in raw_properties)
    else:
        raise ConfigError("properties must be an object or a list of [key, value] pairs", where=where)
    timestamp = record.get("timestampMs", int(time.time() * 1000))
    if not isinstance(timestamp, int) or timestamp < 0:
        raise ConfigError("timestampMs must be a non-negative integer", where=where)
    content_type = record.get("contentType")
    return Message(
        payload=payload,
        topic=str(record.get("topic", "")),
        content_type=str(content_type) if content_type is not None else None,
        properties=properties,
        timestamp_ms=timestamp,
    )


def render_line(message: Message, sink: str) -> str:
    record: dict[str, Any] = {"sink": sink, "topic": message.topic}
    try:
        record["payload"] = message.payload.decode("utf-8")
    except UnicodeDecodeError:
        record["payloadBase64"] = base64.b64encode(message.payload).decode()
    if message.content_type is not None:
        record["contentType"] = message.content_type
    if message.properties:
        record["properties"] = [list(p) for p in message.properties]
    record["timestampMs"] = message.timestamp_ms
    return json.dumps(record, ensure_ascii=False)


def _skip_rest(stream: IO[str], read: int) -> int:
    """Read the rest of a line that is over its limit, a chunk at a time; its whole length."""
    while True:
        chunk = stream.readline(_SKIP_CHUNK)
        read += len(chunk)
        if not chunk or chunk.endswith("\n"):
            return read


class JsonLinesSource:
    """Reads a JSON Lines file (``-`` for stdin); bad lines are logged and counted in ``errors``.

    ``max_message_size`` (bytes; None: no limit) bounds each message as ``spec.limits.maxMessageSize`` does.
    """

    def __init__(self, path: str, *, max_message_size: int | None = None) -> None:
        self.path = path
        self.max_message_size = max_message_size
        self.errors: list[ConfigError] = []
        self._stopped = False

    async def messages(self) -> AsyncIterator[Inbound]:
        name = "<stdin>" if self.path == "-" else self.path
        limit = self.max_message_size
        longest = -1 if limit is None else line_limit(limit)
        # A local file read line by line: a blocking read of one line is shorter than one operator call.
        stream: IO[str] = sys.stdin if self.path == "-" else Path(self.path).open(encoding="utf-8")  # noqa: SIM115, ASYNC230
        try:
            number = 0
            while not self._stopped:
                line = stream.readline(longest + 1 if longest >= 0 else -1)
                if not line:
                    return
                number += 1
                where = f"{name}:{number}"
                if longest >= 0 and len(line) > longest and not line.endswith("\n"):
                    length = _skip_rest(stream, len(line))
                    del line
                    self._bad(
                        ConfigError(
                            f"line too long: {length} characters > {longest} (for messages up to {limit} bytes): "
                            "not read",
                            where=where,
                        )
                    )
                    continue
                if not line.strip():
                    continue
                try:
                    message = parse_line(line, where)
                except ConfigError as exc:
                    self._bad(exc)
                    continue
                del line
                message, refused = limits.check(message, limit, where)  # the pipeline logs a refusal
                yield Inbound(message, refused=refused)
                await asyncio.sleep(0)
        finally:
            if stream is not sys.stdin:
                stream.close()

    def _bad(self, error: ConfigError) -> None:
        self.errors.append(error)
        log.error("skipping %s", error)

    async def stop(self) -> None:
        self._stopped = True


class JsonLinesSink:
    """Appends one line per message to a shared stream (a file or stdout), tagged with the sink's name."""

    def __init__(self, name: str, stream: IO[str]) -> None:
        self.name = name
        self.stream = stream
        self.sent: list[Message] = []

    async def send(self, message: Message) -> None:
        self.stream.write(render_line(message, self.name) + "\n")
        self.stream.flush()
        self.sent.append(message)

    async def close(self) -> None:
        self.stream.flush()
