"""The pure half of registry auth: WWW-Authenticate challenges and credentials from docker config files."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from wasmflow.errors import ConfigError
from wasmflow.oci import Credentials, credentials_from_docker_config, load_docker_config
from wasmflow.oci.auth import Challenge, parse_challenges, registry_key


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_a_bearer_challenge_keeps_a_scope_with_commas_inside_quotes() -> None:
    header = 'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:ops/op:pull,push"'
    assert parse_challenges(header) == [
        Challenge(
            "bearer",
            {
                "realm": "https://auth.example/token",
                "service": "registry.example",
                "scope": "repository:ops/op:pull,push",
            },
        )
    ]


def test_a_basic_challenge_has_its_realm() -> None:
    (challenge,) = parse_challenges('Basic realm="wasmflow-test"')
    assert (challenge.scheme, challenge.realm) == ("basic", "wasmflow-test")


def test_scheme_and_parameter_names_are_case_insensitive_and_spaces_do_not_matter() -> None:
    (challenge,) = parse_challenges('BEARER   Realm = "https://a.example/t" ,  Service=reg')
    assert challenge == Challenge("bearer", {"realm": "https://a.example/t", "service": "reg"})


def test_several_challenges_in_one_header_are_all_read() -> None:
    header = 'Basic realm="r1", Bearer realm="https://a.example/t",service="s", Negotiate'
    assert [c.scheme for c in parse_challenges(header)] == ["basic", "bearer", "negotiate"]
    assert parse_challenges(header)[1].params["service"] == "s"


def test_a_quoted_string_unescapes_backslashes() -> None:
    (challenge,) = parse_challenges(r'Basic realm="say \"hi\" \\ bye"')
    assert challenge.realm == 'say "hi" \\ bye'


def test_a_token68_value_is_kept_whole_with_its_padding() -> None:
    (challenge,) = parse_challenges("Basic YWJjOmRlZg==")
    assert challenge.params == {"token68": "YWJjOmRlZg=="}


@pytest.mark.parametrize("header", ["", "   ", ",,,", '="x"'])
def test_nothing_usable_yields_no_challenge(header: str) -> None:
    assert parse_challenges(header) == []


def test_an_unterminated_quote_still_yields_what_parsed() -> None:
    (challenge,) = parse_challenges('Bearer realm="https://a.example/t", service="unterminated')
    assert challenge.realm == "https://a.example/t"
    assert challenge.params["service"] == "unterminated"


@pytest.mark.parametrize(
    ("key", "registry"),
    [
        ("registry.example:5000", "registry.example:5000"),
        ("https://registry.example:5000/v1/", "registry.example:5000"),
        ("http://127.0.0.1:5000", "127.0.0.1:5000"),
        (" Registry.Example ", "registry.example"),
    ],
)
def test_a_docker_config_key_stands_for_its_host_and_port(key: str, registry: str) -> None:
    assert registry_key(key) == registry


def test_credentials_come_from_the_base64_auth_entry() -> None:
    config = {"auths": {"https://r.example:5000/v1/": {"auth": b64("user:pa:ss")}}}
    assert credentials_from_docker_config(config, "r.example:5000") == Credentials("user", "pa:ss")


def test_credentials_come_from_username_and_password_fields() -> None:
    config = {"auths": {"r.example": {"username": "u", "password": "p"}}}
    assert credentials_from_docker_config(config, "R.Example") == Credentials("u", "p")


def test_an_identity_token_is_kept_for_the_refresh_token_grant() -> None:
    config = {"auths": {"r.azurecr.io": {"username": "00000000-0000-0000-0000-000000000000", "identitytoken": "tok"}}}
    found = credentials_from_docker_config(config, "r.azurecr.io")
    assert found is not None and found.identity_token == "tok"


def test_a_registry_without_an_entry_or_with_an_empty_one_has_no_credentials() -> None:
    config = {"auths": {"other.example": {"auth": b64("u:p")}, "empty.example": {}}}
    assert credentials_from_docker_config(config, "r.example") is None
    assert credentials_from_docker_config(config, "empty.example") is None
    assert credentials_from_docker_config({}, "r.example") is None


def test_an_entry_on_another_port_is_not_used() -> None:
    config = {"auths": {"r.example:5000": {"auth": b64("u:p")}}}
    assert credentials_from_docker_config(config, "r.example:5001") is None


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"auth": "%%%not-base64%%%"}, "not base64"),
        ({"auth": b64("no-colon")}, "does not decode to 'username:password'"),
        ({"username": 1, "password": "p"}, "must be strings"),
        ("a string", "must be an object"),
    ],
)
def test_a_malformed_entry_names_the_registry_key_never_the_content(entry: object, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as caught:
        credentials_from_docker_config({"auths": {"r.example": entry}}, "r.example")
    assert "auths['r.example']" in caught.value.where
    assert "not-base64" not in str(caught.value)
    assert "no-colon" not in str(caught.value)


def test_credentials_never_show_the_password_in_their_repr() -> None:
    credentials = Credentials("user", "hunter2-secret", identity_token="token-secret")
    assert "hunter2" not in repr(credentials)
    assert "token-secret" not in repr(credentials)
    assert credentials.basic_header() == "Basic " + b64("user:hunter2-secret")


def test_a_docker_config_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / ".dockerconfigjson"
    path.write_text(json.dumps({"auths": {"r.example": {"auth": b64("u:p")}}}))
    assert load_docker_config(path, "r.example") == Credentials("u", "p")


@pytest.mark.parametrize(
    ("content", "says"), [(None, "cannot read"), ("{not json", r"not JSON \(line 1\)"), ("[]", "not a JSON object")]
)
def test_an_unreadable_docker_config_file_is_a_config_error_naming_the_file(
    tmp_path: Path, content: str | None, says: str
) -> None:
    path = tmp_path / "config.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=says) as caught:
        load_docker_config(path, "r.example")
    assert caught.value.where == str(path)
