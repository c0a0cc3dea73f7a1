"""The image builds from the project's files and runs both commands on a read-only root as UID 65532.

Every run goes through ``hack/image-run.sh``: the image's root mounted read-only, a tmpfs at /tmp, the image's own
user and environment, no capabilities (what the chart's restricted securityContext gives the pod).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, Image
from wasmflow import __version__

# The first session on a machine builds the Debian base and every layer (several minutes on 2 cores).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

VENV_SITE = "/app/.venv/lib/python3.11/site-packages"
UV = Path(os.environ.get("WASMFLOW_CACHE") or Path.home() / ".cache" / "wasmflow") / "uv-0.13.9" / "bin" / "uv"


def _config(image: Image) -> dict[str, object]:
    out = subprocess.run(
        ["buildah", "inspect", "--type", "image", image.ref], capture_output=True, text=True, check=True
    ).stdout
    config: dict[str, object] = json.loads(out)["OCIv1"]["config"]
    return config


def _readable_copy(source: Path, directory: Path) -> Path:
    """A copy the image's user (65532) can read: pytest's tmp_path is private to the user running the tests."""
    directory.chmod(0o755)
    target = directory / source.name
    shutil.copy(source, target)
    target.chmod(0o644)
    return target


def _python(image: Image, code: str) -> str:
    run = image.run("-c", code, entrypoint="/app/.venv/bin/python")
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_version_is_the_projects(image: Image) -> None:
    run = image.run("--version")

    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"wasmflow, version {__version__}"


def test_inspect_accepts_an_example_component_on_a_read_only_root(
    image: Image, component: Callable[[str], Path], tmp_path: Path
) -> None:
    copy = _readable_copy(component("f2c_map"), tmp_path)

    run = image.run("inspect", "--json", f"/components/{copy.name}", volumes=[(tmp_path, "/components")])

    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["valid"] is True
    assert report["operator"] == "map"
    assert report["world"] == "wasmflow:operator/map-operator@0.1.0"


def test_inspect_refuses_a_component_that_breaks_the_contract(
    image: Image, component: Callable[[str], Path], tmp_path: Path
) -> None:
    copy = _readable_copy(component("wrong_signature"), tmp_path)

    run = image.run("inspect", f"/components/{copy.name}", volumes=[(tmp_path, "/components")])

    assert run.returncode == 1
    assert "valid      NO" in run.stdout


@pytest.mark.parametrize("command", ["operator", "worker"])
def test_one_image_runs_operator_and_worker(image: Image, command: str) -> None:
    run = image.run(command, "--help")

    assert run.returncode == 0, run.stderr
    assert f"Usage: wasmflow {command}" in run.stdout


def test_runs_as_numeric_non_root_user(image: Image) -> None:
    assert _config(image)["User"] == "65532:65532"
    assert image.run("-u", entrypoint="/usr/bin/id").stdout.strip() == "65532"


def test_code_is_not_writable_by_the_runtime_user(image: Image) -> None:
    writable = _python(
        image,
        "import os\n"
        "found = [os.path.join(d, n) for d, dirs, files in os.walk('/app') for n in dirs + files\n"
        "         if os.access(os.path.join(d, n), os.W_OK, follow_symlinks=False)]\n"
        "print(len(found), found[:5])",
    )

    assert writable.strip() == "0 []"


def test_bytecode_is_precompiled_for_every_module_of_the_package(image: Image) -> None:
    missing = _python(
        image,
        "import importlib.util, pathlib\n"
        f"root = pathlib.Path('{VENV_SITE}/wasmflow')\n"
        "sources = sorted(root.rglob('*.py'))\n"
        "gone = [str(p) for p in sources if not pathlib.Path(importlib.util.cache_from_source(str(p))).exists()]\n"
        "print(len(sources), gone)",
    )

    count, gone = missing.strip().split(" ", 1)
    assert int(count) > 50
    assert gone == "[]"


def test_installed_distributions_are_exactly_the_locked_runtime_ones(image: Image) -> None:
    """uv.lock's runtime closure at its versions, nothing else: no dev group (pytest, mypy, componentize-py), no uv."""
    locked = subprocess.run(
        [
            str(UV),
            "export",
            "--frozen",
            "--no-default-groups",
            "--no-hashes",
            "--no-emit-project",
            "--no-header",
            "--no-annotate",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    expected = dict(line.split("==", 1) for line in locked.split() if "==" in line)
    installed = json.loads(
        _python(
            image,
            "import importlib.metadata as m, json\n"
            "print(json.dumps({d.metadata['Name'].lower().replace('_', '-'): d.version for d in m.distributions()}))",
        )
    )

    assert installed.pop("wasmflow") == __version__
    assert installed == expected


def test_labels_name_the_version_revision_and_pinned_base(image: Image) -> None:
    labels = _config(image)["Labels"]
    assert isinstance(labels, dict)

    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.source"] == "https://github.com/wasmflow/wasmflow"
    revision = labels["org.opencontainers.image.revision"].removesuffix("-dirty")
    known = subprocess.run(
        ["git", "-C", str(ROOT), "cat-file", "-t", revision], capture_output=True, text=True, check=False
    )
    assert known.stdout.strip() == "commit", f"{revision} is not a commit of this repository"
    assert "@sha256:" in labels["org.opencontainers.image.base.name"]
