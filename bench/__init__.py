"""wasmflow benchmarks: ``make bench`` runs every ``bench_*.py`` module here and writes one report."""
