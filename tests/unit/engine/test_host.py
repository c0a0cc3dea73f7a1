"""The process-wide engine host (engine/host.py): it starts the nodes it loads and closes them with itself."""

from __future__ import annotations

import pytest

from tests.components.engine import wat
from wasmflow.api.kinds import OperatorKind
from wasmflow.engine.host import EngineHost, OperatorSpec
from wasmflow.engine.message import Message
from wasmflow.engine.metrics import EngineMetrics
from wasmflow.errors import EngineError

GOOD = Message(b"fine", "t")


def test_closing_the_host_closes_its_nodes_and_refuses_new_ones(metrics: EngineMetrics) -> None:
    host = EngineHost(cache_dir=None, metrics=metrics)
    node = host.load(OperatorSpec("op", OperatorKind.MAP, wat.operator()))
    host.close()
    host.close()
    with pytest.raises(EngineError, match="closed"):
        node.map(GOOD)
    with pytest.raises(EngineError, match="closed"):
        host.load(OperatorSpec("op", OperatorKind.MAP, wat.operator()))
