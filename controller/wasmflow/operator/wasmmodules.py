"""The WasmModule controller: get the component, verify it, check it against the contract, report status.

One reconcile, whatever triggered it (create, update, resume, the ``spec.interval`` re-check):

1. the source: ``spec.source.oci`` (the reference resolved, the pull verified by digest and size, credentials from
   the ``kubernetes.io/dockerconfigjson`` Secret named by ``secretRef``, a digest pin compared before any layer is
   downloaded) or ``spec.source.configMapRef`` (the component in a ConfigMap's ``binaryData``, air-gapped sites);
2. the contract check (``wasmflow.contract``; the operator reaches wasmtime only through it), with the module's
   operator kind, grants and strictness;
3. the status, the kstatus/Flux way (``api/status.py``): Ready=True with ``artifact``, ``world`` and ``imports``;
   or Stalled=True + Ready=False with a reason the user must act on (NotFound, Unauthorized, DigestMismatch for a
   pin the artifact does not match, ContractViolation, TooLarge, InvalidReference); or Ready=False +
   Reconciling=True (ProgressingWithRetry) for what may heal by itself (registry unreachable, 5xx, content that
   does not match its own digest: DigestMismatch too, but the registry's fault; Forbidden or Unauthorized when the
   API server refuses the controller the pull Secret or the ConfigMap, naming them and the RBAC verb it needs),
   retried with exponential backoff.

The last good ``artifact`` stays in the status when a later reconcile fails (as Flux keeps its last artifact);
consumers only trust it with Ready=True for the current generation. Messages never carry credentials: the OCI
client's errors do not quote them, and the Secret's content is only ever parsed, never formatted.

``reconcile`` takes the API client and the body and returns an ``Outcome``; the Kopf handlers
(``wasmmodule_handlers``) write it. Everything that decides is a pure function of what was fetched.
"""

from __future__ import annotations

import asyncio
import ctypes
import enum
import json
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from pydantic import ValidationError

from wasmflow.api import status as conditions
from wasmflow.api.common import format_path, parse_duration
from wasmflow.api.wasmmodule import ConfigMapSource, OciSource, WasmModule
from wasmflow.contract.check import apply_grants, check_component
from wasmflow.contract.report import ContractReport
from wasmflow.errors import ConfigError
from wasmflow.oci import (
    Access,
    BlobCache,
    CorruptContentError,
    Credentials,
    OciError,
    UnsupportedArtifactError,
    credentials_from_docker_config,
    parse_reference,
    pull_artifact,
)
from wasmflow.oci.auth import registry_key
from wasmflow.oci.digests import sha256_digest
from wasmflow.oci.mediatypes import WASM_LAYER
from wasmflow.oci.signatures import PublicKey, Verified
from wasmflow.operator import kube, verification
from wasmflow.operator.config import OperatorConfig

__all__ = [
    "REQUESTED_AT",
    "ContractChecks",
    "Fetched",
    "Outcome",
    "Result",
    "check_interval",
    "reconcile",
    "retry_delay",
    "status_failed",
    "status_ready",
    "status_started",
    "trim_cache",
]

#: Flux's manual re-sync (``flux reconcile``, ``kubectl annotate``): its value is echoed in lastHandledReconcileAt.
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
DOCKER_CONFIG_TYPE = "kubernetes.io/dockerconfigjson"
DOCKER_CONFIG_KEY = ".dockerconfigjson"
RETRY_INITIAL_S = 5.0
RETRY_MAX_S = 300.0
#: A re-check more often than this is not useful and would hammer the registry.
MIN_INTERVAL_S = 1.0


class Result(enum.StrEnum):
    """What a reconcile concluded (also the ``result`` label of the reconcile metric)."""

    READY = "ready"
    STALLED = "stalled"
    RETRY = "retry"
    #: A periodic re-check found the same verified artifact: nothing to write.
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Fetched:
    """Verified component bytes and where they came from; ``pulled`` is True when they crossed the network."""

    data: bytes
    digest: str
    media_type: str
    source: str
    pulled: bool
    #: The verified signature, when a signature policy applies (operator/verification.py).
    signature: Verified | None = None

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class Outcome:
    """The status to write and why; ``retry_after`` (seconds) is set when the reconcile should run again soon."""

    status: dict[str, Any]
    result: Result
    reason: str
    message: str
    fetched: Fetched | None = None
    retry_after: float | None = None


class _Failure(Exception):  # noqa: N818 - an internal verdict, never leaves this module
    """Why a reconcile could not make the module Ready; ``transient`` failures are retried with backoff."""

    def __init__(self, reason: str, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.transient = transient


def retry_delay(attempt: int) -> float:
    """Seconds before retry number ``attempt`` (0-based) of a failure that may heal: 5 s doubling up to 5 min."""
    return min(RETRY_INITIAL_S * float(2 ** min(attempt, 16)), RETRY_MAX_S)


def check_interval(body: dict[str, Any]) -> float:
    """Seconds between re-checks of this module (``spec.interval``, default 10m), never under a second."""
    raw = str((body.get("spec") or {}).get("interval") or "10m")
    try:
        seconds = parse_duration(raw, "spec.interval")
    except ConfigError:
        return 600.0
    return max(seconds, MIN_INTERVAL_S)


class ContractChecks:
    """Contract verdicts for one controller run: each component is checked once, ``concurrency`` at a time.

    The check no longer compiles (``contract/decode.py``: wasm-tools in a child process, ~0.1 s and ~31 MiB for an
    18 MB componentize-py component); the names below ("compile") are kept for the metric's sake. A restart re-checks
    every module at once, so checks wait for one of ``concurrency`` slots (1 by default), and the
    type report (``check_component`` without grants) is kept per component digest and size limit: the verdict
    for a module's kind, grants and strictness is derived from it (``apply_grants``), so the same bytes are
    never compiled twice, however many WasmModules with whatever grants use them. While a compile runs, the
    others that need the same report wait for it. ``compiles`` counts the compiles (the metric
    ``wasmflow_controller_contract_compiles`` follows it).
    """

    def __init__(
        self, max_entries: int = 256, concurrency: int = 1, on_compile: Callable[[], None] | None = None
    ) -> None:
        self._max_entries = max_entries
        self._concurrency = concurrency
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        # Compiles run on threads of their own: the same few threads (and their malloc arenas) serve every compile.
        self._threads = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="contract-check")
        self._on_compile = on_compile
        self._reports: OrderedDict[tuple[str, int], ContractReport] = OrderedDict()
        self._running: dict[tuple[str, int], asyncio.Task[ContractReport]] = {}
        self.compiles = 0

    async def check(self, fetched: Fetched, module: WasmModule, max_bytes: int) -> ContractReport:
        spec = module.spec
        base = await self.report(fetched.digest, fetched.data, max_bytes)
        grants = tuple(sorted(c.value for c in spec.capabilities))
        return apply_grants(base, grants=grants, strict=spec.strict, expected_kind=spec.operator)

    async def report(self, digest: str, data: bytes, max_bytes: int) -> ContractReport:
        """The grant-free report of the component ``data`` (whose digest is ``digest``), compiled at most once per
        digest and limit: WasmModules and the modules of AIO graph Dataflows share it."""
        key = (digest, max_bytes)
        known = self._reports.get(key)
        if known is not None:
            self._reports.move_to_end(key)
            return known
        task = self._running.get(key)
        if task is None:
            task = asyncio.create_task(self._compile(data, max_bytes))
            self._running[key] = task
            task.add_done_callback(lambda done: self._done(key, done))
        return await asyncio.shield(task)  # a reconcile cancelled while waiting leaves the compile to the others

    def _done(self, key: tuple[str, int], task: asyncio.Task[ContractReport]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if task.cancelled() or task.exception() is not None:
            return  # a check that broke is tried again next time
        self._reports[key] = task.result()
        while len(self._reports) > self._max_entries:
            self._reports.popitem(last=False)

    async def _compile(self, data: bytes, max_bytes: int) -> ContractReport:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots[0] is not loop:
            self._slots = (loop, asyncio.Semaphore(self._concurrency))  # one per event loop (tests run several)
        async with self._slots[1]:
            self.compiles += 1
            if self._on_compile is not None:
                self._on_compile()
            return await loop.run_in_executor(self._threads, _compile_and_release, data, max_bytes)


def _compile_and_release(data: bytes, max_bytes: int) -> ContractReport:
    """``check_component``, then freed memory handed back to the OS (glibc keeps it otherwise). The check reads the
    types in a child process now, so little is freed; it is kept for the grant-free report's own garbage."""
    try:
        return check_component(data, max_bytes=max_bytes)
    finally:
        _release_free_memory()


def _release_free_memory() -> None:
    """``malloc_trim(0)`` where the C library is glibc (elsewhere there is nothing to call, and nothing is done)."""
    process = ctypes.CDLL(None)  # the interpreter and the C library it is linked with
    if hasattr(process, "malloc_trim"):
        process.malloc_trim(0)


async def reconcile(
    api: client.ApiClient,
    body: dict[str, Any],
    config: OperatorConfig,
    *,
    periodic: bool = False,
    attempt: int = 0,
    checks: ContractChecks | None = None,
) -> Outcome:
    """Get, verify and check the module ``body`` describes; the status to write.

    ``periodic`` is the ``spec.interval`` re-check: when it finds the very artifact already judged Ready for this
    generation it answers UNCHANGED without checking again (the check is a function of the bytes and the spec).
    ``attempt`` counts the consecutive transient failures before this one (for the backoff). ``checks`` shares
    contract verdicts between reconciles (the handlers keep one for the controller's lifetime).
    """
    metadata = body.get("metadata") or {}
    generation = metadata.get("generation")
    current = dict(body.get("status") or {})
    requested = (metadata.get("annotations") or {}).get(REQUESTED_AT)
    if requested:
        current["lastHandledReconcileAt"] = requested
    try:
        module = WasmModule.model_validate({k: v for k, v in body.items() if k != "status"})
    except ValidationError as exc:
        first = exc.errors()[0]
        message = f"{format_path(list(first['loc']))}: {first['msg']}"
        return _failed(current, generation, _Failure("InvalidSpec", message), attempt)
    namespace = module.metadata.namespace or "default"
    try:
        fetched = await _fetch(api, module, namespace, config)
        if periodic and _already_ready(current, generation, fetched.digest):
            return Outcome(current, Result.UNCHANGED, "Succeeded", "unchanged", fetched)
        report = await (checks or ContractChecks()).check(fetched, module, config.max_module_bytes)
        if not report.valid:
            raise _Failure("ContractViolation", _contract_message(report, fetched))
    except _Failure as failure:
        return _failed(current, generation, failure, attempt)
    status = status_ready(current, generation, fetched, report, conditions.now())
    ready = status["conditions"][0]
    return Outcome(status, Result.READY, ready["reason"], ready["message"], fetched)


def status_ready(
    current: dict[str, Any], generation: int | None, fetched: Fetched, report: ContractReport, at: str
) -> dict[str, Any]:
    """The status of a module whose component was verified and satisfies the contract (pure)."""
    world = report.world or "?"
    message = f"{fetched.digest} ({fetched.size:,} bytes) from {fetched.source} implements {world}"
    return {
        **current,
        "observedGeneration": generation,
        "conditions": conditions.ready(current.get("conditions") or [], message, generation),
        "artifact": {"digest": fetched.digest, "size": fetched.size, "mediaType": fetched.media_type, "fetchedAt": at},
        "world": report.world,
        "imports": [i.name for i in report.imports],
        "signature": fetched.signature.status() if fetched.signature is not None else None,
    }


def status_started(current: dict[str, Any], generation: int | None, source: str) -> dict[str, Any] | None:
    """Reconciling=True (and Ready=Unknown) for a generation not judged yet, written before a possibly long pull;
    None when this generation was judged already (a re-check must not make a healthy module flap) (pure)."""
    if current.get("observedGeneration") == generation and current.get("conditions"):
        return None
    message = f"fetching and checking {source}"
    return {
        "observedGeneration": generation,
        "conditions": conditions.reconciling(current.get("conditions") or [], message, generation),
    }


def status_failed(
    current: dict[str, Any], generation: int | None, reason: str, message: str, *, transient: bool
) -> dict[str, Any]:
    """The status of a module that is not Ready: retrying (may heal) or Stalled (the user must act) (pure)."""
    existing = current.get("conditions") or []
    updated = (
        conditions.retrying(existing, reason, message, generation)
        if transient
        else conditions.stalled(existing, reason, message, generation)
    )
    return {**current, "observedGeneration": generation, "conditions": updated}


def _failed(current: dict[str, Any], generation: int | None, failure: _Failure, attempt: int) -> Outcome:
    if failure.transient:
        delay = retry_delay(attempt)
        message = f"{failure.message} (retrying in {delay:.0f}s)"
        status = status_failed(current, generation, failure.reason, message, transient=True)
        return Outcome(status, Result.RETRY, failure.reason, message, retry_after=delay)
    status = status_failed(current, generation, failure.reason, failure.message, transient=False)
    return Outcome(status, Result.STALLED, failure.reason, failure.message)


def _already_ready(current: dict[str, Any], generation: int | None, digest: str) -> bool:
    ready = next((c for c in current.get("conditions") or [] if c.get("type") == "Ready"), None)
    return (
        ready is not None
        and ready.get("status") == "True"
        and ready.get("observedGeneration") == generation
        and current.get("observedGeneration") == generation
        and (current.get("artifact") or {}).get("digest") == digest
    )


async def _fetch(api: client.ApiClient, module: WasmModule, namespace: str, config: OperatorConfig) -> Fetched:
    source = module.spec.source
    if source.oci is not None:
        try:
            keys = await verification.trusted_keys(api, module, namespace, config)
        except kube.AccessDenied as exc:
            raise _access_failure(exc, "the trusted keys of spec.verify") from exc
        except verification.PolicyError as exc:
            raise _Failure(exc.reason, exc.message) from exc
        return await _fetch_oci(api, source.oci, namespace, config, keys)
    assert source.config_map_ref is not None  # the model allows exactly one of the two
    if verification.applies(module, config):
        raise _Failure(
            "SignatureMissing",
            "a signature policy applies (spec.verify or the controller's verify.required) and a ConfigMap source "
            "carries no signature: use spec.source.oci with a signed artifact",
        )
    return await _fetch_config_map(api, source.config_map_ref, namespace, config)


async def _fetch_oci(
    api: client.ApiClient,
    oci: OciSource,
    namespace: str,
    config: OperatorConfig,
    keys: tuple[PublicKey, ...] | None = None,
) -> Fetched:
    try:
        ref = parse_reference(oci.reference)
    except OciError as exc:
        raise _Failure(
            "InvalidReference", f"spec.source.oci.reference {oci.reference!r}: {exc.message}: fix the reference"
        ) from exc
    credentials = await _credentials(api, oci, namespace, ref.registry)
    access = Access(
        insecure=oci.insecure,
        credentials=credentials,
        ca_file=config.registry_ca_file,
        timeout=config.request_timeout,
        plain_http_credential_hosts=config.registry_plain_http_credential_hosts,
    )
    signature = None
    try:
        if keys is not None:  # verified before any layer is pulled, and the pull pinned to what was verified
            signature = await verification.verify_artifact(ref, access, keys)
            ref = ref.with_digest(signature.subject)
        artifact = await pull_artifact(
            ref,
            access=access,
            expected_digest=oci.digest,
            cache_dir=config.cache_dir,
            max_bytes=config.max_module_bytes,
        )
    except OciError as exc:
        raise _oci_failure(exc, oci, ref.registry, config) from exc
    if not artifact.from_cache:
        await trim_cache(config)
    return Fetched(
        data=artifact.data,
        digest=artifact.digest,
        media_type=artifact.media_type,
        source=str(artifact.reference),
        pulled=not artifact.from_cache,
        signature=signature,
    )


async def trim_cache(config: OperatorConfig) -> None:
    """Bring the blob cache back within ``config.cache_max_bytes`` after a pull (least recently used first)."""
    await asyncio.to_thread(BlobCache(config.cache_dir, max_bytes=config.cache_max_bytes).trim)


async def _credentials(api: client.ApiClient, oci: OciSource, namespace: str, registry: str) -> Credentials | None:
    """The credentials for ``registry`` in the module's pull Secret; a Secret that cannot serve is Stalled."""
    if oci.secret_ref is None:
        return None
    name = oci.secret_ref.name
    where = f"Secret {name!r} (spec.source.oci.secretRef)"
    try:
        secret = await kube.get_secret(api, namespace, name)
    except kube.AccessDenied as exc:
        raise _access_failure(exc, where) from exc
    if secret is None:
        raise _Failure(
            "NotFound",
            f"{where} does not exist in namespace {namespace}: create it, e.g. kubectl create secret "
            f"docker-registry {name} -n {namespace} --docker-server={registry} --docker-username=... "
            "--docker-password=...",
        )
    raw = secret.data.get(DOCKER_CONFIG_KEY)
    if secret.type != DOCKER_CONFIG_TYPE or raw is None:
        raise _Failure(
            "Unauthorized",
            f"{where} is of type {secret.type} without a {DOCKER_CONFIG_KEY} key: registry credentials must be a "
            f"{DOCKER_CONFIG_TYPE} Secret (kubectl create secret docker-registry)",
        )
    try:
        document = json.loads(raw)
        if not isinstance(document, dict):
            raise ConfigError("is not a JSON object", where=DOCKER_CONFIG_KEY)
        found = credentials_from_docker_config(document, registry)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Failure("Unauthorized", f"{where}: {DOCKER_CONFIG_KEY} is not JSON: recreate the Secret") from exc
    except ConfigError as exc:
        raise _Failure("Unauthorized", f"{where}: {exc}: recreate the Secret") from exc
    if found is None:
        keys = sorted({registry_key(str(k)) for k in (document.get("auths") or {})})
        raise _Failure(
            "Unauthorized",
            f"{where} has no credentials for {registry} (it has entries for: {', '.join(keys) or 'none'}): "
            f"add {registry} to it",
        )
    return found


def _access_failure(exc: kube.AccessDenied, where: str) -> _Failure:
    """The API server refused a read the module needs: say what is missing, and retry (it heals once granted).

    Retried with backoff rather than Stalled: the permission can appear without any edit of the module (an admin
    fixes a Role, or a RoleBinding applied together with the module is not effective yet).
    """
    if exc.status == 401:
        return _Failure(
            "Unauthorized",
            f"the API server refused the controller's credentials when it read {where} in namespace "
            f"{exc.namespace} ({exc.server_message}): check the controller's ServiceAccount token",
            transient=True,
        )
    return _Failure(
        "Forbidden",
        f"the controller may not {exc.verb} {where} in namespace {exc.namespace} ({exc.server_message}): grant its "
        f"ServiceAccount the verb {exc.verb!r} on {exc.resource!r} in namespace {exc.namespace} (a Role and "
        "RoleBinding; the chart's rbac.create makes them in every watched namespace)",
        transient=True,
    )


def _oci_failure(exc: OciError, oci: OciSource, registry: str, config: OperatorConfig) -> _Failure:
    """The condition reason and an actionable message for a registry failure."""
    text = str(exc)
    if isinstance(exc, CorruptContentError):
        return _Failure(
            exc.reason,
            f"{text}: the registry served content that does not match its own digest, so its storage is corrupt or "
            "something between it and the controller tampers with the transfer (no pin of yours is wrong); nothing "
            "unverified is used, and the pull is retried until the registry serves the right bytes",
            transient=True,
        )
    if exc.transient:
        return _Failure(exc.reason, text, transient=True)
    if isinstance(exc, UnsupportedArtifactError):
        return _Failure(
            "ContractViolation",
            f"{text}: push a Wasm component (wasmflow push FILE {oci.reference})",
        )
    hints = {
        "NotFound": (
            f"check spec.source.oci.reference, or push the component there (wasmflow push FILE {oci.reference})"
        ),
        "Unauthorized": (
            f"check the credentials for {registry} in Secret {oci.secret_ref.name!r}"
            if oci.secret_ref is not None
            else f"set spec.source.oci.secretRef to a {DOCKER_CONFIG_TYPE} Secret with credentials for {registry}"
        ),
        "DigestMismatch": (
            "the reference now names another artifact than the one pinned: set spec.source.oci.digest to the "
            "digest `wasmflow push` printed for it, or point the reference at the artifact you pinned"
        ),
        "TooLarge": (
            f"build a smaller component, or raise the controller's WASMFLOW_MAX_MODULE_BYTES "
            f"(now {config.max_module_bytes:,} bytes)"
        ),
        "InvalidReference": "fix spec.source.oci.reference",
        "SignatureMissing": f"sign it with a trusted key (cosign sign --key KEY {oci.reference}, or wasmflow sign)",
        "SignatureInvalid": "nothing of it was pulled: sign it with a trusted key, or trust the key that signed it",
    }
    hint = hints.get(exc.reason)
    return _Failure(exc.reason, f"{text}: {hint}" if hint else text)


async def _fetch_config_map(
    api: client.ApiClient, ref: ConfigMapSource, namespace: str, config: OperatorConfig
) -> Fetched:
    where = f"ConfigMap {ref.name!r} (spec.source.configMapRef)"
    try:
        config_map = await kube.get_config_map(api, namespace, ref.name)
    except kube.AccessDenied as exc:
        raise _access_failure(exc, where) from exc
    if config_map is None:
        raise _Failure(
            "NotFound",
            f"{where} does not exist in namespace {namespace}: create it, e.g. kubectl create configmap {ref.name} "
            f"-n {namespace} --from-file={ref.key}=FILE.wasm",
        )
    data = config_map.binary.get(ref.key)
    if data is None:
        if ref.key in config_map.text_keys:
            detail = f"{ref.key!r} is in data, not binaryData (a component is binary: use kubectl --from-file)"
        else:
            keys = ", ".join(sorted(config_map.binary)) or "none"
            detail = f"it has no binaryData key {ref.key!r} (binaryData keys: {keys})"
        raise _Failure("NotFound", f"{where}: {detail}")
    if len(data) > config.max_module_bytes:
        raise _Failure(
            "TooLarge",
            f"{where} key {ref.key!r} holds {len(data):,} bytes, over the controller's limit of "
            f"{config.max_module_bytes:,} bytes (WASMFLOW_MAX_MODULE_BYTES)",
        )
    digest = sha256_digest(data)
    return Fetched(
        data=data, digest=digest, media_type=WASM_LAYER, source=f"configmap {ref.name}/{ref.key}", pulled=False
    )


def _contract_message(report: ContractReport, fetched: Fetched) -> str:
    return (
        f"{fetched.source} ({fetched.digest}) does not satisfy the wasmflow contract: {report.summary()}: "
        "fix the component or the WasmModule's operator, capabilities or strict setting "
        "(`wasmflow inspect` shows the full report)"
    )
