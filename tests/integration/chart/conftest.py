"""Helm (built from its Go module by hack/build-kube.sh) driving the chart in charts/wasmflow."""

from __future__ import annotations

import pytest

from tests.chart_env import Helm, find_helm


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return find_helm(tmp_path_factory.mktemp("helm-home"))
