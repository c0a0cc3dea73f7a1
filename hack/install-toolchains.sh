#!/usr/bin/env bash
# Installs the component toolchains the tests, the demo and `wasmflow build` use, pinned, into the per-user cache:
#   jco + componentize-js (JavaScript components), from npm, under $WASMFLOW_CACHE/node/jco-<version>
# componentize-py (a dev dependency) and wasm-tools (a runtime one: the composer, also in the image) come from PyPI
# through uv.lock, so they are in .venv already.
# usage: hack/install-toolchains.sh            install what is missing
#        hack/install-toolchains.sh --print-path jco
set -euo pipefail
source "$(dirname "$0")/lib.sh"

JCO_VERSION="${JCO_VERSION:-1.35.0}"
COMPONENTIZE_JS_VERSION="${COMPONENTIZE_JS_VERSION:-0.22.0}"
PREFIX="$WASMFLOW_CACHE/node/jco-$JCO_VERSION-cjs-$COMPONENTIZE_JS_VERSION"

# The install goes into a fresh directory beside PREFIX, which is renamed into place only once npm succeeded, and
# concurrent first runs take turns on a lock: a half-finished or interleaved install is never taken for a good one.
install_jco() {
  [[ -f $PREFIX/.complete ]] && return 0
  command -v npm >/dev/null || die "npm is missing: install Node.js 20+ (Debian: apt-get install nodejs npm)"
  take_lock "$PREFIX.lock" 1800 || die "timed out waiting for $PREFIX.lock (another install of jco)"
  if [[ -f $PREFIX/.complete ]]; then release_lock && return 0; fi
  log "installing jco $JCO_VERSION and componentize-js $COMPONENTIZE_JS_VERSION (first run on this machine)"
  local staging="$PREFIX.partial"
  rm -rf "$staging" && mkdir -p "$staging"
  echo '{"name": "wasmflow-toolchain", "private": true}' >"$staging/package.json"
  npm install --prefix "$staging" --no-audit --no-fund --loglevel=error \
    "@bytecodealliance/jco@$JCO_VERSION" "@bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION" >&2
  [[ -x $staging/node_modules/.bin/jco ]] || die "npm finished but $staging/node_modules/.bin/jco is missing"
  touch "$staging/.complete"
  rm -rf "$PREFIX" && mv "$staging" "$PREFIX"
  release_lock
}

case ${1:-} in
  --print-path)
    case ${2:-} in
      jco) install_jco && echo "$PREFIX/node_modules/.bin/jco" ;;
      *) die "--print-path takes: jco" ;;
    esac
    ;;
  "") install_jco ;;
  *) die "usage: $0 [--print-path jco]" ;;
esac
