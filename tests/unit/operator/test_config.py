"""The operator's settings come from WASMFLOW_* variables; a bad value names the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from wasmflow.errors import ConfigError
from wasmflow.operator.config import OperatorConfig, load_config


def test_defaults_apply_when_nothing_is_set() -> None:
    assert load_config({}) == OperatorConfig()


def test_variables_override_defaults() -> None:
    config = load_config(
        {
            "WASMFLOW_WORKER_IMAGE": "registry.local/wasmflow@sha256:abc",
            "WASMFLOW_WORKER_IMAGE_PULL_POLICY": "Always",
            "WASMFLOW_WORKER_IMAGE_PULL_SECRETS": "one, two",
            "WASMFLOW_CACHE_DIR": "/var/cache/wf",
            "WASMFLOW_WORKER_LIMIT": "3",
        }
    )
    assert config.worker_image == "registry.local/wasmflow@sha256:abc"
    assert config.worker_image_pull_policy == "Always"
    assert config.worker_image_pull_secrets == ("one", "two")
    assert config.cache_dir == Path("/var/cache/wf")
    assert config.worker_limit == 3


def test_an_unknown_pull_policy_names_the_variable() -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"WASMFLOW_WORKER_IMAGE_PULL_POLICY": "Sometimes"})
    assert info.value.where == "WASMFLOW_WORKER_IMAGE_PULL_POLICY"
    assert "Sometimes" in info.value.message


def test_a_non_integer_limit_names_the_variable() -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"WASMFLOW_WORKER_LIMIT": "many"})
    assert info.value.where == "WASMFLOW_WORKER_LIMIT"


def test_a_zero_worker_limit_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        load_config({"WASMFLOW_WORKER_LIMIT": "0"})


def test_a_registry_ca_file_is_taken_when_it_names_a_readable_file(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.crt"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    assert load_config({"WASMFLOW_REGISTRY_CA_FILE": str(bundle)}).registry_ca_file == bundle


def test_a_registry_ca_file_that_does_not_exist_stops_the_start_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"WASMFLOW_REGISTRY_CA_FILE": str(tmp_path / "missing.crt")})
    assert info.value.where == "WASMFLOW_REGISTRY_CA_FILE"
    assert "missing.crt" in info.value.message
