"""``wasmflow inspect`` and ``wasmflow wit`` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

WASMFLOW = str(Path(sys.executable).parent / "wasmflow")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WASMFLOW, *args], capture_output=True, text=True, check=False)


def test_inspect_exits_0_and_prints_a_table_for_a_valid_component(component: Callable[[str], Path]) -> None:
    result = run("inspect", str(component("wat_identity_map")))
    assert result.returncode == 0, result.stderr
    assert "valid      yes" in result.stdout
    assert "world      wasmflow:operator/map-operator@0.1.0" in result.stdout


def test_inspect_json_has_the_documented_shape(component: Callable[[str], Path]) -> None:
    result = run("inspect", "--json", str(component("wrong_signature")))
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert {"valid", "operator", "world", "exports", "imports", "problems"} <= report.keys()
    assert report["valid"] is False
    codes = {(p["code"], p["where"]["parameter"]) for p in report["problems"]}
    assert ("signature-mismatch", "input") in codes


def test_inspect_exits_2_for_a_missing_file(tmp_path: Path) -> None:
    result = run("inspect", str(tmp_path / "nope.wasm"))
    assert result.returncode == 2
    assert "nope.wasm: no such file" in result.stderr


def test_inspect_strict_with_a_capability_flag(component: Callable[[str], Path]) -> None:
    result = run("inspect", "--strict", "--json", str(component("js_f2c_map")))
    assert result.returncode == 1
    granted = run(
        "inspect",
        "--strict",
        "--capability",
        "filesystem",
        "--capability",
        "http",
        "--capability",
        "stdio",
        str(component("js_f2c_map")),
    )
    assert granted.returncode == 0, granted.stdout


def test_wit_prints_the_contract_package() -> None:
    result = run("wit")
    assert result.returncode == 0
    assert "package wasmflow:operator@0.1.0;" in result.stdout
    assert "world map-operator" in result.stdout


def test_wit_out_writes_files_a_toolchain_can_use(tmp_path: Path) -> None:
    result = run("wit", "--out", str(tmp_path / "wit"))
    assert result.returncode == 0
    bindings = subprocess.run(
        [
            str(Path(sys.executable).parent / "componentize-py"),
            "-d",
            str(tmp_path / "wit"),
            "-w",
            "filter-operator",
            "bindings",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bindings.returncode == 0, bindings.stderr
    assert (tmp_path / "out" / "wit_world" / "exports" / "__init__.py").exists()
