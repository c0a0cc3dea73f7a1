"""The real services a benchmark needs, started by the project's own hack/ scripts for one bench module.

The same typed wrappers as the pytest fixtures (tests/*_env.py), each in a fresh temporary state directory that is
stopped and removed afterwards, so a bench run never touches a test session's services.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from tests.kube_env import KubeEnv, start_kube, stop_kube
from tests.mqtt_env import BrokerEnv, start_broker, stop_broker
from tests.registry_env import RegistryEnv, start_registries, stop_registries


@contextmanager
def broker() -> Iterator[BrokerEnv]:
    with tempfile.TemporaryDirectory(prefix="wasmflow-bench-mqtt-") as state:
        env = start_broker(Path(state) / "mosquitto")
        try:
            yield env
        finally:
            stop_broker(env)


@contextmanager
def registries() -> Iterator[RegistryEnv]:
    with tempfile.TemporaryDirectory(prefix="wasmflow-bench-registry-") as state:
        env = start_registries(Path(state) / "registry")
        try:
            yield env
        finally:
            stop_registries(env)


@contextmanager
def kube() -> Iterator[KubeEnv]:
    with tempfile.TemporaryDirectory(prefix="wasmflow-bench-kube-") as state:
        env = start_kube(Path(state) / "kube")
        try:
            yield env
        finally:
            stop_kube(env)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], object], *, what: str, timeout: float, interval: float = 0.01) -> float:
    """Poll ``check`` until truthy; the seconds it took. TimeoutError names ``what``."""
    start = time.perf_counter()
    deadline = start + timeout
    while not check():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
    return time.perf_counter() - start


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def rss_bytes(pid: int | None = None) -> int:
    """Resident set size of a process (this one by default), from /proc."""
    statm = Path(f"/proc/{pid or os.getpid()}/statm").read_text().split()
    return int(statm[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes(pid: int) -> int:
    """The high-water mark of a process's resident set (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for process {pid}")
