# wasmflow: every target a new machine needs goes through here (DESIGN.md section 7).
# `make help` lists them. Expensive things (kube-apiserver, etcd, helm, wasm-tools, jco, compiled components)
# are cached per user in $(WASMFLOW_CACHE), so only the first run on a machine pays for them.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

WASMFLOW_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/wasmflow
export WASMFLOW_CACHE
PYTHON ?= python3
UV_VERSION ?= 0.13.9
UV := $(WASMFLOW_CACHE)/uv-$(UV_VERSION)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
IMG ?= localhost/wasmflow:dev
PYTEST_ARGS ?=

##@ General

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
	  /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: demo
demo: venv system-packages toolchains ## Build the examples, push them to a local registry, run the plant Dataflow with the worker over MQTT
	hack/demo.sh

.PHONY: test
test: deps ## THE test command: unit + integration tests against real services (started and stopped by the suite)
	$(BIN)/pytest tests/unit tests/integration --ignore=tests/integration/node $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: venv ## Fast unit tests only (no services)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

.PHONY: test-faults
test-faults: deps ## Only the fault and hostile-input tests (part of `make test`); prints FAULT lines with the figures
	$(BIN)/pytest tests/integration/faults tests/unit/hostile $(PYTEST_ARGS)

.PHONY: test-e2e
test-e2e: deps ## End-to-end tests: container image, Helm install (slow)
	$(BIN)/pytest tests/e2e $(PYTEST_ARGS)

.PHONY: test-node
test-node: node-check deps node-binaries ## Tests on a real one-node cluster (hack/node.sh: kubelet, containerd, scheduler, controller-manager; root); CI runs it after make test
	$(BIN)/pytest tests/integration/node $(PYTEST_ARGS)

.PHONY: node-check
node-check: ## Can this machine run the test node (root, a memory cgroup of its own, cgroup v1, overlayfs)? Says what is missing
	hack/node.sh check

.PHONY: lint
lint: venv ## ruff, ruff format --check, mypy (strict), import-linter
	$(BIN)/ruff check controller tests bench
	$(BIN)/ruff format --check controller tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

.PHONY: fmt
fmt: venv ## Format and auto-fix the code
	$(BIN)/ruff format controller tests bench
	$(BIN)/ruff check --fix controller tests bench

.PHONY: manifests
manifests: venv ## Regenerate crds/ from the pydantic models and copy them into the chart
	$(BIN)/python -m wasmflow.api.crd --out crds
	mkdir -p charts/wasmflow/crds && cp crds/*.yaml charts/wasmflow/crds/

.PHONY: bench
bench: deps ## Run every benchmark; prints a table and writes bench/results.json
	$(BIN)/python -m bench

##@ Build

.PHONY: docker-build
docker-build: ## Build the image with buildah (IMG=$(IMG)) on a Debian base made locally by hack/base-image.sh
	IMG=$(IMG) hack/docker-build.sh

.PHONY: base-image
base-image: ## Build (or find cached) the Debian bookworm + python3.11 base with mmdebstrap; prints it pinned by digest
	hack/base-image.sh

.PHONY: helm-lint
helm-lint: ## helm lint the chart (helm is built from its Go module and cached)
	"$$(hack/build-kube.sh --print-path helm)" lint charts/wasmflow

##@ Dependencies

.PHONY: deps
deps: venv system-packages kube-binaries toolchains ## Everything the tests and the demo need

.PHONY: venv
venv: $(BIN)/wasmflow ## Python virtualenv from uv.lock

$(UV):
	$(PYTHON) -m venv $(WASMFLOW_CACHE)/uv-$(UV_VERSION)
	$(WASMFLOW_CACHE)/uv-$(UV_VERSION)/bin/pip install --quiet uv==$(UV_VERSION)

$(BIN)/wasmflow: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

.PHONY: system-packages
system-packages: ## Debian packages: docker-registry, mosquitto, openssl
	hack/install-system-packages.sh

.PHONY: kube-binaries
kube-binaries: ## Build kube-apiserver, kubectl, etcd, helm and the registry token service from their Go modules (cached)
	hack/build-kube.sh all

.PHONY: node-binaries
node-binaries: ## The test node: kube-controller-manager, kube-scheduler, kubelet from Go modules (cached); containerd, runc, CNI from Debian
	hack/install-system-packages.sh node
	hack/build-kube.sh node

.PHONY: toolchains
toolchains: ## Component toolchains: wasm-tools (cargo), jco + componentize-js (npm); componentize-py is in the venv
	hack/install-toolchains.sh

.PHONY: clean
clean: ## Remove build outputs (keeps the per-user cache)
	rm -rf dist build .mypy_cache .ruff_cache .pytest_cache
