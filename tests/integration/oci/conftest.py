"""Fixtures of the OCI client tests that need more than the session's three registries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.registry_env import TokenRegistryEnv, start_token_registries, stop_registries


@pytest.fixture(scope="session")
def token_registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenRegistryEnv]:
    """The token world (hack/registry.sh --token): real bearer-token registries and their real token service."""
    env = start_token_registries(tmp_path_factory.mktemp("token-registry"))
    try:
        yield env
    finally:
        stop_registries(env.state_dir)
