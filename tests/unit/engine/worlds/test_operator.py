"""Our world's adapter (engine/worlds/operator.py): the exports it needs, and ``init`` with the node's configuration."""

from __future__ import annotations

import pytest

from tests.components.engine import wat
from wasmflow.api.kinds import OperatorKind
from wasmflow.engine.host import EngineHost, OperatorSpec
from wasmflow.engine.message import Message
from wasmflow.errors import EngineError

GOOD = Message(b"fine", "t")


def test_init_returning_err_fails_the_load_naming_the_node_and_the_reason(host: EngineHost) -> None:
    spec = OperatorSpec("to-celsius", OperatorKind.MAP, wat.operator(init_error="precision must be a number"))
    with pytest.raises(EngineError, match=r"'to-celsius'.*precision must be a number"):
        host.load(spec)


def test_init_receives_the_node_configuration(host: EngineHost) -> None:
    spec = OperatorSpec("n", OperatorKind.MAP, wat.operator(), configuration=(("precision", "1"), ("a", "é")))
    assert host.load(spec).map(GOOD) == GOOD


def test_a_component_without_the_operator_interface_is_refused_at_load(host: EngineHost) -> None:
    with pytest.raises(EngineError, match=r"'op'.*wasmflow:operator/map@0.1.x"):
        host.load(OperatorSpec("op", OperatorKind.MAP, wat.operator("filter")))
