# onestack: the two commands a newcomer needs are `make up` and `make test`.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

BIN := target/release/onestack
VENV := .venv
ARGS ?=

.PHONY: up test deps build venv lint unit bench clean

## Install what is missing, build, and start the all-in-one cloud in the foreground.
up: deps venv build
	@echo "==> the openstack CLI is $(CURDIR)/$(VENV)/bin/openstack (or: source $(VENV)/bin/activate)"
	exec $(BIN) up $(ARGS)

## Run every test: formatting, lints, unit, integration and end-to-end (openstack CLI).
test: deps venv lint unit

deps:
	@scripts/install-deps.sh

build:
	cargo build --release --locked -p onestack

venv: $(VENV)/bin/openstack

$(VENV)/bin/openstack: tests/e2e/requirements.txt
	@echo "==> installing the pinned openstack CLI into $(VENV)"
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r tests/e2e/requirements.txt
	@touch $@

lint:
	cargo fmt --all -- --check
	cargo clippy --release --locked --all-targets -- -D warnings

# --show-output: tests that cannot run here (no root, no 8021q) say "skipped: ..." in the log.
unit:
	cargo test --release --locked --workspace -- --show-output

## Benchmarks: identity and image next to the real Keystone and Glance; network and compute (root) on their own (docs/benchmarks.md).
bench: deps venv build
	bench/identity.sh
	bench/image.sh
	bench/network.sh
	bench/compute.sh

clean:
	cargo clean
	rm -rf $(VENV)
