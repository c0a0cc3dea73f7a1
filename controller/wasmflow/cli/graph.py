"""``wasmflow graph``: draw a Dataflow or an AIO graph definition as Mermaid, Graphviz DOT or SVG.

The picture is drawn from the graph IR (``wasmflow.api.graph``), so whatever the front-end accepts can be drawn and
the drawing shows what the runtime runs: each node with its step, module and pinned digest (when known: a WasmModule
manifest given with the Dataflow, or the live object's ``status.modules``), sources and sinks with their endpoint and
topic, branch arms and accumulate windows on the edges. Mermaid pastes into a README or a GitHub issue; SVG is
rendered by Graphviz's ``dot`` (Debian package ``graphviz``), run as a separate program on the DOT text.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from wasmflow.api.dataflow import Dataflow
from wasmflow.api.frontends import spec_graph
from wasmflow.api.frontends.aio import GraphDefinition, definition_graph, parse_graph
from wasmflow.api.graph import Edge, Graph, GraphError, GraphNode, Step
from wasmflow.api.manifests import parse_manifest, parse_manifests
from wasmflow.api.wasmmodule import WasmModule
from wasmflow.api.yaml_input import MAX_GRAPH_BYTES, MAX_MANIFEST_BYTES, load_yaml, read_text
from wasmflow.errors import ConfigError, WasmflowError

FORMATS = ("mermaid", "dot", "svg")
#: How long ``dot`` may take to lay out a graph (at most 64 nodes and 256 edges: well under a second).
DOT_TIMEOUT_S = 60
#: The most of ``dot``'s error output repeated in ours.
MAX_DOT_ERROR = 2000


@dataclass(frozen=True)
class Drawing:
    """A graph to draw: its title, the graph IR, and the digest each module key is pinned to (when known)."""

    title: str
    graph: Graph
    digests: Mapping[str, str] = field(default_factory=dict)


# -- reading what to draw ------------------------------------------------------------------------------------------


def drawing_of_files(paths: tuple[Path, ...]) -> Drawing:
    """An AIO graph definition (one file with ``operations``), or a Dataflow manifest with any WasmModule manifests
    (in the same or further files) whose pinned digests label the nodes."""
    first = read_text(paths[0], max_bytes=MAX_MANIFEST_BYTES)
    if len(paths) == 1 and _is_graph_definition(first, str(paths[0])):
        definition = parse_graph(first, str(paths[0]))
        return Drawing(_definition_title(definition, paths[0]), definition_graph(definition))
    dataflows: list[Dataflow] = []
    digests: dict[str, str] = {}
    for index, path in enumerate(paths):
        text = first if index == 0 else read_text(path, max_bytes=MAX_MANIFEST_BYTES)
        for manifest in parse_manifests(text, str(path)):
            if isinstance(manifest, Dataflow):
                dataflows.append(manifest)
            elif (digest := _module_digest(manifest)) is not None:
                digests[manifest.metadata.name] = digest
    if len(dataflows) != 1:
        found = ", ".join(d.metadata.name for d in dataflows) or "none"
        raise ConfigError(f"expected exactly one Dataflow among the manifests, found {found}", where=str(paths[0]))
    return _drawing_of_dataflow(dataflows[0], digests)


def drawing_of_object(body: Mapping[str, Any]) -> Drawing:
    """A Dataflow as the API server returned it: its ``status.modules`` say which digest each module runs (the
    rest of the status is the controller's, and not read)."""
    dataflow = parse_manifest({k: v for k, v in body.items() if k != "status"}, "the Dataflow object")
    if not isinstance(dataflow, Dataflow):
        raise ConfigError(f"expected a Dataflow, got a {dataflow.kind}", where="--from-cluster")
    status = body.get("status")
    modules = status.get("modules") if isinstance(status, dict) else None
    digests = {
        m["name"]: m["digest"]
        for m in (modules if isinstance(modules, list) else [])
        if isinstance(m, dict) and isinstance(m.get("name"), str) and isinstance(m.get("digest"), str)
    }
    return _drawing_of_dataflow(dataflow, digests)


def _drawing_of_dataflow(dataflow: Dataflow, digests: Mapping[str, str]) -> Drawing:
    title = dataflow.metadata.name
    if dataflow.metadata.namespace:
        title = f"{dataflow.metadata.namespace}/{title}"
    graph = spec_graph(dataflow.spec)
    if graph is None:  # an AIO graph definition pushed as an OCI artifact: pull it, then draw it with its ports
        assert dataflow.spec.graph is not None and dataflow.spec.graph.artifact is not None
        text = asyncio.run(
            _pull_definition(dataflow.spec.graph.artifact.reference, dataflow.spec.graph.artifact.insecure)
        )
        spec = dataflow.spec.model_copy(
            update={"graph": dataflow.spec.graph.model_copy(update={"definition": text, "artifact": None})}
        )
        graph = spec_graph(spec)
        assert graph is not None
    return Drawing(title, graph, digests)


async def _pull_definition(reference: str, insecure: bool) -> str:
    from wasmflow.oci.pull import Access, pull_graph  # noqa: PLC0415 - only a graph pushed as an artifact needs it

    pulled = await pull_graph(reference, access=Access(insecure=insecure), max_bytes=MAX_GRAPH_BYTES)
    try:
        return pulled.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError("the graph definition is not UTF-8 text", where=f"graph artifact {reference}") from exc


def _is_graph_definition(text: str, where: str) -> bool:
    """AIO's graph definitions have ``operations`` and no ``kind``; Kubernetes manifests always have a kind."""
    if len(text.encode()) > MAX_GRAPH_BYTES:
        return False
    try:
        document = load_yaml(text, where, max_bytes=MAX_GRAPH_BYTES)
    except ConfigError:
        return False  # several documents, or not YAML: read as manifests, which names the problem
    return isinstance(document, dict) and "operations" in document and "kind" not in document


def _definition_title(definition: GraphDefinition, path: Path) -> str:
    return definition.metadata.name or path.stem


def _module_digest(module: WasmModule) -> str | None:
    """The digest a WasmModule manifest pins: ``status.artifact`` (a live object saved), ``source.oci.digest``, or
    an ``@sha256:`` reference."""
    if module.status is not None and module.status.artifact is not None:
        return module.status.artifact.digest
    oci = module.spec.source.oci
    if oci is None:
        return None
    if oci.digest:
        return oci.digest
    _, at, digest = oci.reference.partition("@")
    return digest if at else None


def dataflow_object(target: str, kubeconfig: Path | None) -> dict[str, Any]:
    """The live Dataflow ``NAMESPACE/NAME`` from the API server (KUBECONFIG, ``--kubeconfig`` or in-cluster)."""
    namespace, slash, name = target.partition("/")
    if not slash or not namespace or not name or "/" in name:
        raise click.BadParameter(f"{target!r}: give NAMESPACE/DATAFLOW", param_hint="--from-cluster")
    # Imported here: only this option talks to Kubernetes, and the client takes a second to import.
    from kubernetes import client, config  # noqa: PLC0415
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415
    from kubernetes.config.config_exception import ConfigException  # noqa: PLC0415

    from wasmflow.operator.kube import GROUP, VERSION, api_client  # noqa: PLC0415

    try:
        api = (
            config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
            if kubeconfig
            else api_client()
        )
    except (ConfigException, OSError) as exc:
        raise ConfigError(f"cannot reach the cluster: {exc}", where="--from-cluster") from exc
    try:
        with api:
            objects = client.CustomObjectsApi(api)
            body = objects.get_namespaced_custom_object(GROUP, VERSION, namespace, "dataflows", name)
    except ApiException as exc:
        if exc.status == 404:
            raise ConfigError(f"Dataflow {namespace}/{name} not found", where="--from-cluster") from exc
        raise ConfigError(
            f"reading Dataflow {namespace}/{name}: {exc.status} {exc.reason}", where="--from-cluster"
        ) from exc
    if not isinstance(body, dict):
        raise ConfigError(f"Dataflow {namespace}/{name}: the API server answered no object", where="--from-cluster")
    return body


# -- drawing ---------------------------------------------------------------------------------------------------------


def node_lines(node: GraphNode, digests: Mapping[str, str]) -> list[str]:
    """What a node's box says: its name; its step and module; the module's digest (short); where it reads or
    writes; the arm it drops."""
    lines = [node.name, node.step.value if node.module is None else f"{node.step.value} · {node.module}"]
    digest = digests.get(node.module or "")
    if digest:
        algorithm, _, hexdigits = digest.partition(":")
        lines.append(f"{algorithm}:{hexdigits[:12]}…" if hexdigits else digest)
    if node.endpoint or node.topic:
        lines.append(": ".join(p for p in (node.endpoint, node.topic) if p))
    if node.drop_arm is not None:
        lines.append(f"drops arm {str(node.drop_arm).lower()}")
    return lines


def edge_label(graph: Graph, edge: Edge) -> str:
    """A branch arm, and the window of the accumulate the messages leave (when it closes)."""
    parts = []
    if edge.arm is not None:
        parts.append(str(edge.arm).lower())
    window = graph.nodes[edge.source].window
    if window is not None:
        bounds = [f"{window.count} messages" if window.count else "", window.duration or ""]
        parts.append("window: " + " or ".join(b for b in bounds if b))
    return ", ".join(parts)


_MERMAID_SHAPES = {
    Step.SOURCE: ('(["', '"])'),
    Step.SINK: ('[("', '")]'),
    Step.BRANCH: ('{"', '"}'),
    Step.CONCATENATE: ('[["', '"]]'),
}


def _mermaid_text(text: str) -> str:
    """Text inside a quoted Mermaid label: its own entity codes for the characters Mermaid would read."""
    for char, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(char, code)
    return text


def mermaid(drawing: Drawing) -> str:
    """A Mermaid flowchart, left to right: nodes ``n0``, ``n1``... in topological order, labelled."""
    graph = drawing.graph
    ids = {name: f"n{i}" for i, name in enumerate(graph.order)}
    lines = [f"%% {drawing.title}", "flowchart LR"]
    for name in graph.order:
        node = graph.nodes[name]
        opening, closing = _MERMAID_SHAPES.get(node.step, ('["', '"]'))
        label = "<br/>".join(_mermaid_text(line) for line in node_lines(node, drawing.digests))
        lines.append(f"  {ids[name]}{opening}{label}{closing}")
    for name in graph.order:
        for edge in graph.outputs[name]:
            label = edge_label(graph, edge)
            arrow = f' -->|"{_mermaid_text(label)}"| ' if label else " --> "
            lines.append(f"  {ids[edge.source]}{arrow}{ids[edge.target]}")
    return "\n".join(lines) + "\n"


_DOT_SHAPES = {
    Step.SOURCE: "shape=box, style=rounded, peripheries=2",
    Step.SINK: "shape=cylinder",
    Step.BRANCH: "shape=diamond",
    Step.CONCATENATE: "shape=invtrapezium",
}


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def dot(drawing: Drawing) -> str:
    """A Graphviz digraph, left to right: nodes by name, labelled."""
    graph = drawing.graph
    lines = [
        f"digraph {_dot_string(drawing.title)} {{",
        "  rankdir=LR;",
        '  node [shape=box, fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for name in graph.order:
        node = graph.nodes[name]
        label = "\n".join(node_lines(node, drawing.digests))
        lines.append(f"  {_dot_string(name)} [label={_dot_string(label)}, {_DOT_SHAPES.get(node.step, 'shape=box')}];")
    for name in graph.order:
        for edge in graph.outputs[name]:
            label = edge_label(graph, edge)
            attributes = f" [label={_dot_string(label)}]" if label else ""
            lines.append(f"  {_dot_string(edge.source)} -> {_dot_string(edge.target)}{attributes};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def svg(dot_text: str) -> bytes:
    """The DOT text laid out and drawn by Graphviz's ``dot``; ConfigError when it is not installed or fails."""
    program = shutil.which("dot")
    if program is None:
        raise ConfigError(
            "drawing SVG needs Graphviz's dot program, which is not installed: install the Debian package graphviz "
            "(apt-get install graphviz), or write --format dot and render it elsewhere",
            where="--format svg",
        )
    try:
        done = subprocess.run(
            [program, "-Tsvg"], input=dot_text.encode(), capture_output=True, timeout=DOT_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ConfigError(f"dot took more than {DOT_TIMEOUT_S}s", where="--format svg") from exc
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace")[:MAX_DOT_ERROR].strip()
        raise ConfigError(f"dot failed (exit {done.returncode}): {detail}", where="--format svg")
    return done.stdout


@click.command("graph")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format", "-f", "output_format", type=click.Choice(FORMATS), default="mermaid", show_default=True,
    help="Mermaid (pastes into Markdown), Graphviz DOT, or SVG (drawn by Graphviz's dot).",
)  # fmt: skip
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to this file instead of standard output.",
)  # fmt: skip
@click.option("--from-cluster", "target", metavar="NAMESPACE/DATAFLOW", help="Draw the live Dataflow object.")
@click.option(
    "--kubeconfig", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --from-cluster: this kubeconfig instead of $KUBECONFIG or ~/.kube/config.",
)  # fmt: skip
def graph_command(
    files: tuple[Path, ...], output_format: str, output: Path | None, target: str | None, kubeconfig: Path | None
) -> None:
    """Draw the Dataflow in FILES (WasmModule manifests may follow it, for their digests) or the AIO graph
    definition in FILE, or the live Dataflow with --from-cluster."""
    if bool(files) == bool(target):
        raise click.UsageError("give a Dataflow manifest or an AIO graph definition, or --from-cluster NS/NAME")
    try:
        drawing = drawing_of_object(dataflow_object(target, kubeconfig)) if target else drawing_of_files(files)
        text = mermaid(drawing) if output_format == "mermaid" else dot(drawing)
        data = svg(text) if output_format == "svg" else text.encode()
    except GraphError as exc:
        raise click.ClickException(
            "invalid graph:\n" + "\n".join(f"  {p.where}: {p.message}" for p in exc.problems)
        ) from exc
    except WasmflowError as exc:
        raise click.ClickException(str(exc)) from exc
    if output is None:
        click.echo(data, nl=False)
    else:
        output.write_bytes(data)
