"""What a payload costs the worker's memory on its way through an operator (issue 16, case 3).

A binary payload crosses wasmtime's C API as one 32-byte C value and one 48-byte Rust value per byte, each way:
an echo peaks at ~160 bytes per payload byte while it runs (~96 of them inside wasmtime, out of our reach). What
the host can do, it must: keep nothing of it after the call (the codec used to keep ~65 bytes per byte per node
until a later message), and refuse a binary payload wasmtime would trap on anyway before building ~80 bytes per
byte of it. Text crosses as one string and costs a few bytes per byte. Each figure comes from a fresh process
(codec_memory_probe.py), so nothing else in the test run blurs it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.fault_report import Report
from wasmflow.engine import codec, ffi

MiB = 2**20
#: The C API's own cost of a binary echo, in bytes per payload byte (32 + 48 in, 48 + 32 out), and some slack.
BINARY_ECHO_FLOOR = 170


def probe(kind: str, size: int) -> dict[str, int | str]:
    result = subprocess.run(
        [sys.executable, "-m", "tests.unit.hostile.codec_memory_probe", kind, str(size)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures: dict[str, int | str] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def per_byte(figures: dict[str, int | str], key: str, size: int) -> float:
    value = figures[key]
    assert isinstance(value, int)
    return value / size


@pytest.mark.skipif(not ffi.FAST_PATH, reason="the fast codec is off on this wasmtime-py")
def test_a_binary_echo_keeps_nothing_after_the_call(report: Report) -> None:
    size = 2 * MiB
    figures = probe("binary", size)
    assert figures["outcome"] == "echoed"
    retained, peak = per_byte(figures, "retained", size), per_byte(figures, "peak", size)
    # The guest's own linear memory keeps ~1 byte per byte (counted against limits.memory): allow it, not more.
    assert retained < 4, f"{retained:.1f} bytes per payload byte kept after the call"
    assert peak < BINARY_ECHO_FLOOR, f"{peak:.1f} bytes per payload byte at the peak of the call"
    report(payload_mib=size / MiB, peak_bytes_per_byte=peak, retained_bytes_per_byte=retained)


@pytest.mark.skipif(not ffi.FAST_PATH, reason="the fast codec is off on this wasmtime-py")
def test_a_binary_payload_wasmtime_cannot_take_is_refused_before_it_costs_anything(report: Report) -> None:
    size = 8 * MiB
    figures = probe("binary", size)
    assert str(figures["outcome"]).startswith("memory: binary payload too large: 8388608 bytes > "), figures
    peak = per_byte(figures, "peak", size)
    assert peak < 4, f"{peak:.1f} bytes per payload byte at the peak of a refused call"
    report(payload_mib=size / MiB, peak_bytes_per_byte=peak)


def test_a_text_payload_costs_a_few_bytes_per_byte(report: Report) -> None:
    size = 8 * MiB
    figures = probe("text", size)
    assert figures["outcome"] == "echoed"
    peak = per_byte(figures, "peak", size)
    assert peak < 8, f"{peak:.1f} bytes per payload byte at the peak of the call"
    report(payload_mib=size / MiB, peak_bytes_per_byte=peak)


@pytest.mark.skipif(not ffi.FAST_PATH, reason="the fast codec is off on this wasmtime-py")
def test_the_largest_binary_payload_the_codec_passes_is_one_wasmtime_takes() -> None:
    """``MAX_BINARY_BYTES`` is below wasmtime's own bound (its hostcall fuel): if an upgrade lowers that bound,
    this fails and the constant must follow."""
    figures = probe("binary", codec.MAX_BINARY_BYTES)
    assert figures["outcome"] == "echoed", figures
