"""Figure 8: pull + verify + check of an 18 MB componentize-py component from a real registry (docker-registry on
loopback, started for this run), cold and cached, as the WasmModule controller does it
(operator/wasmmodules.py: ``pull_artifact`` with the content-addressed cache, then ``check_component``).

* cold: an empty cache: resolve the tag, fetch the manifest, stream the 18 MB layer verifying its sha256 and the
  size limit, write the cache, check the component.
* cached: the same tag again with the filled cache: the manifest is fetched (a tag may move), the layer comes from
  the cache (verified on read), the check runs again.
* comparators: a plain HTTP GET of the same blob (no verification, no cache: the transfer floor) and the check
  alone, so the table shows what the registry part adds.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from tests.components.build import build

from bench import services
from bench.report import Sample
from wasmflow.api.kinds import OperatorKind
from wasmflow.contract.check import check_component
from wasmflow.oci.pull import Access, pull_artifact
from wasmflow.oci.push import push_component
from wasmflow.oci.reference import parse_reference

RUNS = 2


def _pull_and_check(reference: str, cache: Path) -> float:
    async def pull() -> bytes:
        artifact = await pull_artifact(parse_reference(reference), access=Access(insecure=True), cache_dir=cache)
        return artifact.data

    start = time.perf_counter()
    data = asyncio.run(pull())
    report = check_component(data, expected_kind=OperatorKind.MAP)
    elapsed = time.perf_counter() - start
    if not report.valid:
        raise AssertionError(f"the pulled component fails the contract: {report.problems}")
    return elapsed


def _raw_get(url: str, size: int) -> float:
    start = time.perf_counter()
    response = httpx.get(url, timeout=60, follow_redirects=True)
    response.raise_for_status()
    if len(response.content) != size:
        raise AssertionError(f"GET {url}: {len(response.content)} bytes, expected {size}")
    return time.perf_counter() - start


def _check_only(data: bytes) -> float:
    start = time.perf_counter()
    check_component(data, expected_kind=OperatorKind.MAP)
    return time.perf_counter() - start


def run() -> list[dict[str, Any]]:
    data = build("identity_map").read_bytes()
    with services.registries() as env, tempfile.TemporaryDirectory(prefix="wasmflow-bench-oci-") as tmp:
        reference = f"{env.plain.host}/bench/identity-map:1.0.0"
        pushed = asyncio.run(push_component(reference, data, access=Access(insecure=True)))
        blob_url = f"{env.plain.url}/v2/bench/identity-map/blobs/{pushed.layer_digest}"
        cold, cached, raw, check = [], [], [], []
        for run_index in range(RUNS):
            cache = Path(tmp) / f"cache-{run_index}"
            cold.append(_pull_and_check(reference, cache))
            cached.append(_pull_and_check(reference, cache))
            raw.append(_raw_get(blob_url, len(data)))
            check.append(_check_only(data))
    size_mb = len(data) / 1e6
    check_sample = Sample.of(check)
    return [
        {
            "name": f"8. pull + verify + check, {size_mb:.1f} MB component, cold cache",
            "unit": "s",
            "ours": Sample.of(cold),
            "comparators": {"plain HTTP GET of the blob": Sample.of(raw), "check alone": check_sample},
            "note": "tag -> manifest -> verified streaming of the layer -> cache write -> contract check",
        },
        {
            "name": f"8. pull + verify + check, {size_mb:.1f} MB component, cached",
            "unit": "s",
            "ours": Sample.of(cached),
            "comparators": {"cold cache": Sample.of(cold), "check alone": check_sample},
            "note": "manifest fetched (tags move), layer read from the cache and verified, check again",
        },
    ]
