#!/usr/bin/env bash
# make demo: the whole path of a Dataflow on this machine, with the project's own tools and services.
#   1. build the five example operators (Python and JavaScript) with `wasmflow build` (skipped when unchanged)
#   2. start a local OCI registry (hack/registry.sh) and MQTT broker (hack/mosquitto.sh), private to this run
#   3. `wasmflow push` each module to the registry (the digests it prints pin the WasmModules)
#   4. hack/demo.py: resolve the modules as the controller does, render the worker config with the controller's
#      function, run `wasmflow worker --config`, publish the sample telemetry over MQTT, show what flows, summarise
# Everything it starts is stopped on exit (also on Ctrl-C or a failure) and its scratch directory removed; what it
# keeps is the per-user cache ($WASMFLOW_CACHE: compiled components) and the examples' build/ directories.
# usage: hack/demo.sh          (DEMO_RATE=readings-per-second, default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh

W=.venv/bin/wasmflow
PY=.venv/bin/python
OPERATORS=(enrich to-celsius in-range overheat window-average)
# The repository part of each reference in examples/manifests/wasmmodules.yaml (the registry host is replaced).
REPOSITORY=wasmflow-examples
TAG=0.1.0
[[ -x $W ]] || die "no .venv: run 'make demo' (it creates the virtualenv first)"

RUN=$(mktemp -d "${TMPDIR:-/tmp}/wasmflow-demo.XXXXXX")
cleanup() {
  local status=$?
  trap - EXIT
  trap '' INT TERM # a second Ctrl-C must not leave the services running
  [[ -n ${STEP_PID:-} ]] && { kill "$STEP_PID" 2>/dev/null || true; }
  [[ -f $RUN/worker.pid ]] && stop_pidfile "$RUN/worker.pid" 30
  hack/mosquitto.sh stop --dir "$RUN/mosquitto" >/dev/null 2>&1 || true
  hack/registry.sh stop --dir "$RUN/registry" >/dev/null 2>&1 || true
  if ((status != 0)) && [[ -f $RUN/worker.log ]]; then
    echo "--- last lines of the worker log"
    tail -15 "$RUN/worker.log"
  fi
  rm -rf "$RUN"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# step LABEL COMMAND...: run COMMAND with its output in a log; a spinner and the elapsed time while it runs (on a
# terminal), then one line saying how it went. On failure the log's tail is shown and the demo stops.
step() {
  local label=$1 started=$SECONDS pid i=0 frames='⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏'
  shift
  local log="$RUN/step.log"
  "$@" >"$log" 2>&1 &
  pid=$!
  STEP_PID=$pid # a background job ignores Ctrl-C: cleanup stops it
  if [[ -t 1 ]]; then
    while kill -0 "$pid" 2>/dev/null; do
      printf '\r\033[2K%s %s (%ds)' "${frames:i++%10:1}" "$label" $((SECONDS - started))
      sleep 0.1
    done
    printf '\r\033[2K'
  fi
  if ! wait "$pid"; then
    STEP_PID=""
    echo "✗ $label ($((SECONDS - started))s)"
    tail -25 "$log" | sed 's/^/    /'
    return 1
  fi
  STEP_PID=""
  echo "✓ $label ($((SECONDS - started))s)"
  STEP_OUTPUT=$(cat "$log")
}

begin=$SECONDS
echo "== 1. build the example operators (examples/operators/*)"
for op in "${OPERATORS[@]}"; do
  step "wasmflow build examples/operators/$op" "$W" build "examples/operators/$op"
  sed -n 's/^/    /p' <<<"$STEP_OUTPUT" | grep -v '\.\.\.$' || true
done

echo "== 2. start a local registry and MQTT broker"
step "hack/registry.sh start (CNCF distribution, loopback)" hack/registry.sh start --dir "$RUN/registry"
REGISTRY=$(hack/registry.sh env --dir "$RUN/registry" | sed -n 's/^WASMFLOW_REGISTRY=//p')
step "hack/mosquitto.sh start (MQTT v5, loopback)" hack/mosquitto.sh start --dir "$RUN/mosquitto"
BROKER="mqtt://$(hack/mosquitto.sh env --dir "$RUN/mosquitto" | sed -n 's/^WASMFLOW_MQTT=//p')"
echo "    registry http://$REGISTRY, broker $BROKER"

echo "== 3. push the modules"
pushed=()
for op in "${OPERATORS[@]}"; do
  ref="$REGISTRY/$REPOSITORY/$op:$TAG"
  step "wasmflow push examples/operators/$op/build/$op.wasm $ref --insecure" \
    "$W" push "examples/operators/$op/build/$op.wasm" "$ref" --insecure
  digest=$(tail -1 <<<"$STEP_OUTPUT")
  [[ $digest == sha256:* ]] || die "wasmflow push printed '$digest', not a digest"
  echo "    $digest"
  pushed+=(--pushed "$op=$digest")
done

echo "== 4. run the Dataflow examples/manifests/dataflow.yaml with the worker"
"$PY" hack/demo.py --registry "$REGISTRY" --broker "$BROKER" --run-dir "$RUN" --rate "${DEMO_RATE:-20}" "${pushed[@]}"
echo "== demo done in $((SECONDS - begin))s; stopping the worker, broker and registry"
