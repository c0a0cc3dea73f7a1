"""The pure checks run before a Dataflow's children are applied: credentials opt-in, and ownership of objects."""

from __future__ import annotations

from typing import Any

import pytest

from wasmflow.api.dataflow import Dataflow
from wasmflow.operator.mqtt_credentials import BROKERS_ANNOTATION, check_credentials, parse_broker
from wasmflow.operator.ownership import foreign_child


def dataflow(url: str, secret: str | None = "creds") -> Dataflow:
    mqtt: dict[str, Any] = {"url": url}
    if secret:
        mqtt["credentialsSecretRef"] = {"name": secret}
    return Dataflow.model_validate(
        {
            "metadata": {"name": "df", "namespace": "plant"},
            "spec": {
                "endpoints": {"site": {"mqtt": mqtt}},
                "nodes": [
                    {"name": "in", "type": "source", "endpoint": "site", "topic": "a"},
                    {"name": "out", "type": "sink", "endpoint": "site", "topic": "b"},
                ],
                "edges": [{"from": "in", "to": "out"}],
            },
        }
    )


def test_a_broker_url_gets_its_default_port() -> None:
    assert str(parse_broker("mqtts://Broker.Plant")) == "mqtts://broker.plant:8883"
    assert str(parse_broker("mqtt://10.0.0.1:1884/")) == "mqtt://10.0.0.1:1884"
    assert parse_broker("http://x") is None


def test_an_endpoint_without_credentials_needs_no_opt_in() -> None:
    assert check_credentials(dataflow("mqtt://anywhere:1883", None), {}) is None


def test_a_missing_secret_is_named() -> None:
    refusal = check_credentials(dataflow("mqtts://b:8883"), {"creds": None})
    assert refusal is not None and refusal.reason == "SecretNotFound"
    assert "names Secret creds, which does not exist in plant" in refusal.message


def test_a_secret_without_the_annotation_is_refused_with_the_command_that_opts_in() -> None:
    refusal = check_credentials(dataflow("mqtts://evil.example:8883"), {"creds": {}})
    assert refusal is not None and refusal.reason == "CredentialsNotAllowed"
    assert "endpoint site (spec.endpoints.site.mqtt.credentialsSecretRef): Secret creds does not allow" in (
        refusal.message
    )
    assert f"kubectl annotate secret creds -n plant {BROKERS_ANNOTATION}=mqtts://evil.example:8883" in refusal.message


@pytest.mark.parametrize(
    ("url", "listed", "reason"),
    [
        ("mqtts://broker.plant", "mqtts://broker.plant:8883", None),
        ("mqtts://broker.plant:8883", "mqtt://other:1883, mqtts://broker.plant", None),
        ("mqtts://evil.example:8883", "mqtts://broker.plant:8883", "CredentialsNotAllowed"),
        ("mqtts://broker.plant:9999", "mqtts://broker.plant:8883", "CredentialsNotAllowed"),
        ("mqtt://broker.plant:1883", "mqtts://broker.plant:1883", "InsecureCredentials"),
        ("mqtt://broker.plant:1883", "mqtt://broker.plant:1883", None),  # clear text allowed by the owner
        ("mqtts://broker.plant:1883", "mqtt://broker.plant:1883", None),  # TLS is never worse
        ("mqtt://127.0.0.1:1883", "mqtts://127.0.0.1:1883", None),  # loopback: nothing crosses a network
        ("mqtt://localhost:1883", "mqtts://localhost:1883", None),
        ("mqtts://b:8883", "https://b", "CredentialsNotAllowed"),
    ],
)
def test_the_annotation_lists_where_the_credentials_may_go(url: str, listed: str, reason: str | None) -> None:
    refusal = check_credentials(dataflow(url), {"creds": {BROKERS_ANNOTATION: listed}})
    assert (refusal.reason if refusal else None) == reason, refusal


def test_clear_text_refusal_says_how_to_allow_it() -> None:
    refusal = check_credentials(
        dataflow("mqtt://broker.plant"), {"creds": {BROKERS_ANNOTATION: "mqtts://broker.plant:1883"}}
    )
    assert refusal is not None
    assert "would cross the network in clear text to mqtt://broker.plant:1883" in refusal.message
    assert "use mqtts://" in refusal.message


OURS = {"apiVersion": "wasmflow.io/v1alpha1", "kind": "Dataflow", "name": "df", "uid": "u1", "controller": True}


def test_an_absent_object_or_one_of_ours_may_be_applied() -> None:
    assert foreign_child("Service", "df-worker", None, "df") is None
    assert foreign_child("Service", "df-worker", [OURS], "df") is None
    # an earlier Dataflow of the same name (deleted and created again) left it: still ours
    assert foreign_child("Service", "df-worker", [{**OURS, "uid": "old"}], "df") is None


@pytest.mark.parametrize(
    ("references", "owner"),
    [
        ([], "it has no controller owner"),
        ([{**OURS, "controller": False}], "it has no controller owner"),
        ([{**OURS, "name": "other"}], "it is controlled by Dataflow other"),
        ([{**OURS, "apiVersion": "example.com/v1"}], "it is controlled by Dataflow df"),
        ([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x", "controller": True}], "ReplicaSet x"),
    ],
)
def test_any_other_object_is_refused_naming_it(references: list[dict[str, Any]], owner: str) -> None:
    problem = foreign_child("ConfigMap", "df-worker", references, "df")
    assert problem is not None
    assert problem.startswith("ConfigMap df-worker already exists and was not created by this Dataflow")
    assert owner in problem
