# scaleset-image-operator: the two commands a person needs are `make test` and `make demo`.
# Everything is set up from a fresh clone: uv (from PyPI) and the locked Python environment.
#
# uv: the one on PATH if it is the pinned version, else a private copy in .tools/uv (a venv made with $(PYTHON),
# git-ignored). Nothing is installed into $(PYTHON) itself, so an externally managed system Python (PEP 668:
# Debian 12, Ubuntu 24.04) works: `make demo PYTHON=/usr/bin/python3`. The project's .venv is made with $(PYTHON).

SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(shell if [ "$$(uv --version 2>/dev/null | cut -d' ' -f2)" = "$(UV_VERSION)" ]; then command -v uv; \
	else echo $(TOOLS)/uv/bin/uv; fi)
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
RUN := $(UV) run --frozen

.PHONY: all setup uv lint typecheck imports unit component cluster test chaos bench demo demo-cluster simulator reference clean

include tools/controlplane/controlplane.mk

all: test

uv:
	@$(UV) --version >/dev/null 2>&1 || { rm -rf $(TOOLS)/uv && $(PYTHON) -m venv $(TOOLS)/uv && \
		$(TOOLS)/uv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"; }

setup: uv
	$(UV) sync --frozen --quiet

lint: setup
	$(RUN) ruff check operator tests tools/controlplane/harness.py tools/demo_cluster.py tools/dashboard tools/bench tools/docs
	$(RUN) ruff format --check operator tests tools/controlplane/harness.py tools/demo_cluster.py tools/dashboard tools/bench tools/docs

typecheck: setup
	$(RUN) mypy
	$(RUN) mypy --strict tools/controlplane/harness.py tools/dashboard/build_dashboard.py tools/dashboard/render_rollout.py
	$(RUN) mypy --strict tools/bench
	$(RUN) mypy --strict tools/docs/reference.py

imports: setup
	$(RUN) lint-imports

unit: setup
	$(RUN) pytest tests/unit

component: setup
	$(RUN) pytest tests/component

cluster: setup controlplane
	$(RUN) pytest tests/cluster

# Lint, types, layering, the test control plane (built once, then cached), then every test.
test: lint typecheck imports controlplane
	$(RUN) pytest

# The soak: the chaos suite of `make test` (tests/cluster/test_chaos.py, 100 faults) with FAULTS faults; writes
# chaos-results.json. Reproduce a run with CHAOS_SEED=<seed from chaos-results.json>.
FAULTS ?= 1000
chaos: setup controlplane
	CHAOS_FAULTS=$(FAULTS) $(RUN) pytest tests/cluster/test_chaos.py -p no:cacheprovider -s --basetemp=$${TMPDIR:-/tmp}/scaleset-chaos-soak

# Performance benchmarks (tools/bench, docs/performance.md): a table, and bench-results.json at the root.
# BENCH_ARGS, e.g. --only overhead,planner or --fleet-size 50.
bench: setup controlplane
	$(RUN) python -m tools.bench $(BENCH_ARGS)

# Only the runtime packages: the demo needs no test tooling (and no Go).
demo: uv
	$(RUN) --no-dev scaleset-image demo

# The same rollout through a real local control plane; prints a kubeconfig and kubectl commands.
demo-cluster: setup controlplane
	$(RUN) python tools/demo_cluster.py $(DEMO_ARGS)

# The simulator with the scale sets and images the examples name; the README's "`plan` against the simulator"
# gives the environment that points `scaleset-image plan` at it.
simulator: setup
	$(RUN) scaleset-image simulator --port 8443 --ca-file sim-ca.pem --scalesets examples/simulator/scalesets.yaml --time-scale 10

# The README's ScaleSetImage reference, rendered from the field descriptions in the CRD (tools/docs/reference.py).
reference: setup
	$(RUN) python tools/docs/reference.py

clean:
	rm -rf .venv $(TOOLS) .mypy_cache .pytest_cache .ruff_cache sim-ca.pem
