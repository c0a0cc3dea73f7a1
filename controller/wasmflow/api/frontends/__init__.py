"""Front-ends: each reads one way of writing a graph into the graph IR (``wasmflow.api.graph``).

``dataflow`` reads a Dataflow's ``spec.nodes``/``spec.edges``; ``aio`` reads an Azure IoT Operations graph
definition. They never import each other; ``spec_graph`` picks the one a Dataflow's spec needs.
"""

from __future__ import annotations

from collections.abc import Mapping

from wasmflow.api.dataflow import DataflowSpec
from wasmflow.api.frontends.aio import dataflow_definition_graph
from wasmflow.api.frontends.dataflow import dataflow_graph
from wasmflow.api.graph import Graph
from wasmflow.api.kinds import OperatorKind


def spec_graph(spec: DataflowSpec, modules: Mapping[str, OperatorKind] | None = None) -> Graph | None:
    """The graph a Dataflow runs: its nodes and edges, or its inline AIO graph definition (``spec.graph``), in
    topological order; None for an AIO definition given as an artifact (checked once pulled). GraphError lists
    every problem. ``modules`` (WasmModule name -> kind) checks the kinds of a Dataflow's operator nodes."""
    if spec.graph is not None:
        return dataflow_definition_graph(spec)
    return dataflow_graph(spec, modules)
