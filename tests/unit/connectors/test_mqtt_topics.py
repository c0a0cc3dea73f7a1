"""Topic filters, topic names and shared subscriptions are checked before connecting, naming the topic."""

from __future__ import annotations

import re

import pytest

from wasmflow.connectors.mqtt_topics import check_topic_filter, check_topic_name, subscription
from wasmflow.errors import ConfigError


@pytest.mark.parametrize("topic", ["a", "a/b", "+", "#", "a/+/c", "a/#", "+/+/#", "/a", "a//b", "$SYS/#"])
def test_valid_filters_pass(topic: str) -> None:
    assert check_topic_filter(topic) == topic


@pytest.mark.parametrize(
    ("topic", "why"),
    [
        ("", "empty"),
        ("a/b+", "'+' must be a whole topic level"),
        ("a/#/b", "'#' must be the whole last topic level"),
        ("a#", "'#' must be the whole last topic level"),
        ("a\0b", "NUL"),
        ("$share/g/a", "sharedSubscriptionGroup"),
    ],
)
def test_invalid_filters_are_refused_saying_why(topic: str, why: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(why)):
        check_topic_filter(topic)


@pytest.mark.parametrize("topic", ["a/+", "#", "a/#"])
def test_a_sink_cannot_publish_to_a_wildcard(topic: str) -> None:
    with pytest.raises(ConfigError, match="wildcards are for subscriptions only"):
        check_topic_name(topic)


def test_a_topic_longer_than_mqtt_allows_is_refused() -> None:
    with pytest.raises(ConfigError, match="longer than 65535 bytes"):
        check_topic_name("é" * 40000)


def test_a_group_makes_a_shared_subscription() -> None:
    assert subscription("factory/+/temperature", "temps") == "$share/temps/factory/+/temperature"


def test_no_group_subscribes_to_the_filter_itself() -> None:
    assert subscription("factory/#", None) == "factory/#"


@pytest.mark.parametrize("group", ["", "a/b", "a+", "#"])
def test_a_group_with_topic_separators_or_wildcards_is_refused(group: str) -> None:
    with pytest.raises(ConfigError, match="shared subscription group"):
        subscription("t", group)
