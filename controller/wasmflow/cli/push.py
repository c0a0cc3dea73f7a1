"""``wasmflow push FILE REF``: check a component against the contract, then push it in the CNCF Wasm OCI layout.

The contract comes first so a registry never holds a component the controller would refuse: the problems are
listed on stderr and nothing is uploaded (exit 1). On success only the manifest digest goes to stdout, so scripts
can capture it (``digest=$(wasmflow push op.wasm host:5000/ops/op:1.0 --insecure)``) and pin it in
``spec.source.oci.digest``; what was pushed is described on stderr.

Exit 0 on success, 1 when the component does not fit the contract or the registry refuses, 2 on usage errors.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from wasmflow.cli.build import check_built
from wasmflow.cli.inspect import render
from wasmflow.cli.sign import read_signing_key, sign_pushed
from wasmflow.cli.sources import read_file
from wasmflow.errors import ConfigError, RegistryError
from wasmflow.oci import Access, ComponentInfo, Credentials, load_docker_config, parse_reference, push_component


def _annotations(values: tuple[str, ...]) -> dict[str, str]:
    result: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}", param_hint="--annotation")
        result[key.strip()] = text
    return result


def _credentials(
    registry: str, username: str | None, password_stdin: bool, docker_config: Path | None
) -> Credentials | None:
    if docker_config is not None and (username or password_stdin):
        raise click.UsageError("--docker-config excludes --username and --password-stdin")
    if password_stdin and not username:
        raise click.UsageError("--password-stdin needs --username")
    if docker_config is not None:
        try:
            found = load_docker_config(docker_config, registry)
        except ConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="--docker-config") from exc
        if found is None:
            raise click.BadParameter(f"{docker_config} has no credentials for {registry}", param_hint="--docker-config")
        return found
    if username:
        password = sys.stdin.readline().rstrip("\r\n") if password_stdin else ""
        if not password:
            raise click.UsageError("give the password on stdin with --password-stdin (never as an argument)")
        return Credentials(username=username, password=password)
    return None


@click.command("push")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("ref")
@click.option(
    "--annotation",
    "-a",
    "annotations",
    multiple=True,
    metavar="KEY=VALUE",
    help="A manifest annotation (repeatable), e.g. org.opencontainers.image.source=https://...",
)
@click.option("--insecure", is_flag=True, help="Plain HTTP to the registry (a local or test registry).")
@click.option(
    "--allow-plain-http-credentials",
    is_flag=True,
    help="With --insecure, send the credentials over plain HTTP to a registry that is not on loopback (readable by "
    "anyone on the path; refused without this flag).",
)
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Trust this CA bundle.")
@click.option("--username", "-u", help="Registry user name (the password comes from --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the registry password from the first line of stdin.")
@click.option(
    "--docker-config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Credentials from a docker config file (a ~/.docker/config.json or a .dockerconfigjson).",
)
@click.option(
    "--sign",
    "sign_key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Sign the pushed artifact with this key as cosign does (cosign.key with $COSIGN_PASSWORD, or a PEM key).",
)
def push_command(
    file: Path,
    ref: str,
    annotations: tuple[str, ...],
    insecure: bool,
    allow_plain_http_credentials: bool,
    ca_file: Path | None,
    username: str | None,
    password_stdin: bool,
    docker_config: Path | None,
    sign_key: Path | None,
) -> None:
    """Check the component FILE against the contract and push it to REF (host[:port]/repository:tag).

    Prints the manifest digest (and nothing else) on stdout.
    """
    try:
        reference = parse_reference(ref)
    except RegistryError as exc:
        raise click.BadParameter(str(exc), param_hint="REF") from exc
    manifest_annotations = _annotations(annotations)
    credentials = _credentials(reference.registry, username, password_stdin, docker_config)
    key = read_signing_key(sign_key) if sign_key is not None else None  # a bad key or password: before any push
    try:
        data = read_file(file)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="FILE") from exc
    report = check_built(data)  # compiled through the cache `wasmflow build` filled
    if not report.valid:
        click.echo(render(str(file), report), err=True)
        click.echo(
            f"error: {file.name} does not satisfy the wasmflow contract ({len(report.problems)} problem(s)); "
            "nothing was pushed",
            err=True,
        )
        raise SystemExit(1)
    info = ComponentInfo(
        exports=tuple(report.exports), imports=tuple(i.name for i in report.imports), target=report.world
    )
    access = Access(
        insecure=insecure,
        credentials=credentials,
        ca_file=ca_file,
        plain_http_credential_hosts=(reference.registry,) if allow_plain_http_credentials else (),
    )
    try:
        result = asyncio.run(
            push_component(
                reference, data, access=access, component=info, annotations=manifest_annotations, title=file.name
            )
        )
    except RegistryError as exc:
        raise click.ClickException(f"push failed: {exc}") from exc
    click.echo(
        f"pushed {reference} ({result.size:,} bytes, {report.operator.value if report.operator else '?'} operator, "
        f"component {result.layer_digest})",
        err=True,
    )
    if key is not None:
        sign_pushed(result.reference, key, access)
    click.echo(result.digest)
