"""Whether a Dataflow may send the MQTT credentials of a Secret to the broker it names (pure).

Without a rule, anyone who may create a Dataflow could point ``credentialsSecretRef`` at any Secret of the
namespace with a ``username`` and ``password`` and an endpoint at a host of their choice: the controller would
mount the Secret into a worker that logs in there, handing the credentials over. So the Secret's owner must opt in,
on the Secret, and say where it may go, the way cert-manager and Flux make a Secret's owner allow its use by
annotation: ``wasmflow.io/mqtt-brokers`` lists the broker URLs (``mqtts://host[:port]``, comma-separated). A
bare "true" opt-in would still let any Dataflow author send an opted-in Secret anywhere; the list binds it to the
brokers it belongs to.

Credentials in clear text (``mqtt://``) to a host other than loopback are refused unless the owner lists that very
``mqtt://host:port`` (an explicit consent to clear text for that broker); a broker listed as ``mqtts://`` only
accepts TLS. Every refusal names the endpoint, the Secret and what is missing. TLS client certificates are not
covered: their private key never leaves the worker.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from wasmflow.api.dataflow import Dataflow

__all__ = ["BROKERS_ANNOTATION", "Broker", "Refusal", "check_credentials", "parse_broker"]

BROKERS_ANNOTATION = "wasmflow.io/mqtt-brokers"
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_URL = re.compile(r"^(mqtts?)://([^\s/:]+)(?::([0-9]{1,5}))?/?$")


@dataclass(frozen=True)
class Broker:
    """A broker address, with the default port filled in."""

    scheme: str
    host: str
    port: int

    @property
    def tls(self) -> bool:
        return self.scheme == "mqtts"

    @property
    def loopback(self) -> bool:
        if self.host.lower() == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


@dataclass(frozen=True)
class Refusal:
    """Why the credentials may not be used (``reason`` is the condition reason)."""

    reason: str
    message: str


def parse_broker(url: str) -> Broker | None:
    """``mqtt[s]://host[:port]`` as a Broker, or None when it is not one."""
    match = _URL.match(url.strip())
    if match is None:
        return None
    scheme, host, port = match.group(1), match.group(2).lower(), match.group(3)
    return Broker(scheme, host, int(port) if port else DEFAULT_PORTS[scheme])


def _allows(listed: list[Broker], target: Broker) -> Refusal | None:
    same = [b for b in listed if (b.host, b.port) == (target.host, target.port)]
    if not same:
        return Refusal("CredentialsNotAllowed", "")
    if target.tls or target.loopback or any(not b.tls for b in same):
        return None
    return Refusal("InsecureCredentials", "")


def check_credentials(dataflow: Dataflow, annotations: Mapping[str, Mapping[str, str] | None]) -> Refusal | None:
    """The first endpoint whose credentials Secret does not allow its broker, or None when all do.

    ``annotations`` holds each referenced Secret's annotations by name (None: the Secret does not exist).
    """
    namespace = dataflow.metadata.namespace or "default"
    for name, endpoint in sorted(dataflow.spec.endpoints.items()):
        mqtt = endpoint.mqtt
        if mqtt.credentials_secret_ref is None:
            continue
        secret = mqtt.credentials_secret_ref.name
        where = f"endpoint {name} (spec.endpoints.{name}.mqtt.credentialsSecretRef)"
        found = annotations.get(secret)
        if found is None:
            return Refusal("SecretNotFound", f"{where} names Secret {secret}, which does not exist in {namespace}")
        target = parse_broker(mqtt.url)
        if target is None:  # the CRD's pattern makes this unreachable
            return Refusal("InvalidSpec", f"endpoint {name}: url {mqtt.url!r} is not mqtt[s]://host[:port]")
        example = f"{BROKERS_ANNOTATION}={str(target).replace('mqtt://', 'mqtts://')}"
        raw = found.get(BROKERS_ANNOTATION)
        if raw is None:
            return Refusal(
                "CredentialsNotAllowed",
                f"{where}: Secret {secret} does not allow its use as MQTT credentials (no annotation "
                f"{BROKERS_ANNOTATION}): its owner lists the brokers it may be sent to, e.g. "
                f"kubectl annotate secret {secret} -n {namespace} {example}",
            )
        entries = [e.strip() for e in raw.split(",") if e.strip()]
        listed = [b for e in entries if (b := parse_broker(e)) is not None]
        bad = [e for e in entries if parse_broker(e) is None]
        if bad:
            return Refusal(
                "CredentialsNotAllowed",
                f"{where}: Secret {secret}'s annotation {BROKERS_ANNOTATION} has entries that are not "
                f"mqtt[s]://host[:port]: {', '.join(repr(e) for e in bad)}",
            )
        refusal = _allows(listed, target)
        if refusal is None:
            continue
        if refusal.reason == "InsecureCredentials":
            return Refusal(
                refusal.reason,
                f"{where}: the credentials of Secret {secret} would cross the network in clear text to {target} "
                f"(mqtt://, not loopback): use mqtts://, or have the Secret's owner list {target} itself in "
                f"{BROKERS_ANNOTATION} to allow clear text to that broker",
            )
        allowed = ", ".join(str(b) for b in listed) or "none"
        return Refusal(
            refusal.reason,
            f"{where}: Secret {secret} may be sent only to the brokers its annotation {BROKERS_ANNOTATION} lists "
            f"({allowed}), not to {target}",
        )
    return None
