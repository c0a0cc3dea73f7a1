"""``wasmflow build``: compile an operator project with its language's toolchain, then check it against the contract.

The toolchains are the real ones: componentize-py (from PyPI) for Python, componentize-js (from npm, on Node.js) for
JavaScript. A missing toolchain gets one sentence on how to install it.

A build is skipped when nothing it depends on changed since the last good one (the sources, the WIT, the toolchain
and the artefact itself, hashed into ``build/NAME.wasm.inputs``): a componentize-py build and the contract check
each cost seconds, and `make demo` and an author's edit-run loop call this again and again. The contract check
compiles through the engine's compiled-component cache, so the `wasmflow run` that usually follows does not compile
the same component a second time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from wasmflow.cli.inspect import render as render_report
from wasmflow.cli.scaffold import Project, validate
from wasmflow.contract.check import check_component
from wasmflow.contract.compose import CompositionError, compose_rules
from wasmflow.contract.report import ContractReport
from wasmflow.contract.signatures import OperatorKind
from wasmflow.contract.wit import wit_files
from wasmflow.engine.host import EngineHost, OperatorSpec
from wasmflow.errors import ConfigError, ContractError, EngineError
from wasmflow.oci.digests import sha256_digest

COMPONENTIZE_PY = "0.25.1"
NODE_INSTALL = "install Node.js 20 or later with npm (https://nodejs.org, or on Debian `apt-get install nodejs npm`)"
#: What a build reads besides the WIT and operator.json, by language (tests and samples do not change the component).
SOURCE_SUFFIXES = {"python": (".py",), "javascript": (".js", ".mjs", ".cjs")}
EXTRA_INPUTS = {"python": (), "javascript": ("package.json", "package-lock.json")}
SKIPPED_DIRS = {"build", "node_modules", "__pycache__", ".git", ".venv"}


@dataclass(frozen=True)
class Toolchain:
    """The command that compiles a project, and what identifies the installed tool (part of the build inputs)."""

    name: str
    executable: Path

    def identity(self) -> str:
        real = self.executable.resolve()
        stat = real.stat()
        return f"{self.name} {real} {stat.st_size} {stat.st_mtime_ns}"


@dataclass(frozen=True)
class BuildResult:
    project: Project
    artifact: Path
    #: False when the artefact was already up to date (nothing compiled, nothing checked again).
    built: bool
    digest: str
    size: int


def load_project(root: Path) -> Project:
    path = root / "operator.json"
    if not path.exists():
        raise ConfigError("no operator.json here: run `wasmflow new KIND NAME` to create a project", where=str(root))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return validate(data["name"], data["operator"], data.get("language", "python"), data.get("composed") is True)
    except (json.JSONDecodeError, KeyError, ValueError) as exc:
        raise ConfigError(f"invalid project file: {exc}", where=str(path)) from exc


def find_componentize_py() -> Toolchain:
    for candidate in (Path(sys.executable).parent / "componentize-py", shutil.which("componentize-py")):
        if candidate and Path(candidate).is_file():
            return Toolchain("componentize-py", Path(candidate))
    raise ConfigError(
        f"componentize-py is not installed: run `pip install componentize-py=={COMPONENTIZE_PY}` in the Python "
        "environment of wasmflow",
        where="toolchain",
    )


def cache_base() -> Path:
    """The per-user cache (``$WASMFLOW_CACHE``, by default ``~/.cache/wasmflow``)."""
    base = os.environ.get("WASMFLOW_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wasmflow"
    )
    return Path(base)


def node_cache() -> Path:
    """Where ``hack/install-toolchains.sh`` (``make toolchains``) installs jco and componentize-js."""
    return cache_base() / "node"


def find_componentize_js(root: Path) -> Toolchain:
    candidates = [root / "node_modules" / ".bin" / "componentize-js", shutil.which("componentize-js")]
    candidates += sorted(node_cache().glob("*/node_modules/.bin/componentize-js"), reverse=True)
    tool = next((Path(c) for c in candidates if c and Path(c).is_file()), None)
    if tool is None:
        if shutil.which("npm") is None:
            raise ConfigError(
                f"componentize-js is not installed and needs Node.js: {NODE_INSTALL}, then run `npm install` in {root}",
                where="toolchain",
            )
        raise ConfigError(
            f"componentize-js is not installed: run `npm install` in {root} (its package.json pins the version)",
            where="toolchain",
        )
    if shutil.which("node") is None:
        raise ConfigError(f"Node.js is not installed (componentize-js runs on it): {NODE_INSTALL}", where="toolchain")
    return Toolchain("componentize-js", tool)


def find_toolchain(project: Project, root: Path) -> Toolchain:
    return find_componentize_py() if project.language == "python" else find_componentize_js(root)


def build_inputs(root: Path, project: Project) -> list[Path]:
    """The project files a build reads: sources of its language, operator.json, the WIT, the npm manifests."""
    suffixes = SOURCE_SUFFIXES[project.language]
    found = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if any(part in SKIPPED_DIRS for part in relative.parts[:-1]) or not path.is_file():
            continue
        is_source = path.suffix in suffixes and not path.name.startswith("test_")
        if (
            is_source
            or path.suffix == ".wit"
            or relative.as_posix() in ("operator.json", *EXTRA_INPUTS[project.language])
        ):
            found.append(path)
    return sorted(found)


def inputs_digest(root: Path, project: Project, toolchain: Toolchain, wit_dir: Path) -> str:
    digest = hashlib.sha256(toolchain.identity().encode())
    paths = build_inputs(root, project)
    if wit_dir.relative_to(root).parts[0] == "build":  # the contract shipped with wasmflow, copied at build time
        paths += sorted(wit_dir.glob("*.wit"))
    for path in paths:
        digest.update(b"\0" + path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _file_digest(path: Path) -> str:
    with path.open("rb") as f:
        return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()


def _stamp(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + ".inputs")


def up_to_date_digest(artifact: Path, inputs: str) -> str | None:
    """The artefact's digest when it is the one the last good build of exactly these inputs wrote, else None."""
    stamp = _stamp(artifact)
    if not artifact.is_file() or not stamp.is_file():
        return None
    recorded = stamp.read_text(encoding="utf-8").split()
    digest = _file_digest(artifact)
    return digest if recorded == [inputs, digest] else None


def check_built(data: bytes, kind: OperatorKind | None = None, node: str = "check") -> ContractReport:
    """The contract check, compiling through the engine's compiled-component cache.

    A built component is checked by `wasmflow build`, then `wasmflow push`, then run by `wasmflow run` or a worker on
    this machine: compiled once (seconds for a componentize-py component), then loaded from the cache each time.
    """
    # Compiling does not depend on the operator kind (only instantiating does): any kind names the spec.
    spec = OperatorSpec(node=node, kind=kind or OperatorKind.MAP, component=data)
    try:
        # The directory `wasmflow run` compiles into (its default_cache_dir), without importing the manifest models.
        with EngineHost(cache_dir=cache_base() / "compiled") as host:
            engine, component = host.compile(spec)
            return check_component(data, expected_kind=kind, engine=engine, component=component)
    except EngineError:  # not compilable: the plain check says precisely why (truncated, corrupt, ...)
        return check_component(data, expected_kind=kind)


def _wit_dir(root: Path) -> Path:
    # Both toolchains resolve the WIT relative to the project (componentize-js only sees paths under it). A project
    # without its own wit/ builds against the contract shipped with this wasmflow, written to build/wit.
    if (root / "wit").is_dir():
        return root / "wit"
    target = root / "build" / "wit"
    target.mkdir(parents=True, exist_ok=True)
    for path in wit_files():
        if not (target / path.name).is_file() or (target / path.name).read_bytes() != path.read_bytes():
            shutil.copyfile(path, target / path.name)
    return target


class ComponentRefusedError(ContractError):
    """The toolchain produced a component the contract refuses; ``report`` lists why."""

    def __init__(self, artifact: Path, report: ContractReport) -> None:
        self.artifact = artifact
        self.report = report
        super().__init__(f"{artifact}: does not satisfy the wasmflow contract (problems above)")


def build_project(root: Path, *, force: bool = False, say: Callable[[str], None] = lambda _: None) -> BuildResult:
    """Build ``root`` unless it is up to date (``say`` hears what is being done, as it starts).

    ConfigError when the toolchain is missing or fails; ComponentRefusedError when the contract refuses the result.
    """
    project = load_project(root)
    artifact = root / project.artifact
    toolchain = find_toolchain(project, root)
    wit = _wit_dir(root)
    inputs = inputs_digest(root, project, toolchain, wit)
    if not force and (digest := up_to_date_digest(artifact, inputs)) is not None:
        return BuildResult(project, artifact, built=False, digest=digest, size=artifact.stat().st_size)
    artifact.parent.mkdir(parents=True, exist_ok=True)
    _stamp(artifact).unlink(missing_ok=True)
    wit_arg = wit.relative_to(root).as_posix()
    if project.language == "python":
        cmd = [str(toolchain.executable), "-d", wit_arg, "-w", project.world, "componentize", "app"]
    else:
        cmd = [str(toolchain.executable), "--wit", wit_arg, "--world-name", project.world, "app.js"]
    cmd += ["-o", project.rules_artifact if project.composed else project.artifact]
    say(f"compiling {project.name} with {toolchain.name}")
    result = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-3000:]
        raise ConfigError(f"{toolchain.name} failed:\n{output}", where=str(root))
    if project.composed:
        say(f"composing {project.rules_artifact} with wasmflow's {project.kind.value} adapter")
        _compose(root, project)
    data = artifact.read_bytes()
    say(f"checking {project.artifact} against the contract")
    report = check_built(data, project.kind, project.name)
    if not report.valid:
        raise ComponentRefusedError(artifact, report)
    digest = sha256_digest(data)
    _stamp(artifact).write_text(f"{inputs}\n{digest}\n", encoding="utf-8")
    return BuildResult(project, artifact, built=True, digest=digest, size=len(data))


def _compose(root: Path, project: Project) -> None:
    """A composed project's rules, fused with the adapter wasmflow ships, into ``project.artifact``."""
    rules = (root / project.rules_artifact).read_bytes()
    try:
        composed = compose_rules(rules, project.kind.value)
    except (ContractError, CompositionError) as exc:
        raise ConfigError(f"cannot compose the rules: {exc}", where=str(root)) from exc
    (root / project.artifact).write_bytes(composed.data)


@click.command("build")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--force", is_flag=True, help="Build even when nothing changed since the last build.")
def build_command(directory: Path, force: bool) -> None:
    """Build the operator project in DIRECTORY into build/NAME.wasm and check it against the contract.

    Nothing is compiled when the sources, the WIT and the toolchain are those of the last good build.
    """
    try:
        result = build_project(directory.resolve(), force=force, say=lambda text: click.echo(f"{text}...", err=True))
    except ComponentRefusedError as exc:
        click.echo(render_report(str(exc.artifact), exc.report), err=True)
        raise click.ClickException(str(exc)) from exc
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    what = "built" if result.built else "up to date:"
    click.echo(f"{what} {result.artifact} ({result.size:,} bytes, {result.project.kind.value} operator)")
    click.echo(f"digest {result.digest}")
