# doctrina — two commands on a fresh machine:
#   make run    install what is missing, index the bundled corpus, serve the app
#   make test   install what the tests need, then lint and run every test
#
# Downloads and builds are cached under ~/.cache/doctrina (override with DOCTRINA_CACHE),
# including cargo's target directory, so reruns are fast.

SHELL := /bin/bash
CARGO ?= cargo
DOCTRINA_CACHE ?= $(HOME)/.cache/doctrina
export DOCTRINA_CACHE
CARGO_TARGET_DIR ?= $(DOCTRINA_CACHE)/target
export CARGO_TARGET_DIR
DATA_DIR ?= ./data
ADDR ?= 127.0.0.1:8080
BIN := $(CARGO_TARGET_DIR)/release/doctrina

.PHONY: all setup setup-runtime setup-browser build run llm walk index serve test lint fmt clean-data

all: build

## Installs ONNX Runtime, the embedding model, llama-server and the small GGUF model.
setup:
	scripts/setup.sh all >/dev/null

## Installs only what indexing and search need (ONNX Runtime, embedding model).
setup-runtime:
	scripts/setup.sh runtime >/dev/null

## Installs Debian chromium + chromium-driver for the browser tests.
setup-browser:
	scripts/setup.sh browser >/dev/null

build:
	$(CARGO) build --release -p doctrina-cli

LLM_PORT ?= 8081

## Sets everything up, indexes corpus/documents into $(DATA_DIR), starts llama-server with
## the small model on $(LLM_PORT) and serves on $(ADDR) (llama-server stops with it).
run: setup build
	$(BIN) index corpus/documents --data-dir $(DATA_DIR)
	BIN=$(BIN) ADDR=$(ADDR) DATA_DIR=$(DATA_DIR) LLM_PORT=$(LLM_PORT) scripts/run.sh

## The default inference server alone (llama-server with Qwen2.5-Coder-1.5B-Instruct) on
## 127.0.0.1:$(LLM_PORT), for drafting from the command line; Ctrl-C stops it.
llm: setup
	LLM_PORT=$(LLM_PORT) scripts/llm.sh

## The officer's walk in Chromium against the default model: starts the server of `make llm`
## (unless one answers on LLM_PORT), drafts with it, stops it. Screenshots in
## test-artifacts/browser/default-model/.
walk: setup setup-browser
	LLM_PORT=$(LLM_PORT) CARGO="$(CARGO)" scripts/walk.sh

index: setup-runtime build
	$(BIN) index corpus/documents --data-dir $(DATA_DIR)

serve: setup-runtime build
	$(BIN) serve --addr $(ADDR) --data-dir $(DATA_DIR)

## Everything the tests need (llama-server and the small model, which the drafting tests
## start and stop; Chromium for the browser tests), then all tests; ends with one summary
## line. Browser screenshots land in test-artifacts/browser/.
test: setup setup-browser
	@mkdir -p $(CARGO_TARGET_DIR)
	@rm -rf $(CARGO_TARGET_DIR)/reports
	set -o pipefail; DOCTRINA_REPORT_DIR=$(CARGO_TARGET_DIR)/reports $(CARGO) test --workspace --no-fail-fast 2>&1 | tee $(CARGO_TARGET_DIR)/test.log
	@cat $(CARGO_TARGET_DIR)/reports/*.txt 2>/dev/null || true
	@awk '/^test result:/ { p += $$4; f += $$6 } END { printf "summary: %d passed, %d failed\n", p, f }' $(CARGO_TARGET_DIR)/test.log

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean-data:
	rm -rf $(DATA_DIR)
