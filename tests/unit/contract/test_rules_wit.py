"""The rules contract (contract/wit/rules): per kind, one SDK-free world whose only export is ``rules``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from wasmtime import Engine
from wasmtime.component import Component

from wasmflow.cli.main import cli
from wasmflow.contract.wit import rules_interface_name, rules_wit_file

WASM_TOOLS = str(Path(sys.executable).parent / "wasm-tools")
KINDS = ["map", "filter", "branch", "accumulate"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_rules_world_exports_only_rules_and_imports_nothing(kind: str, tmp_path: Path) -> None:
    # A component built from the world alone (wasm-tools' dummy implementation) shows what the world requires.
    core, component = tmp_path / "core.wasm", tmp_path / "c.wasm"
    wit = str(rules_wit_file(kind))
    subprocess.run(
        [WASM_TOOLS, "component", "embed", "--dummy", wit, "--world", f"{kind}-rules", "-o", str(core)], check=True
    )
    subprocess.run([WASM_TOOLS, "component", "new", str(core), "-o", str(component)], check=True)
    engine = Engine()
    loaded = Component(engine, component.read_bytes())
    assert list(loaded.type.exports(engine)) == [rules_interface_name(kind)]
    assert list(loaded.type.imports(engine)) == []


def test_wasmflow_wit_prints_the_rules_contracts_after_the_operator_contract() -> None:
    result = CliRunner().invoke(cli, ["wit"])
    assert result.exit_code == 0
    packages = [line for line in result.output.splitlines() if line.startswith("package ")]
    assert packages == [
        "package wasmflow:operator@0.1.0;",
        *(f"package wasmflow:{kind}-rules@0.1.0;" for kind in sorted(KINDS)),
    ]


def test_wasmflow_wit_out_writes_each_rules_package_as_a_file_of_its_own(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["wit", "--out", str(tmp_path)])
    assert result.exit_code == 0
    assert sorted(p.name for p in (tmp_path / "rules").iterdir()) == sorted(f"{k}.wit" for k in KINDS)
    assert not list(tmp_path.glob("*rules*.wit")), "the operator package directory must hold only its own files"
