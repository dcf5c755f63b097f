SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# The machine's nats-server: the integration suites run against it a second
# time, so that features missing from the deployed version (2.9) show up.
NATS_SERVER_BINARY ?= /usr/sbin/nats-server
INTEGRATION_PKGS := ./internal/pipeline/ ./e2e/

.PHONY: help build run test generate check-generated lint demo bench seed bench-history clean

help: ## list the targets
	@awk 'BEGIN { FS = ":.*## " } /^[a-z-]+:.*## / { printf "  %-16s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

build: ## build bin/consumer, bin/publisher and bin/receiver
	go build -o bin/ ./cmd/consumer ./cmd/publisher ./cmd/receiver

run: build ## run the consumer on the local NATS and PostgreSQL (endpoints on 127.0.0.0/8 allowed)
	HOOKRELAY_ALLOW_CIDRS="$${HOOKRELAY_ALLOW_CIDRS:-127.0.0.0/8}" \
	HOOKRELAY_LOG_FORMAT="$${HOOKRELAY_LOG_FORMAT:-console}" \
	bin/consumer

test: ## go vet, all tests with -race, then the integration suites against the machine's nats-server
	go vet ./...
	go test -race -count=1 ./...
	@if [ -x "$(NATS_SERVER_BINARY)" ]; then \
		echo "HOOKRELAY_TEST_NATS_BINARY=$(NATS_SERVER_BINARY) go test -race -count=1 $(INTEGRATION_PKGS)"; \
		HOOKRELAY_TEST_NATS_BINARY="$(NATS_SERVER_BINARY)" go test -race -count=1 $(INTEGRATION_PKGS); \
	else \
		echo "note: $(NATS_SERVER_BINARY) not found: integration suites ran on the embedded server only"; \
	fi

generate: ## regenerate internal/db/dbgen from sql/ with sqlc
	go tool sqlc generate

check-generated: ## fail when sqlc generate would change internal/db/dbgen
	scripts/check-generated.sh

lint: ## gofmt -l must list nothing; go vet
	@unformatted=$$(gofmt -l .); \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting (run gofmt -w):"; echo "$$unformatted"; exit 1; \
	fi
	go vet ./...

demo: ## run the service end to end on testdata/message-events.ndjson and print a summary
	scripts/demo.sh

bench: ## end-to-end figures on the local NATS and PostgreSQL: one consumer process, then two
	go run ./bench
	go run ./bench -consumers 2 -rate-for 5s

seed: ## fill the hookrelay_seed database: 1M deliveries over 30 days, 2M attempts (drops it first)
	go run ./bench/seed -reset

bench-history: ## p50/p99 of each GET /v1/deliveries query, first and later page, on the seeded database (make seed first)
	go run ./bench/seed -query-bench

clean: ## remove bin/ and the demo's logs (.demo/)
	rm -rf bin .demo .bench
