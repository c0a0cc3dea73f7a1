"""The command line's front door: version and help."""

from __future__ import annotations

from click.testing import CliRunner

from wasmflow import __version__
from wasmflow.cli.main import cli


def test_version_prints_the_package_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"wasmflow, version {__version__}"


def test_help_describes_the_tool_and_lists_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "WebAssembly data-processing pipelines" in result.output
    assert "Commands:" in result.output or "Options:" in result.output


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command" in result.output
