"""The resource models accept real manifests and refuse bad ones with the field named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from wasmflow.api.common import parse_duration, parse_quantity
from wasmflow.api.dataflow import Dataflow
from wasmflow.api.manifests import load_manifests
from wasmflow.api.wasmmodule import WasmModule
from wasmflow.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "manifests"


def test_the_example_manifests_load() -> None:
    manifests = load_manifests(EXAMPLES / "wasmmodules.yaml") + load_manifests(EXAMPLES / "dataflow.yaml")
    assert sum(isinstance(m, WasmModule) for m in manifests) == 5
    (dataflow,) = [m for m in manifests if isinstance(m, Dataflow)]
    assert dataflow.spec.nodes[5].window is not None
    assert dataflow.spec.nodes[5].window.duration_seconds == 30


def test_module_defaults_match_the_documentation() -> None:
    module = WasmModule.model_validate(
        {
            "kind": "WasmModule",
            "metadata": {"name": "m"},
            "spec": {"source": {"oci": {"reference": "r:5000/a/b:1"}}, "operator": "map"},
        }
    )
    assert module.spec.limits.memory_bytes == 64 * 2**20
    assert module.spec.limits.timeout_seconds == pytest.approx(0.1)
    assert module.spec.interval == "10m"
    assert module.spec.source.oci is not None
    assert module.spec.source.oci.insecure is False


def _write(tmp_path: Path, document: dict[str, object]) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_an_unknown_field_is_refused_with_its_path(tmp_path: Path) -> None:
    doc = yaml.safe_load((EXAMPLES / "dataflow.yaml").read_text())
    doc["spec"]["nodes"][1]["modul"] = "typo"
    with pytest.raises(ConfigError) as info:
        load_manifests(_write(tmp_path, doc))
    assert info.value.where.endswith("m.yaml#1 spec.nodes[1].modul")
    assert "Extra inputs are not permitted" in info.value.message


def test_an_edge_to_a_missing_node_is_refused(tmp_path: Path) -> None:
    doc = yaml.safe_load((EXAMPLES / "dataflow.yaml").read_text())
    doc["spec"]["edges"].append({"from": "averages", "to": "ghost"})
    with pytest.raises(ConfigError, match="names node 'ghost', which does not exist"):
        load_manifests(_write(tmp_path, doc))


def test_an_operator_without_a_module_is_refused(tmp_path: Path) -> None:
    doc = yaml.safe_load((EXAMPLES / "dataflow.yaml").read_text())
    del doc["spec"]["nodes"][1]["module"]
    with pytest.raises(ConfigError) as info:
        load_manifests(_write(tmp_path, doc))
    assert "spec.nodes[1]" in info.value.where
    assert "need module" in info.value.message


def test_a_sink_naming_an_undeclared_endpoint_is_refused(tmp_path: Path) -> None:
    doc = yaml.safe_load((EXAMPLES / "dataflow.yaml").read_text())
    doc["spec"]["nodes"][6]["endpoint"] = "elsewhere"
    with pytest.raises(ConfigError, match=r"names endpoint 'elsewhere', not in spec\.endpoints"):
        load_manifests(_write(tmp_path, doc))


def test_dead_letter_needs_a_target(tmp_path: Path) -> None:
    doc = yaml.safe_load((EXAMPLES / "dataflow.yaml").read_text())
    doc["spec"]["errorPolicy"] = {"action": "deadLetter"}
    with pytest.raises(ConfigError, match="deadLetter needs endpoint and topic"):
        load_manifests(_write(tmp_path, doc))


def test_a_module_with_two_sources_is_refused(tmp_path: Path) -> None:
    doc = {
        "apiVersion": "wasmflow.io/v1alpha1",
        "kind": "WasmModule",
        "metadata": {"name": "m"},
        "spec": {"operator": "map", "source": {"oci": {"reference": "r:5000/a:1"}, "configMapRef": {"name": "c"}}},
    }
    with pytest.raises(ConfigError, match="exactly one of oci and configMapRef"):
        load_manifests(_write(tmp_path, doc))


def test_an_unknown_kind_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="kind must be one of WasmModule, Dataflow, got 'Pod'"):
        load_manifests(_write(tmp_path, {"kind": "Pod"}))


@pytest.mark.parametrize(
    ("text", "expected"), [("64Mi", 64 * 2**20), ("1Gi", 2**30), ("500M", 500_000_000), ("10", 10)]
)
def test_quantities_parse(text: str, expected: int) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize(("text", "expected"), [("100ms", 0.1), ("30s", 30), ("1m30s", 90), ("2h", 7200)])
def test_durations_parse(text: str, expected: float) -> None:
    assert parse_duration(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "10", "1x", "s10"])
def test_bad_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(ConfigError, match="examples: 100ms, 30s"):
        parse_duration(text)
