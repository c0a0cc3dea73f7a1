"""examples/flux: the HelmRelease's values pass the chart's schema, and the Kustomizations check what they apply."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.chart_env import CHART, ROOT, Helm, only

FLUX = ROOT / "examples" / "flux"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def _one(path: Path, kind: str, name: str | None = None) -> dict[str, Any]:
    return only(_docs(path), kind, name)


def test_helmrelease_values_pass_the_charts_schema_and_render(helm: Helm) -> None:
    release = _one(FLUX / "operator" / "helmrelease.yaml", "HelmRelease")

    objects = helm.template(release["spec"]["values"], namespace=release["metadata"]["namespace"])

    (container,) = only(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert "--namespace=plant" in container["args"]
    assert only(objects, "Role")["metadata"]["namespace"] == "plant"


def test_helmrelease_installs_and_upgrades_the_crds() -> None:
    spec = _one(FLUX / "operator" / "helmrelease.yaml", "HelmRelease")["spec"]

    assert spec["install"]["crds"] == "CreateReplace"
    assert spec["upgrade"]["crds"] == "CreateReplace"


def test_helmrelease_asks_for_this_chart_from_the_oci_repository() -> None:
    spec = _one(FLUX / "operator" / "helmrelease.yaml", "HelmRelease")["spec"]["chart"]["spec"]
    repository = _one(FLUX / "operator" / "helmrepository.yaml", "HelmRepository")
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))

    assert repository["spec"]["type"] == "oci"
    assert spec["sourceRef"] == {"kind": "HelmRepository", "name": repository["metadata"]["name"]}
    assert spec["chart"] == chart["name"]
    assert re.fullmatch(spec["version"].replace(".", r"\.").replace("x", r"\d+"), chart["version"])


def test_the_operator_kustomization_waits_for_the_helmrelease() -> None:
    operator = _one(FLUX / "clusters" / "edge" / "wasmflow.yaml", "Kustomization", "wasmflow-operator")

    assert operator["spec"]["wait"] is True
    assert (ROOT / operator["spec"]["path"]).is_dir()


def test_the_dataflows_wait_for_the_operator_and_health_check_every_example_object() -> None:
    dataflows = _one(FLUX / "clusters" / "edge" / "wasmflow.yaml", "Kustomization", "plant-dataflows")
    applied = [doc for path in sorted((ROOT / dataflows["spec"]["path"]).glob("*.yaml")) for doc in _docs(path)]

    assert dataflows["spec"]["dependsOn"] == [{"name": "wasmflow-operator"}]
    checked = {(c["kind"], c["name"], c["namespace"]) for c in dataflows["spec"]["healthChecks"]}
    namespace = dataflows["spec"]["targetNamespace"]
    assert checked == {(doc["kind"], doc["metadata"]["name"], namespace) for doc in applied}


def test_every_kustomize_resource_listed_exists() -> None:
    for kustomization in FLUX.rglob("kustomization.yaml"):
        for resource in yaml.safe_load(kustomization.read_text(encoding="utf-8"))["resources"]:
            assert (kustomization.parent / resource).is_file(), f"{kustomization}: {resource}"
