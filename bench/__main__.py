"""``make bench``: run every benchmark module, print one table, write bench/results.json.

Each ``bench/bench_<area>.py`` exposes ``run()`` returning ``Figure`` objects (or dicts of the same shape). Areas
run in ``ORDER`` (cheap and load-sensitive first); the table is sorted by figure number. A module that fails is
reported (and makes the command exit 1) but does not stop the others, so one broken figure never hides the rest.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

from bench.report import Figure, PartialResults, machine, markdown, table, write_json

HERE = Path(__file__).resolve().parent
ORDER = ("engine", "languages", "contract", "worker", "mqtt", "oci", "controller")


def _areas() -> list[str]:
    found = {p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py")}
    return [a for a in ORDER if a in found] + sorted(found - set(ORDER))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("areas", nargs="*", help=f"only these areas (default: all of {', '.join(_areas())})")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    parser.add_argument("--markdown", action="store_true", help="print --out (a results.json) as Markdown; no run")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.out.read_text())))
        return 0
    areas = [a for a in _areas() if not args.areas or a in args.areas]
    if unknown := set(args.areas) - set(_areas()):
        parser.error(f"unknown areas: {', '.join(sorted(unknown))}")
    at_start = machine()
    started = time.perf_counter()
    figures: list[Figure] = []
    errors: dict[str, str] = {}
    durations: dict[str, float] = {}
    for area in areas:
        area_start = time.perf_counter()
        print(f"== {area}", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"bench.bench_{area}")
            figures.extend(f if isinstance(f, Figure) else Figure.from_mapping(f) for f in module.run())
        except PartialResults as exc:
            figures.extend(f if isinstance(f, Figure) else Figure.from_mapping(f) for f in exc.figures)
            errors[area] = str(exc)
            traceback.print_exc()
        except Exception as exc:  # noqa: BLE001 - one failing area must not hide the others; it is reported below
            errors[area] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        durations[area] = round(time.perf_counter() - area_start, 1)
        print(f"   {area} took {durations[area]:.1f} s", file=sys.stderr, flush=True)
    figures.sort(key=lambda f: f.name.split(".", 1)[0])
    run = {
        "areas": durations,
        "total seconds": round(time.perf_counter() - started, 1),
        "load average at the end (1, 5, 15 min)": [round(x, 2) for x in os.getloadavg()],
    }
    print(table(figures))
    facts = {**at_start, **run}
    print("\n" + "; ".join(f"{k}: {v}" for k, v in facts.items() if k != "areas"))
    write_json(args.out, figures, errors, facts)
    print(f"\nwrote {args.out}", file=sys.stderr)
    for area, error in errors.items():
        print(f"FAILED {area}: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
