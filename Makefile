# Two commands a new developer needs: `make replay` and `make test`. Both bootstrap .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help replay test test-all lint typecheck bench clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## / - /'

# Re-install whenever pyproject.toml is newer than the stamp (missing or stale venv).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

replay: $(STAMP)  ## replay every golden offline, verify signatures, print the report (demo key allowed)
	$(BIN)/harness-replay check --allow-demo-key
	$(BIN)/harness-replay coverage --summary

test: $(STAMP) lint typecheck  ## the PR gate: lint + mypy + tier0 + tier1 (security set, e2e smoke) + goldens
	$(BIN)/python -m pytest -q -n 2 -m "tier0 or tier1 or security" --ignore=goldens
	CI=true $(BIN)/harness-replay check --unreferenced reject --allow-demo-key --quiet
	$(BIN)/harness-replay verify --allow-demo-key
	@if git merge-base origin/main HEAD >/dev/null 2>&1; then $(BIN)/harness-replay coverage --diff origin/main; fi

test-all: $(STAMP)  ## everything, nightly tiers included
	$(BIN)/python -m pytest -q -n 2

lint: $(STAMP)  ## ruff + import contracts
	$(BIN)/ruff check harness replay tests bench gates
	$(BIN)/lint-imports

typecheck: $(STAMP)  ## mypy strict on harness/ and replay/
	$(BIN)/mypy

bench: $(STAMP)  ## print benchmark figures
	@for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f; done

# Release machinery (docs/release-policy.md): each target ends with a one-screen summary.
.PHONY: nightly release mutation flake-check exit-criteria
N ?= 10
FLAKE_ARGS ?=

nightly: $(STAMP)  ## tier 2 (full e2e, stress/chaos) + mutation gate
	$(BIN)/python -m gates nightly

release: $(STAMP)  ## PR gate + tier 2 + tier 3 drills + mutation, then the exit-criteria table
	$(BIN)/python -m gates release

mutation: $(STAMP)  ## mutation score per guardrail module (>= 90% killed), surviving mutants
	$(BIN)/python -m gates mutation

flake-check: $(STAMP)  ## run the PR gate N times (N=10), flake rates + quarantine (FLAKE_ARGS narrows)
	$(BIN)/python -m gates flake --runs $(N) -- $(FLAKE_ARGS)

exit-criteria: $(STAMP)  ## the exit-criteria table from the last release run's reports
	$(BIN)/python -m gates exit-criteria

clean:  ## remove the venv and the junk DB
	rm -rf $(VENV) .harness
