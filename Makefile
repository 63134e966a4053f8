# Two commands on a fresh machine: `make run` and `make test`.
RUNTIME ?= node
ARGS ?=
# `make run` keeps documents in ./data (the local durable store); `make run DATA_DIR=` keeps them in
# memory. With REDIS_URL set, Redis is the store and DATA_DIR stays empty.
DATA_DIR ?= $(if $(REDIS_URL),,./data)
NODE_MODULES_STAMP := node_modules/.package-lock.json

.PHONY: run stress test test-bun install build tools typecheck bench clean pages

$(NODE_MODULES_STAMP): package.json
	@if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi

install: $(NODE_MODULES_STAMP)

# dist/ (scripts/build.mjs): rebuilt only when a source changed, and then incrementally (tsc
# recompiles what changed); every runtime runs the same built JavaScript, as the package does.
BUILD_STAMP := dist/.built
$(BUILD_STAMP): $(NODE_MODULES_STAMP) $(shell find src -type f) scripts/build_pages.mjs scripts/build.mjs tsconfig.json tsconfig.build.json
	node scripts/build.mjs

build: $(BUILD_STAMP)

# The demo editor (/) and the status page (/status) are part of the build (dist/pages/).
pages: build

# Deno: the permissions the server needs (sockets, settings, its files, os stats; write and ffi
# for a data directory), nothing more.
DENO_RUN := ./node_modules/.bin/deno run --allow-net --allow-env --allow-read --allow-write --allow-sys --allow-ffi

run: build
ifeq ($(RUNTIME),bun)
	DATA_DIR='$(DATA_DIR)' ./node_modules/.bin/bun dist/main.js $(ARGS)
else ifeq ($(RUNTIME),deno)
	DATA_DIR='$(DATA_DIR)' $(DENO_RUN) dist/main.js $(ARGS)
else ifeq ($(RUNTIME),node)
	DATA_DIR='$(DATA_DIR)' node dist/main.js $(ARGS)
else
	$(error RUNTIME must be node, bun or deno, not '$(RUNTIME)')
endif

# Stress a running server: make stress ARGS="--url ws://127.0.0.1:8080 --channels 10 --fault throw:3@4" (--help for all).
stress: build
	node dist/stress/stress.js $(ARGS)

typecheck: install
	./node_modules/.bin/tsc -p tsconfig.json

# Integration tests run redis-server and haproxy processes of their own on free ports; this makes sure both exist.
tools:
	@./scripts/ensure_tools.sh

test: install tools
	./node_modules/.bin/vitest run $(ARGS)

# The same suite with vitest itself running on Bun (the Deno smoke run is part of both).
test-bun: install tools
	./node_modules/.bin/bun --bun ./node_modules/vitest/vitest.mjs run $(ARGS)

# Benchmark suite (bench/README.md): fan-out sweeps, latency, idle memory, joins, recovery, each
# against a naive ws relay run the same way; about 20 minutes here, stopped at 30 (ARGS="--quick": about 3).
bench: build
	timeout 1800 node --import tsx bench/run.ts $(ARGS)

clean:
	rm -rf node_modules dist .test-artifacts
