"""The shape of a benchmark figure, the statistics every module uses, and the table and JSON they end up in.

A figure is always measured next to its comparators in the same run and reported as a ratio, because absolute
times vary between machines (issue 10). Modules return plain ``Figure`` objects; this module owns formatting.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Sample:
    """Median and spread of repeated measurements of one quantity."""

    median: float
    p10: float
    p90: float
    runs: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Sample:
        if not values:
            raise ValueError("a sample needs at least one value")
        ordered = sorted(values)
        n = len(ordered)
        return cls(
            median=statistics.median(ordered),
            p10=ordered[round(0.1 * (n - 1))],
            p90=ordered[round(0.9 * (n - 1))],
            runs=n,
        )


@dataclass(frozen=True)
class Figure:
    """One line of the report: ours, and each comparator measured in the same run."""

    name: str
    unit: str
    ours: Sample
    comparators: dict[str, Sample] = field(default_factory=dict)
    target: str = ""
    note: str = ""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Figure:
        """Accept a plain dict from a bench module: samples as lists of values or as {median, p10, p90, runs}."""
        return cls(
            name=str(data["name"]),
            unit=str(data["unit"]),
            ours=_sample(data["ours"]),
            comparators={str(k): _sample(v) for k, v in dict(data.get("comparators", {})).items()},
            target=str(data.get("target", "")),
            note=str(data.get("note", "")),
        )

    def ratios(self) -> dict[str, float]:
        """ours / comparator for each comparator (below 1 means ours is smaller: faster or leaner)."""
        return {k: (self.ours.median / v.median if v.median else float("nan")) for k, v in self.comparators.items()}


class PartialResults(Exception):  # noqa: N818 - it carries results, the failure is in its message
    """An area that measured some figures and then failed: the harness keeps ``figures`` and reports the error."""

    def __init__(self, message: str, figures: Sequence[Figure | Mapping[str, Any]]) -> None:
        super().__init__(message)
        self.figures = figures


def _sample(value: Any) -> Sample:
    if isinstance(value, Sample):
        return value
    if isinstance(value, Mapping):
        return Sample(
            median=float(value["median"]),
            p10=float(value.get("p10", value["median"])),
            p90=float(value.get("p90", value["median"])),
            runs=int(value.get("runs", 1)),
        )
    if isinstance(value, int | float):
        return Sample.of([float(value)])
    return Sample.of([float(v) for v in value])


def repeat(fn: Callable[[], float], runs: int, warmup: int = 1) -> Sample:
    """Run ``fn`` (which returns one measurement) ``warmup + runs`` times and keep the last ``runs``."""
    for _ in range(warmup):
        fn()
    return Sample.of([fn() for _ in range(runs)])


def time_per_call(fn: Callable[[], object], calls: int) -> float:
    """Seconds per call of ``fn`` over ``calls`` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def calls_for(fn: Callable[[], object], budget_seconds: float) -> int:
    """How many back-to-back calls of ``fn`` fill about ``budget_seconds`` (at least 3), from a short probe."""
    probe = 1
    while True:
        elapsed = time_per_call(fn, probe) * probe
        if elapsed > budget_seconds / 10 or probe >= 1 << 16:
            return max(3, int(budget_seconds / (elapsed / probe)))
        probe *= 4


def compare(
    fns: Mapping[str, Callable[[], object]], *, runs: int = 7, budget_seconds: float = 0.1
) -> dict[str, Sample]:
    """Seconds per call of each of ``fns``, measured in interleaved rounds (one run of each per round), so load
    from elsewhere on the machine falls on all of them alike. Each run lasts about ``budget_seconds``."""
    calls = {name: calls_for(fn, budget_seconds) for name, fn in fns.items()}
    values: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            values[name].append(time_per_call(fn, calls[name]))
    return {name: Sample.of(v) for name, v in values.items()}


def machine() -> dict[str, Any]:
    """The facts needed to compare two reports: CPU, cores, Python and wasmtime versions."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "wasmtime": metadata.version("wasmtime"),
        "componentize-py": _version("componentize-py"),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load average (1, 5, 15 min)": [round(x, 2) for x in os.getloadavg()],
    }


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        for scale, suffix in ((1e-6, "µs"), (1e-3, "ms"), (1.0, "s")):
            if value < scale * 1000:
                return f"{value / scale:.1f} {suffix}"
    if unit == "bytes":
        for scale, suffix in ((1, "B"), (2**10, "KiB"), (2**20, "MiB"), (2**30, "GiB")):
            if value < scale * 1024:
                return f"{value / scale:.1f} {suffix}"
    return f"{value:,.1f} {unit}"


def table(figures: Sequence[Figure]) -> str:
    """A plain-text table: figure, ours (median [p10-p90]), each comparator with the ratio ours/comparator."""
    rows = [("figure", "ours (median [p10..p90])", "comparators (ours/them)", "target")]
    for f in figures:
        ours = f"{_fmt(f.ours.median, f.unit)} [{_fmt(f.ours.p10, f.unit)}..{_fmt(f.ours.p90, f.unit)}]"
        comps = "; ".join(
            f"{name}: {_fmt(s.median, f.unit)} ({ratio:.2f}x)"
            for (name, s), ratio in zip(f.comparators.items(), f.ratios().values(), strict=True)
        )
        rows.append((f.name, ours, comps or "-", f.target or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"  {f.name}: {f.note}" for f in figures if f.note]
    return "\n".join(lines + (["", "notes:", *notes] if notes else []))


def write_json(path: Path, figures: Sequence[Figure], errors: dict[str, str], facts: Mapping[str, Any]) -> None:
    """bench/results.json: every figure with its comparators and ratios, the machine and run, and failed modules."""
    payload = {
        "machine": dict(facts),
        "figures": [{**asdict(f), "ratios": f.ratios()} for f in figures],
        "errors": errors,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(path)


def markdown(results: Mapping[str, Any]) -> str:
    """A results.json as the Markdown table bench/README.md shows (``python -m bench --markdown``)."""
    lines = [
        "| figure | ours: median [p10..p90] (runs) | comparators: median (ours/them) | target | note |",
        "|---|---|---|---|---|",
    ]
    for data in results["figures"]:
        f = Figure.from_mapping(data)
        ours = f"{_fmt(f.ours.median, f.unit)} [{_fmt(f.ours.p10, f.unit)}..{_fmt(f.ours.p90, f.unit)}] ({f.ours.runs})"
        comps = "<br>".join(
            f"{name}: {_fmt(s.median, f.unit)} ({ratio:.2f}x)"
            for (name, s), ratio in zip(f.comparators.items(), f.ratios().values(), strict=True)
        )
        lines.append(f"| {f.name} | {ours} | {comps or '-'} | {f.target or '-'} | {f.note or '-'} |")
    facts = results.get("machine", {})
    lines += ["", "Machine and run: " + "; ".join(f"{k}: {v}" for k, v in facts.items())]
    if results.get("errors"):
        lines += ["", "Failed areas: " + "; ".join(f"{k}: {v}" for k, v in results["errors"].items())]
    return "\n".join(lines)
