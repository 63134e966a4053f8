# Two commands on a fresh machine: `make run` and `make test`.
RUNTIME ?= node
ARGS ?=
NODE_MODULES_STAMP := node_modules/.package-lock.json

.PHONY: run stress test test-bun install tools typecheck bench clean pages

$(NODE_MODULES_STAMP): package.json
	@if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi

install: $(NODE_MODULES_STAMP)

# The demo editor (/) and the status page (/status), built ahead of time with esbuild into
# dist/pages/ (scripts/build_pages.mjs); rebuilt when a source they bundle changed.
PAGES_STAMP := dist/pages/index.html
PAGES_SOURCES := $(shell find src/pages src/client src/protocol src/doc -type f 2>/dev/null) src/server/status_types.ts scripts/build_pages.mjs

$(PAGES_STAMP): $(NODE_MODULES_STAMP) $(PAGES_SOURCES)
	node scripts/build_pages.mjs

pages: $(PAGES_STAMP)

run: install pages
ifeq ($(RUNTIME),bun)
	./node_modules/.bin/bun src/main.ts $(ARGS)
else
	node --import tsx src/main.ts $(ARGS)
endif

# Stress a running server: make stress ARGS="--url ws://127.0.0.1:8080 --channels 10 --fault throw:3@4" (--help for all).
stress: install
	node --import tsx src/stress/stress.ts $(ARGS)

typecheck: install
	./node_modules/.bin/tsc -p tsconfig.json

# Integration tests run redis-server and haproxy processes of their own on free ports; this makes sure both exist.
tools:
	@./scripts/ensure_tools.sh

test: install tools pages
	./node_modules/.bin/vitest run $(ARGS)

# The same suite with vitest itself running on Bun (the Deno smoke run is part of both).
test-bun: install tools pages
	./node_modules/.bin/bun --bun ./node_modules/vitest/vitest.mjs run $(ARGS)

# Benchmark suite (bench/README.md): fan-out sweeps, latency, idle memory, joins, recovery, each
# against a naive ws relay run the same way; 6 to 7 minutes here, stopped at 15 (ARGS="--quick": about 2).
bench: install
	timeout 900 node --import tsx bench/run.ts $(ARGS)

clean:
	rm -rf node_modules .test-artifacts dist/pages
