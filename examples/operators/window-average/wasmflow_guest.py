"""Helpers for wasmflow operators written in Python (copied into your project by `wasmflow new`).

They hide the contract's two payload cases (`text` for UTF-8, `binary` otherwise) behind plain `bytes`, turn a
`Reject` into the operator error the host expects, and keep the node's configuration at hand.
"""

from componentize_py_types import Err
from wit_world.imports import logging, types

#: The node's `configuration` from the Dataflow manifest, filled in by `configure()` at init.
CONFIG: dict[str, str] = {}
NODE = [""]


class Reject(Exception):
    """Raise to fail this message: it goes to the node's error policy (dropped or dead-lettered) with your text."""


def configure(config: types.Configuration) -> None:
    NODE[0] = config.node
    CONFIG.clear()
    CONFIG.update(config.properties)


def payload_bytes(msg: types.Message) -> bytes:
    """The message body as bytes, whichever case it travelled in."""
    if isinstance(msg.payload, types.Payload_Text):
        return msg.payload.value.encode("utf-8")
    return bytes(msg.payload.value)


def with_payload(msg: types.Message, data: bytes, content_type: str | None = None) -> types.Message:
    """A copy of `msg` with a new body (sent as text when it is UTF-8: the fast path)."""
    try:
        payload: types.Payload = types.Payload_Text(data.decode("utf-8"))
    except UnicodeDecodeError:
        payload = types.Payload_Binary(data)
    return types.Message(
        payload=payload,
        topic=msg.topic,
        content_type=content_type if content_type is not None else msg.content_type,
        properties=list(msg.properties),
        timestamp_ms=msg.timestamp_ms,
    )


def log(text: str) -> None:
    """Write to the worker's log, tagged with this node's name."""
    logging.log(logging.Level.INFO, text)


def guard(fn, *args):  # noqa: ANN001, ANN202 - called from generated glue with the contract's types
    """Run an operator function; a `Reject` (or a bad payload) becomes the operator error the host expects."""
    try:
        return fn(*args)
    except Reject as exc:
        raise Err(types.OperatorError(str(exc))) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise Err(types.OperatorError(f"{type(exc).__name__}: {exc}")) from None
