"""A component file the CLI cannot read is a usage error (exit 2) naming the file and why, never a traceback.

Tests may run as root, for whom ``chmod 000`` stops nothing: the cases that must fail for everyone are a
directory, a broken symbolic link and ``/proc/self/clear_refs`` (a write-only kernel file: reading it fails with
EINVAL even for root, and with EACCES for anyone else). The ``chmod 000`` case runs only when not root.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from wasmflow.cli.main import cli

WRITE_ONLY = Path("/proc/self/clear_refs")


def _directory(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "op.wasm"
    path.mkdir()
    return path, "is a directory"


def _broken_symlink(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "op.wasm"
    path.symlink_to(tmp_path / "gone.wasm")
    return path, f"is a broken symbolic link (to {tmp_path / 'gone.wasm'})"


def _write_only_kernel_file(tmp_path: Path) -> tuple[Path, str]:
    assert WRITE_ONLY.exists(), "needs Linux /proc"
    return WRITE_ONLY, "cannot be read: "


def _no_permission(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "op.wasm"
    path.write_bytes(b"\0asm")
    path.chmod(0)
    return path, "cannot be read: Permission denied"


UNREADABLE = [
    pytest.param(_directory, id="directory"),
    pytest.param(_broken_symlink, id="broken-symlink"),
    pytest.param(_write_only_kernel_file, id="write-only-kernel-file"),
    pytest.param(
        _no_permission,
        id="chmod-000",
        marks=pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 file"),
    ),
]

Unreadable = Callable[[Path], tuple[Path, str]]


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert not isinstance(result.exception, OSError), result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize("unreadable", UNREADABLE)
def test_inspect_of_an_unreadable_file_is_a_usage_error_naming_it(tmp_path: Path, unreadable: Unreadable) -> None:
    path, reason = unreadable(tmp_path)

    code, output = _invoke("inspect", str(path))

    assert code == 2
    assert f"Invalid value for SOURCE: {path}: {reason}" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("unreadable", UNREADABLE)
def test_push_of_an_unreadable_file_is_a_usage_error_naming_it(tmp_path: Path, unreadable: Unreadable) -> None:
    path, reason = unreadable(tmp_path)

    code, output = _invoke("push", str(path), "localhost:5000/ops/op:1.0", "--insecure")

    assert code == 2
    # click's own FILE checks (it exists, it is no directory) answer first for those two; the read, the rest.
    clicks = {"directory": f"File '{path}' is a directory.", "broken-symlink": f"File '{path}' does not exist."}
    assert clicks.get(unreadable.__name__.removeprefix("_").replace("_", "-"), f"{path}: {reason}") in output


@pytest.mark.parametrize("unreadable", UNREADABLE)
def test_run_with_an_unreadable_module_file_is_a_usage_error_naming_it(tmp_path: Path, unreadable: Unreadable) -> None:
    path, reason = unreadable(tmp_path)
    manifest = {
        "apiVersion": "wasmflow.io/v1alpha1",
        "kind": "Dataflow",
        "metadata": {"name": "t"},
        "spec": {
            "endpoints": {"b": {"mqtt": {"url": "mqtt://broker:1883"}}},
            "nodes": [
                {"name": "in", "type": "source", "endpoint": "b", "topic": "t"},
                {"name": "m", "type": "map", "module": "op"},
                {"name": "out", "type": "sink", "endpoint": "b", "topic": "o"},
            ],
            "edges": [{"from": "in", "to": "m"}, {"from": "m", "to": "out"}],
        },
    }
    (tmp_path / "df.yaml").write_text(yaml.safe_dump(manifest))

    code, output = _invoke("run", str(tmp_path / "df.yaml"), "--module", f"op={path}", "--input", os.devnull)

    assert code == 2
    assert f"Invalid value for --module: op={path}: {reason}" in output
