"""``make bench``: run every benchmark module, print one table, write bench/results.json.

Each ``bench/bench_<area>.py`` exposes ``run()`` returning ``Figure`` objects (or dicts of the same shape).
A module that fails is reported (and makes the command exit 1) but does not stop the others,
so one broken figure never hides the rest.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

from bench.report import Figure, table, write_json

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("areas", nargs="*", help="only these areas (e.g. engine contract); default: all")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args(argv)
    modules = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if args.areas:
        modules = [m for m in modules if m.removeprefix("bench_") in args.areas]
    figures: list[Figure] = []
    errors: dict[str, str] = {}
    for name in modules:
        start = time.perf_counter()
        print(f"== {name}", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"bench.{name}")
            figures.extend(f if isinstance(f, Figure) else Figure.from_mapping(f) for f in module.run())
        except Exception as exc:  # noqa: BLE001 - one failing area must not hide the others; it is reported below
            errors[name] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        print(f"   {name} took {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    print(table(figures))
    write_json(args.out, figures, errors)
    print(f"\nwrote {args.out}", file=sys.stderr)
    for name, error in errors.items():
        print(f"FAILED {name}: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
