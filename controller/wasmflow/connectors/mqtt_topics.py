"""MQTT topic rules (MQTT 5 §4.7 and §4.8), checked before connecting so a typo fails at start with the topic named,
not as a broker disconnect later."""

from __future__ import annotations

from wasmflow.errors import ConfigError

MAX_TOPIC_BYTES = 65535


def _common(topic: str, where: str) -> None:
    if not topic:
        raise ConfigError("an MQTT topic cannot be empty", where=where)
    if "\0" in topic:
        raise ConfigError(f"MQTT topic {topic!r} contains a NUL character", where=where)
    if len(topic.encode("utf-8")) > MAX_TOPIC_BYTES:
        raise ConfigError(f"MQTT topic longer than {MAX_TOPIC_BYTES} bytes", where=where)


def check_topic_filter(topic: str, where: str = "topic") -> str:
    """A subscription filter: ``+`` only as a whole level, ``#`` only as the whole last level."""
    _common(topic, where)
    levels = topic.split("/")
    for index, level in enumerate(levels):
        if "+" in level and level != "+":
            raise ConfigError(f"'+' must be a whole topic level in {topic!r}", where=where)
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise ConfigError(f"'#' must be the whole last topic level in {topic!r}", where=where)
    if topic.startswith("$share/"):
        raise ConfigError("set sharedSubscriptionGroup instead of writing $share/ in the topic", where=where)
    return topic


def check_topic_name(topic: str, where: str = "topic") -> str:
    """A topic to publish to: no wildcards."""
    _common(topic, where)
    if "+" in topic or "#" in topic:
        raise ConfigError(f"cannot publish to {topic!r}: wildcards are for subscriptions only", where=where)
    return topic


def subscription(topic: str, shared_group: str | None) -> str:
    """What the source subscribes to: ``$share/<group>/<filter>`` when replicas share the stream."""
    check_topic_filter(topic)
    if shared_group is None:
        return topic
    if not shared_group or any(c in shared_group for c in "/+#"):
        raise ConfigError(
            f"shared subscription group {shared_group!r} must be non-empty without '/', '+' or '#'",
            where="sharedSubscriptionGroup",
        )
    return f"$share/{shared_group}/{topic}"
