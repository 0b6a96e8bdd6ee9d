# Foresight: the two commands a fresh machine needs are `make run` and `make test`.
# Both install what they need first (a .venv with torch==2.13.0 installed before anything that
# depends on it; Debian packages through apt when missing and we are root).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
FORESIGHT := $(VENV)/bin/foresight
TORCH_VERSION := 2.13.0
IMAGE_REGISTRY ?= ghcr.io/foresight-dev
IMAGE_TAG ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
TORCH_VARIANT ?= cpu
# Debian packages the test suite and the demo start for real (each test also installs what it
# needs by itself; installing them in one go here saves three `apt-get update`s).
DEB_PACKAGES := prometheus prometheus-pushgateway redis-server chromium wrk openssh-server
# pytest: --timeout guards against a hung server (tests start real ones).
PYTEST_ARGS ?= --timeout 600

.PHONY: help install system-deps run test test-unit test-e2e lint format crds bench image manifests deploy undeploy clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel
	@# torch first and pinned: unpinned, a dependency would pull the newest CUDA build (GBs).
	$(PIP) install --quiet torch==$(TORCH_VERSION)
	$(PIP) install --quiet -e '.[runtime,dev]'
	@touch $@

install: $(VENV)/.installed ## create .venv with the runtime, dev tools and torch==2.13.0

system-deps: ## install the Debian packages the tests and the demo run (when root and missing)
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	  echo "note: not root or no apt-get; missing:$$missing (tests that need them install or skip)"; exit 0; fi; \
	echo "apt-get install$$missing"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	  || echo "warning: apt-get install$$missing failed; tests that need them will say so"

run: install ## the main job: forecast the embedded storage-quota data set locally, no cluster needed
	@$(MAKE) --no-print-directory system-deps DEB_PACKAGES="prometheus prometheus-pushgateway"
	$(FORESIGHT) demo

lint: install ## ruff, import-linter's layer contracts (pyproject.toml), mypy; docs/*.py included
	$(VENV)/bin/ruff check runtime operator tests bench docs
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/ruff format --check runtime/foresight/api runtime/foresight/cli.py
	$(VENV)/bin/mypy

format: install ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix runtime operator tests bench docs
	$(VENV)/bin/ruff format runtime operator tests bench docs

test: install system-deps ## lint, then the whole suite (unit, integration with real servers, e2e)
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest $(PYTEST_ARGS) tests

test-unit: install ## only the unit tests (~2.5 min of CPU; ends with the ten slowest tests and its wall time)
	@start=$$(date +%s); $(PY) -m pytest $(PYTEST_ARGS) --durations=10 tests/unit; rc=$$?; \
	echo "make test-unit: $$(( $$(date +%s) - start )) s wall (exit $$rc)"; exit $$rc

test-e2e: install ## only the end-to-end tests (operator + emulator + test kubelet + kubectl)
	$(PY) -m pytest $(PYTEST_ARGS) -m e2e tests/e2e

crds: install ## regenerate crds/ from the API models (never edit crds/ by hand)
	$(FORESIGHT) crds -o crds

bench: install system-deps ## every benchmark: prints a table each, JSON under bench/results/
	@mkdir -p bench/results
	@set -e; for b in $$(ls bench/*.py | grep -v '/_\|common'); do \
	  echo "=== $$b"; nice $(PY) $$b; done
	@echo "results: bench/results/*.json"

image: ## build the operator and runtime images (needs docker; TORCH_VARIANT=cu124 for CUDA)
	docker build -f images/operator.Dockerfile -t $(IMAGE_REGISTRY)/foresight-operator:$(IMAGE_TAG) .
	docker build -f images/runtime.Dockerfile --build-arg TORCH_VARIANT=$(TORCH_VARIANT) \
	  -t $(IMAGE_REGISTRY)/foresight-runtime:$(IMAGE_TAG) .

# The images `make image` builds (IMAGE_REGISTRY, IMAGE_TAG) replace the published defaults in
# both places they are named: the operator container and the runtime image it starts.
DEFAULT_IMAGES := ghcr.io/foresight-dev
KUBECTL ?= kubectl

manifests: ## print the install (kubectl kustomize manifests/) with IMAGE_REGISTRY / IMAGE_TAG filled in
	@$(KUBECTL) kustomize manifests/ | sed \
	  -e 's#$(DEFAULT_IMAGES)/foresight-operator:[^" ]*#$(IMAGE_REGISTRY)/foresight-operator:$(IMAGE_TAG)#' \
	  -e 's#$(DEFAULT_IMAGES)/foresight-runtime:[^" ]*#$(IMAGE_REGISTRY)/foresight-runtime:$(IMAGE_TAG)#'

deploy: ## install CRDs + operator into the current kubectl context, with the images of `make image`
	$(MAKE) --no-print-directory -s manifests | $(KUBECTL) apply -f -
	$(KUBECTL) -n foresight-system rollout status deployment/foresight-operator --timeout=180s

undeploy: ## remove the operator (CRDs and your resources stay: delete crds/ by hand to remove them)
	kubectl delete -k manifests/ --ignore-not-found

clean: ## remove build and cache outputs (keeps .venv)
	rm -rf build *.egg-info .cache .pytest_cache .mypy_cache .ruff_cache bench/results
