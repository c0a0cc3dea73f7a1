"""``wasmflow graph``: every node and edge of a Dataflow or an AIO graph drawn, labelled with what runs there."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from wasmflow.cli.graph import svg
from wasmflow.cli.main import cli
from wasmflow.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
PLANT = ROOT / "examples" / "manifests" / "dataflow.yaml"
AIO = ROOT / "tests" / "integration" / "run" / "aio" / "graph.yaml"
DIGEST = "sha256:" + "3f2a9c" * 10 + "abcd"

_MERMAID_NODE = re.compile(r'^  (n\d+)(\(\[|\[\(|\{|\[\[|\[)"(.*)"(\]\)|\)\]|\}|\]\]|\])$')
_MERMAID_EDGE = re.compile(r'^  (n\d+) -->(?:\|"(.*)"\| | )(n\d+)$')
_DOT_NODE = re.compile(r'^  "((?:[^"\\]|\\.)*)" \[label="((?:[^"\\]|\\.)*)", (.*)\];$')
_DOT_EDGE = re.compile(r'^  "((?:[^"\\]|\\.)*)" -> "((?:[^"\\]|\\.)*)"(?: \[label="((?:[^"\\]|\\.)*)"\])?;$')

Nodes = dict[str, list[str]]
Edges = dict[tuple[str, str], str]


def draw(*args: str) -> str:
    result = CliRunner().invoke(cli, ["graph", *args])
    assert result.exit_code == 0, result.output
    return result.output


def parse_mermaid(text: str) -> tuple[dict[str, str], Nodes, Edges]:
    """Shapes and label lines by node name, edge labels by (from, to); every line must be a node or an edge."""
    lines = text.splitlines()
    assert lines[1] == "flowchart LR"
    ids: dict[str, str] = {}
    shapes: dict[str, str] = {}
    nodes: Nodes = {}
    edges: Edges = {}
    for line in lines[2:]:
        if node := _MERMAID_NODE.match(line):
            label = node.group(3).split("<br/>")
            ids[node.group(1)] = label[0]
            shapes[label[0]], nodes[label[0]] = node.group(2), label
        else:
            edge = _MERMAID_EDGE.match(line)
            assert edge, f"neither a node nor an edge: {line!r}"
            edges[(ids[edge.group(1)], ids[edge.group(3)])] = edge.group(2) or ""
    return shapes, nodes, edges


def parse_dot(text: str) -> tuple[Nodes, Edges]:
    lines = text.splitlines()
    assert lines[0].startswith("digraph ") and lines[-1] == "}"
    nodes: Nodes = {}
    edges: Edges = {}
    for line in lines[4:-1]:
        if node := _DOT_NODE.match(line):
            nodes[node.group(1)] = node.group(2).split("\\n")
        else:
            edge = _DOT_EDGE.match(line)
            assert edge, f"neither a node nor an edge: {line!r}"
            edges[(edge.group(1), edge.group(2))] = edge.group(3) or ""
    return nodes, edges


def plant() -> dict[str, object]:
    document = yaml.safe_load(PLANT.read_text())
    assert isinstance(document, dict)
    return document


def test_mermaid_of_the_plant_dataflow_has_every_node_with_its_kind_and_every_edge() -> None:
    spec = plant()["spec"]
    assert isinstance(spec, dict)
    shapes, nodes, edges = parse_mermaid(draw(str(PLANT)))
    assert {name: label[1].split(" · ")[0] for name, label in nodes.items()} == {
        n["name"]: n["type"] for n in spec["nodes"]
    }
    assert set(edges) == {(e["from"], e["to"]) for e in spec["edges"]}
    assert nodes["to-celsius"][1] == "map · to-celsius"
    assert nodes["sensors"][2] == "plant: sensors/+/temperature"
    assert (shapes["sensors"], shapes["overheat"], shapes["alerts"]) == ("([", "{", "[(")


def test_mermaid_labels_branch_arms_and_the_window_on_the_edges() -> None:
    _shapes, _nodes, edges = parse_mermaid(draw(str(PLANT)))
    assert edges[("overheat", "alerts")] == "true"
    assert edges[("overheat", "window-average")] == "false"
    assert edges[("window-average", "averages")] == "window: 10 messages or 30s"
    assert edges[("sensors", "enrich")] == ""


def test_dot_of_the_plant_dataflow_has_every_node_and_edge() -> None:
    spec = plant()["spec"]
    assert isinstance(spec, dict)
    nodes, edges = parse_dot(draw("--format", "dot", str(PLANT)))
    assert {name: label[1].split(" · ")[0] for name, label in nodes.items()} == {
        n["name"]: n["type"] for n in spec["nodes"]
    }
    assert {pair: label for pair, label in edges.items() if label} == {
        ("overheat", "alerts"): "true",
        ("overheat", "window-average"): "false",
        ("window-average", "averages"): "window: 10 messages or 30s",
    }
    assert set(edges) == {(e["from"], e["to"]) for e in spec["edges"]}


def test_an_aio_graph_definition_is_drawn_with_its_operations_modules_and_arms() -> None:
    definition = yaml.safe_load(AIO.read_text())
    _shapes, nodes, edges = parse_mermaid(draw(str(AIO)))
    assert {name: label[1].split(" · ") for name, label in nodes.items()} == {
        o["name"]: [o["operationType"], o["module"]] if o.get("module") else [o["operationType"]]
        for o in definition["operations"]
    }
    assert set(edges) == {(c["from"]["name"], c["to"]["name"]) for c in definition["connections"]}
    assert edges[("module-threshold/branch", "concatenate1")] == "true"
    assert edges[("module-threshold/branch", "module-window/delay")] == "false"


def test_the_pinned_digest_of_a_wasmmodule_given_with_the_dataflow_labels_its_nodes(tmp_path: Path) -> None:
    module = {
        "apiVersion": "wasmflow.io/v1alpha1",
        "kind": "WasmModule",
        "metadata": {"name": "to-celsius"},
        "spec": {
            "operator": "map",
            "source": {"oci": {"reference": "registry.local/ops/to-celsius:1", "digest": DIGEST}},
        },
    }
    modules = tmp_path / "modules.yaml"
    modules.write_text(yaml.safe_dump(module))
    nodes, _edges = parse_dot(draw("-f", "dot", str(PLANT), str(modules)))
    assert nodes["to-celsius"] == ["to-celsius", "map · to-celsius", "sha256:3f2a9c3f2a9c…"]
    assert len(nodes["enrich"]) == 2  # no manifest for it: no digest


def test_a_branch_dropping_an_arm_says_so_and_quotes_are_escaped(tmp_path: Path) -> None:
    document = plant()
    spec = document["spec"]
    assert isinstance(spec, dict)
    spec["nodes"][0]["topic"] = "sensors/#"
    spec["nodes"][4]["dropArm"] = True
    spec["edges"] = [e for e in spec["edges"] if e.get("arm") is not True]
    spec["nodes"] = [n for n in spec["nodes"] if n["name"] != "alerts"]
    manifest = tmp_path / "dataflow.yaml"
    manifest.write_text(yaml.safe_dump(document))
    _shapes, nodes, _edges = parse_mermaid(draw(str(manifest)))
    assert nodes["overheat"][-1] == "drops arm true"
    assert nodes["sensors"][-1] == "plant: sensors/#35;"


def test_an_invalid_graph_is_refused_with_every_problem_named(tmp_path: Path) -> None:
    document = plant()
    spec = document["spec"]
    assert isinstance(spec, dict)
    spec["edges"].append({"from": "window-average", "to": "enrich"})
    manifest = tmp_path / "dataflow.yaml"
    manifest.write_text(yaml.safe_dump(document))
    result = CliRunner().invoke(cli, ["graph", str(manifest)])
    assert result.exit_code == 1
    assert "spec.nodes[1] (enrich): is on a cycle: enrich -> to-celsius" in result.output


def test_a_file_and_from_cluster_together_are_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["graph", str(PLANT), "--from-cluster", "plant/temps"])
    assert result.exit_code == 2
    assert "--from-cluster" in result.output


@pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz's dot is not installed (hack/install-system-packages.sh)"
)
def test_svg_is_drawn_by_graphviz_with_every_node_and_arm(tmp_path: Path) -> None:
    out = tmp_path / "plant.svg"
    draw("--format", "svg", "--output", str(out), str(PLANT))
    picture = out.read_text()
    assert picture.lstrip().startswith("<?xml") and "<svg" in picture
    titles = {html.unescape(t) for t in re.findall(r"<title>(.*?)</title>", picture)}
    assert {"sensors", "enrich", "to-celsius", "in-range", "overheat", "window-average", "alerts", "averages"} <= titles
    assert {"overheat->alerts", "overheat->window-average"} <= titles
    assert ">true</text>" in picture and ">false</text>" in picture


def test_svg_without_graphviz_names_the_package_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="install the Debian package graphviz"):
        svg("digraph g {}")
