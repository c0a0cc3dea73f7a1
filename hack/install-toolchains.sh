#!/usr/bin/env bash
# Installs the component toolchains the tests, the demo and `wasmflow build` use, pinned, into the per-user cache:
#   jco + componentize-js (JavaScript components), from npm, under $WASMFLOW_CACHE/node/jco-<version>
# componentize-py and wasm-tools come from PyPI through uv.lock (dev dependencies), so they are in .venv already.
# usage: hack/install-toolchains.sh            install what is missing
#        hack/install-toolchains.sh --print-path jco
set -euo pipefail
source "$(dirname "$0")/lib.sh"

JCO_VERSION="${JCO_VERSION:-1.35.0}"
COMPONENTIZE_JS_VERSION="${COMPONENTIZE_JS_VERSION:-0.22.0}"
PREFIX="$WASMFLOW_CACHE/node/jco-$JCO_VERSION-cjs-$COMPONENTIZE_JS_VERSION"

install_jco() {
  [[ -x $PREFIX/node_modules/.bin/jco ]] && return 0
  command -v npm >/dev/null || die "npm is missing: install Node.js 20+ (Debian: apt-get install nodejs npm)"
  log "installing jco $JCO_VERSION and componentize-js $COMPONENTIZE_JS_VERSION (first run on this machine)"
  mkdir -p "$PREFIX"
  [[ -f $PREFIX/package.json ]] || echo '{"name": "wasmflow-toolchain", "private": true}' >"$PREFIX/package.json"
  npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error \
    "@bytecodealliance/jco@$JCO_VERSION" "@bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION" >&2
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
