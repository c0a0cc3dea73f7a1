"""The WasmModule signature policy: which keys a module's artifact must be signed by, and the check itself.

A policy applies when the module has ``spec.verify`` (its own trusted keys, from ConfigMaps or Secrets of its
namespace) or when the controller requires signatures (chart ``verify.required``: the keys of ``spec.verify``, else
the controller's bundle ``verify.publicKeys``). The check runs before any layer is pulled: the tag is resolved to a
manifest digest once, the signatures of that digest are verified (``oci.signatures``), and the pull is then pinned to
that very digest, so a tag moved between the check and the pull cannot slip in unverified bytes. What a failure means:

* SignatureMissing: no signature at all (or a ConfigMap source, which carries none) under a policy;
* SignatureInvalid: signatures, none valid for a trusted key and this digest (the message says what did not match);
* KeyNotFound / InvalidKey: the trusted key's ConfigMap or Secret is missing, or holds no P-256 PEM public key.
"""

from __future__ import annotations

from pathlib import Path

from kubernetes import client

from wasmflow.api.wasmmodule import PublicKeySource, WasmModule
from wasmflow.errors import ConfigError, WasmflowError
from wasmflow.oci import Access, Reference, parse_reference
from wasmflow.oci.signatures import (
    PublicKey,
    SignatureInvalidError,
    SignatureMissingError,
    Verified,
    find_signatures,
    load_public_key,
    resolved,
    verify_found,
)
from wasmflow.operator import kube
from wasmflow.operator.config import OperatorConfig

__all__ = ["PolicyError", "load_key_bundle", "required_signature", "trusted_keys", "verify_artifact"]

_PEM_END = "-----END PUBLIC KEY-----"
#: A bundle of trusted keys is a few PEM blocks; more than this many is a mistake.
MAX_BUNDLE_KEYS = 32


class PolicyError(WasmflowError):
    """The policy cannot be applied as written (a key missing or unreadable): ``reason`` for the condition."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(message)


def applies(module: WasmModule, config: OperatorConfig) -> bool:
    return module.spec.verify is not None or config.verify_required


async def trusted_keys(
    api: client.ApiClient, module: WasmModule, namespace: str, config: OperatorConfig
) -> tuple[PublicKey, ...] | None:
    """The keys the module's artifact must be signed by; None when no policy applies (kube.AccessDenied passes)."""
    if module.spec.verify is not None:
        return tuple([await _key(api, source, namespace) for source in module.spec.verify.public_keys])
    if not config.verify_required:
        return None
    if config.verify_keys_file is None:
        return ()
    return load_key_bundle(config.verify_keys_file)


def load_key_bundle(path: Path) -> tuple[PublicKey, ...]:
    """The PEM public keys in ``path`` (the chart's ``verify.publicKeys``, mounted); a bad one stops the check."""
    text = path.read_text(encoding="ascii", errors="replace")
    blocks = [block + _PEM_END for block in text.split(_PEM_END) if block.strip()]
    if len(blocks) > MAX_BUNDLE_KEYS:
        raise PolicyError("InvalidKey", f"{path} holds {len(blocks)} keys, more than {MAX_BUNDLE_KEYS}")
    try:
        return tuple(
            load_public_key(block.strip().encode(), where=f"{path} key {i + 1}") for i, block in enumerate(blocks)
        )
    except ConfigError as exc:
        raise PolicyError("InvalidKey", f"the controller's trusted keys (verify.publicKeys): {exc}") from exc


async def _key(api: client.ApiClient, source: PublicKeySource, namespace: str) -> PublicKey:
    if source.config_map_ref is not None:
        ref = source.config_map_ref
        where = f"ConfigMap {ref.name!r} key {ref.key!r} (spec.verify.publicKeys)"
        config_map = await kube.get_config_map(api, namespace, ref.name)
        pem = None if config_map is None else config_map.text.get(ref.key)
        if pem is None and config_map is not None and ref.key in config_map.binary:
            pem = config_map.binary[ref.key].decode("ascii", errors="replace")
        missing = config_map is None
    else:
        assert source.secret_ref is not None  # the model allows exactly one of the two
        ref = source.secret_ref
        where = f"Secret {ref.name!r} key {ref.key!r} (spec.verify.publicKeys)"
        secret = await kube.get_secret(api, namespace, ref.name)
        raw = None if secret is None else secret.data.get(ref.key)
        pem = None if raw is None else raw.decode("ascii", errors="replace")
        missing = secret is None
    if missing:
        raise PolicyError("KeyNotFound", f"{where} does not exist in namespace {namespace}: create it with cosign.pub")
    if pem is None:
        raise PolicyError("KeyNotFound", f"{where}: the object has no such key")
    try:
        return load_public_key(pem.encode(), where=where)
    except ConfigError as exc:
        raise PolicyError("InvalidKey", str(exc)) from exc


async def verify_artifact(ref: Reference, access: Access, keys: tuple[PublicKey, ...]) -> Verified:
    """Resolve ``ref`` to its manifest digest and verify its signatures with ``keys``.

    Raises SignatureMissingError / SignatureInvalidError (their ``reason`` is the condition reason), or the
    registry's OciError; with no keys at all, found signatures cannot be trusted: SignatureInvalid saying so.
    """
    async with access.client(ref.registry) as registry:
        pinned = await resolved(registry, ref)
        found = await find_signatures(registry, pinned)
    if not keys and found.signatures:
        raise SignatureInvalidError(
            f"{len(found.signatures)} signature(s) found for {found.subject}, but no key is trusted: set "
            "spec.verify.publicKeys or the chart's verify.publicKeys",
            reference=str(pinned),
        )
    if not keys:
        raise SignatureMissingError(
            f"no signature found for {found.subject}, and the controller requires one (verify.required)",
            reference=str(pinned),
        )
    return verify_found(found, keys, reference=str(pinned))


async def required_signature(reference: str, access: Access, config: OperatorConfig) -> str:
    """``reference`` pinned to its verified manifest digest when the controller requires signatures (an AIO graph
    artifact and its modules: a Dataflow has no ``spec.verify`` of its own, so the chart's keys are the trusted
    ones); unchanged otherwise. Raises the verdict (SignatureMissing/SignatureInvalid), or PolicyError."""
    if not config.verify_required:
        return reference
    keys = () if config.verify_keys_file is None else load_key_bundle(config.verify_keys_file)
    ref = parse_reference(reference)
    verified = await verify_artifact(ref, access, keys)
    return str(ref.with_digest(verified.subject))
