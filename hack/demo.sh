#!/usr/bin/env bash
# The local demo: build the five example operators (Python and JavaScript) with the real toolchains, check them
# against the contract, and run the plant-telemetry Dataflow on the sample data with `wasmflow run` (no cluster).
# The registry + MQTT + worker part of the demo (issue 9) is not wired in yet.
set -euo pipefail
cd "$(dirname "$0")/.."
W=.venv/bin/wasmflow
modules=()
for op in enrich to-celsius in-range overheat window-average; do
  echo "== building examples/operators/$op"
  "$W" build "examples/operators/$op" | sed 's/^/   /'
  modules+=(--module "$op=examples/operators/$op/build/$op.wasm")
done
echo "== running examples/manifests/dataflow.yaml on examples/data/telemetry.jsonl"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$W" run examples/manifests/dataflow.yaml "${modules[@]}" --input examples/data/telemetry.jsonl --output "$out"
echo "== alerts (overheating assets)"
grep '"sink": "alerts"' "$out" | head -5
echo "== window averages"
grep '"sink": "averages"' "$out" | head -3
echo "== $(grep -c . "$out") message(s) out"
