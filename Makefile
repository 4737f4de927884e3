# Roadlab developer entry points. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
PYTEST ?= $(PYTHON) -m pytest

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: install
install: ## Install the package and its dev tools (pip, editable)
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[dev]'

.PHONY: deps
deps: install ## What a fresh machine lacks: Debian packages of the local cluster, the dev tools
	cluster/deps.sh

.PHONY: lint
lint: ## ruff (lint and format check), mypy --strict and the import contracts (import-linter)
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy
	PYTHONPATH=operator lint-imports

.PHONY: unit
unit: ## Unit tests (no cluster): Python, and the Go programs of the images
	$(PYTEST) tests/unit -q
	for module in images/*/go.mod; do (cd "$$(dirname "$$module")" && go test ./...) || exit 1; done

.PHONY: e2e
e2e: ## End-to-end tests on a real cluster (brings one up if needed)
	$(PYTEST) tests/e2e -v

.PHONY: test
test: deps ## Everything CI runs: lint, unit, chart and e2e tests (installs what it needs first)
	$(MAKE) --no-print-directory lint unit chart-lint e2e

.PHONY: demo
demo: ## The main job: cluster, images, helm install, a sample Lab solved and Completed
	scripts/demo.sh

.PHONY: cold-check
cold-check: ## Both README commands from a fresh clone with empty caches; prints each phase's time
	scripts/cold-check.sh

.PHONY: lock
lock: ## Pin the operator image's Python packages (operator/constraints.txt) after a dependency change
	scripts/lock.sh

.PHONY: portal-assets
portal-assets: ## Vendor the learner portal's xterm.js (pinned, from npm) into portal/static/vendor/
	scripts/vendor-portal-assets.sh

.PHONY: catalog
catalog: ## List the catalog labs (title, difficulty, duration, prerequisites)
	@$(PYTHON) -m roadlab.cli catalog

.PHONY: bench
bench: ## Benchmarks: provisioning (Labs to Ready vs direct creation) and check latency
	$(PYTHON) bench/provisioning.py
	$(PYTHON) bench/checks.py

.PHONY: bench-scale
bench-scale: ## 200 Labs at once, then 1,000 held: latency, RSS, CPU, API requests per Lab
	$(PYTHON) bench/scale.py

.PHONY: bench-portal
bench-portal: ## The portal under load: 200 open pages (live status), 20 busy terminals
	$(PYTHON) bench/portal.py

.PHONY: bench-roadmaps
bench-roadmaps: ## A cohort of 200 enrolled at once; 50 learners asking for their next milestone
	$(PYTHON) bench/roadmaps.py

.PHONY: bench-leaks
bench-leaks: ## 100 create/validate/delete cycles: leftovers and operator memory
	$(PYTHON) bench/leaks.py

.PHONY: bench-chaos
bench-chaos: ## SIGKILL the operator mid-provisioning; restart the API server and etcd
	$(PYTHON) bench/chaos.py

.PHONY: chart-lint
chart-lint: ## helm lint --strict and kubeconform on the rendered chart
	scripts/chart-lint.sh

.PHONY: cluster-build
cluster-build: ## Build the local cluster's binaries and images (cached)
	cluster/build.sh

.PHONY: cluster-up
cluster-up: ## Start the local cluster (or kind when Docker answers); prints KUBECONFIG
	@cluster/ensure.sh

.PHONY: cluster-down
cluster-down: ## Stop the local cluster and remove all it left behind
	cluster/down.sh

.PHONY: images
images: ## Build the project's images and load them into the local cluster
	cluster/project-images.sh local
